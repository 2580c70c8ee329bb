package check

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"
)

// The checks of the instance's metadata options (the seed's
// modify-instance-metadata-options): the endpoint enabled, the IPv6
// endpoint as redirect.ipv6 expects, tags in metadata, the token answers'
// hop limit. Each asks IMDS itself, past the redirect.

// DirectTimeout bounds each request check sends straight to IMDS: IMDS
// answers on the instance in about a millisecond, so no answer within it
// means none is coming (a disabled endpoint, a family IMDS does not serve).
const DirectTimeout = 500 * time.Millisecond

// DirectAnswer is what one request straight to IMDS got.
type DirectAnswer struct {
	Sent   bool
	Status int
	Body   string
	Err    error
	Took   time.Duration
}

// answered: IMDS said something over HTTP.
func (a DirectAnswer) answered() bool { return a.Sent && a.Err == nil }

// timedOut: no answer within DirectTimeout.
func (a DirectAnswer) timedOut() bool {
	var ne net.Error
	return errors.Is(a.Err, context.DeadlineExceeded) || (errors.As(a.Err, &ne) && ne.Timeout())
}

// describe says what a got, e.g. "answered 403 in 1.2ms".
func (a DirectAnswer) describe() string {
	switch {
	case !a.Sent:
		return "not sent"
	case a.timedOut() && a.Took > 0:
		return fmt.Sprintf("no answer within %s", a.Took.Round(10*time.Millisecond))
	case a.timedOut():
		return "no answer"
	case errors.Is(a.Err, syscall.ECONNREFUSED):
		return "connection refused"
	case a.Err != nil:
		return a.Err.Error()
	}
	return fmt.Sprintf("answered %d in %s", a.Status, roundTook(a.Took))
}

// HopProbe is the measure of the token answers' hop limit: a token PUT on
// a socket that drops packets with an IP TTL (IPv6 hop limit) below 2.
// IMDS sends its token answer with the TTL set to the instance's
// http-put-response-hop-limit, and it arrives on the instance unchanged:
// at hop limit 1 the socket's kernel drops it (and counts it in
// TcpExt TCPMinTTLDrop), at 2 or more it arrives.
type HopProbe struct {
	Sent     bool
	Answered bool          // the answer arrived: hop limit 2 or more
	Drops    uint64        // TCPMinTTLDrop's increase meanwhile
	Waited   time.Duration // how long it waited for the answer
	Err      error         // the probe could not be made
}

// MetadataOptions is what check saw of the instance's metadata options.
type MetadataOptions struct {
	Token DirectAnswer // a token PUT to upstream.url (IPv4)
	// IPv6 is a token PUT to [fd00:ec2::254], sent whether redirect.ipv6
	// is on (IPv6Redirected) or not.
	IPv6           DirectAnswer
	IPv6Redirected bool
	// Tags is a GET of /latest/meta-data/tags/instance with the token; not
	// Sent without one.
	Tags DirectAnswer
	Hop  HopProbe // not Sent without a token
	// TagsAllowedTo names who the policy lets read tags (rules, or "callers
	// no rule matches"); none: nobody.
	TagsAllowedTo []string
}

// Check names, as printed.
const (
	endpointName = "IMDS's endpoint is enabled (http-endpoint)"
	ipv6Name     = "IMDS's IPv6 endpoint answers as redirect.ipv6 expects (http-protocol-ipv6)"
	tagsName     = "tags in instance metadata (instance-metadata-tags)"
	hopName      = "IMDS's token answers stay on this host (http-put-response-hop-limit 1)"
)

const modifyOptions = "aws ec2 modify-instance-metadata-options --instance-id "

func orInstance(id string) string {
	if id == "" {
		return "INSTANCE_ID"
	}
	return id
}

// endpoint: IMDS answers a token PUT. When it refuses it (403: the
// endpoint is disabled) or does not answer at all, it says what callers
// of imdsguard got meanwhile (the redirected probe: imdsguard passes
// IMDS's refusal on, or answers 502/504 when IMDS failed).
func endpoint(o MetadataOptions, redirected Result, instanceID string) Result {
	r := Result{Name: endpointName}
	tok := o.Token
	fix := modifyOptions + orInstance(instanceID) + " --http-endpoint enabled"
	switch {
	case tok.answered() && tok.Status == http.StatusOK:
		r.Pass, r.Detail = true, "IMDS answered a token PUT: 200 in "+roundTook(tok.Took).String()
		return r
	case tok.answered() && tok.Status == http.StatusForbidden:
		r.Detail = "IMDS refuses every request: a token PUT got 403 Forbidden, which IMDS answers when its endpoint is disabled (http-endpoint disabled)"
	case tok.timedOut():
		r.Detail = "IMDS did not answer a token PUT (" + tok.describe() + "): its endpoint is disabled or unreachable from this host"
	case tok.Err != nil:
		r.Detail = "cannot reach IMDS directly: " + tok.Err.Error()
		r.Fix = "run imdsguard check as root (the direct probe needs the daemon's firewall mark); check upstream.url"
		return r
	default:
		r.Detail = fmt.Sprintf("IMDS answered a token PUT with %d, not 200", tok.Status)
	}
	r.Detail += "\ncallers of imdsguard get meanwhile: " + callersSee(redirected)
	r.Fix = fix
	return r
}

// callersSee says what the redirected IMDSv1 probe got from imdsguard.
func callersSee(redirected Result) string {
	d := redirected.Detail
	if strings.HasPrefix(d, "answered ") {
		return d + " to an IMDSv1 GET through the redirect (imdsguard answers 502 when IMDS refuses its requests, 504 when IMDS does not answer in time; a caller's token PUT is still answered by imdsguard itself)"
	}
	return d
}

// ipv6Endpoint: with redirect.ipv6 on, IMDS should answer on
// [fd00:ec2::254] too. When it does not (the IPv6 endpoint is disabled,
// the default, or the instance has no IPv6 path to it) while IPv4 answers,
// imdsguard still serves callers on [fd00:ec2::254], from IMDS's IPv4
// endpoint: enforcement is intact, but the instance then answers over
// IPv6 where IMDS itself would not. A WARN.
func ipv6Endpoint(o MetadataOptions, instanceID string) Result {
	r := Result{Name: ipv6Name, Pass: true}
	v6 := o.IPv6
	switch {
	case !o.IPv6Redirected:
		return ipv6Unredirected(v6, instanceID)
	case !v6.Sent:
		r.Info, r.Detail = true, "not asked"
	case v6.answered():
		r.Detail = "IMDS answered a token PUT on [fd00:ec2::254]: " + v6.describe()
	case !o.Token.answered():
		r.Info, r.Detail = true, "not judged: IMDS answers on neither family (see the endpoint check); on [fd00:ec2::254]: "+v6.describe()
	default:
		r.Warn = true
		r.Detail = "IMDS does not answer on [fd00:ec2::254] (" + v6.describe() + ") while IPv4 answers: the instance's IPv6 endpoint is disabled " +
			"(http-protocol-ipv6 disabled, the default) or the instance has none (IPv6 IMDS needs a Nitro instance)\n" +
			"imdsguard still answers callers on [fd00:ec2::254] (redirect.ipv6 is on), from IMDS's IPv4 endpoint: through it, metadata is served over IPv6 where IMDS itself serves none"
		r.Fix = modifyOptions + orInstance(instanceID) + " --http-protocol-ipv6 enabled; or set redirect.ipv6: false, which leaves [fd00:ec2::254] to IMDS (unanswered)"
	}
	return r
}

// ipv6Unredirected: with redirect.ipv6 off, IMDS must not answer on
// [fd00:ec2::254]: if it does, every IPv6 caller reaches IMDS past
// imdsguard (no upgrade, no policy, no hop limit of imdsguard's). A FAIL.
func ipv6Unredirected(v6 DirectAnswer, instanceID string) Result {
	r := Result{Name: ipv6Name}
	if !v6.Sent {
		r.Pass, r.Info = true, true
		r.Detail = "not asked: redirect.ipv6 is off and upstream.url is not IMDS's address"
		return r
	}
	if !v6.answered() {
		r.Pass = true
		r.Detail = "redirect.ipv6 is off, and IMDS does not answer on [fd00:ec2::254] (" + v6.describe() + "): no IPv6 path passes imdsguard by"
		return r
	}
	r.Detail = "redirect.ipv6 is off, but IMDS answers on [fd00:ec2::254] (" + v6.describe() + "): IPv6 callers reach IMDS directly, past imdsguard"
	r.Fix = "set redirect.ipv6: true (and restart imdsguard); or " + modifyOptions + orInstance(instanceID) + " --http-protocol-ipv6 disabled"
	return r
}

// tags reports whether IMDS serves the instance's tags, and whether the
// policy gives them to callers it cannot serve them to (or the other
// way round). Only reported: tags are off by default.
func tags(o MetadataOptions, instanceID string) Result {
	r := Result{Name: tagsName, Pass: true, Info: true}
	t := o.Tags
	allowed := "the policy allows tags to nobody"
	if len(o.TagsAllowedTo) > 0 {
		allowed = "the policy allows tags to " + strings.Join(o.TagsAllowedTo, ", ")
	}
	switch {
	case !t.Sent:
		r.Detail = "not asked: IMDS gave no token"
	case t.answered() && t.Status == http.StatusOK:
		keys := strings.Fields(t.Body)
		r.Detail = fmt.Sprintf("on: IMDS lists %d tag keys (%s) at /latest/meta-data/tags/instance\n%s", len(keys), strings.Join(keys, ", "), allowed)
	case t.answered() && t.Status == http.StatusNotFound:
		r.Detail = "off: /latest/meta-data/tags/instance answers 404 (instance-metadata-tags disabled, the default)"
		if len(o.TagsAllowedTo) > 0 {
			r.Detail += "\n" + allowed + ": they get 404 until tags are on (" + modifyOptions + orInstance(instanceID) + " --instance-metadata-tags enabled)"
		}
	default:
		r.Detail = "/latest/meta-data/tags/instance: " + t.describe()
	}
	return r
}

// hopLimit: IMDS's token answers must not survive a hop. With a hop limit
// of 2 or more, a container whose metadata traffic gets past the redirect
// gets an IMDSv2 token of its own from IMDS; with tokens optional on top,
// such a container needs none (IMDSv1: no hop limit applies to a GET's
// answer). A WARN: traffic through the redirect is still enforced.
func hopLimit(o MetadataOptions, tokensStatus int, instanceID string) Result {
	r := Result{Name: hopName, Pass: true}
	h := o.Hop
	switch {
	case !h.Sent:
		r.Info, r.Detail = true, "not measured: IMDS gave no token"
	case h.Err != nil:
		r.Info, r.Detail = true, "not measured: "+h.Err.Error()
	case !h.Answered && h.Drops > 0:
		r.Detail = fmt.Sprintf("hop limit 1: a token PUT on a socket that drops packets with TTL below 2 got no answer within %s, and the kernel dropped %d packets for their TTL (TcpExt TCPMinTTLDrop)", roundTook(h.Waited), h.Drops)
	case !h.Answered:
		r.Info, r.Detail = true, fmt.Sprintf("not measured: no answer within %s and no packet dropped for its TTL", roundTook(h.Waited))
	default:
		r.Warn = true
		r.Detail = "hop limit 2 or more: IMDS's token answer arrived on a socket that drops packets with TTL below 2\n" + hopRisk(tokensStatus)
		r.Fix = modifyOptions + orInstance(instanceID) + " --http-tokens required --http-put-response-hop-limit 1" +
			"  (containers get their tokens from imdsguard, with tokens.hop_limit.container: they need no IMDS hop limit above 1)"
	}
	return r
}

// hopRisk says who gets past imdsguard with a hop limit above 1.
func hopRisk(tokensStatus int) string {
	past := "a container whose metadata traffic gets past the redirect (an interface outside redirect.container_interfaces, eBPF host routing, a family the redirect leaves out, the boot before the rules are in)"
	if tokensStatus == http.StatusOK {
		return "with tokens optional, " + past + " reads IMDS with IMDSv1 (no hop limit applies to a GET), and its own IMDSv2 PUT's answer survives the bridge as well: past imdsguard's upgrade and policy either way"
	}
	return past + " gets an IMDSv2 token of its own, since the PUT's answer survives the bridge, and reads IMDS past imdsguard's policy; at hop limit 1 it would get none"
}
