package proxy

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/imdsguard/imdsguard/internal/audit"
	"github.com/imdsguard/imdsguard/internal/identity"
	"github.com/imdsguard/imdsguard/internal/imds"
)

// dropHold is how long a token request beyond the hop limit is held without
// an answer (as IMDS's answer would be lost on the way) before the
// connection is closed.
const dropHold = 10 * time.Second

// tokenOptions answers OPTIONS on the token path, as IMDS does.
func tokenOptions(r *http.Request) outcome {
	resp := response(r, http.StatusOK, "text/plain", "")
	resp.Header["Allow"] = []string{imds.TokenAllow}
	return outcome{resp: resp, decision: audit.Allow, reason: "OPTIONS on the token path"}
}

// tokenPUT answers PUT /latest/api/token itself, with a token minted for the
// caller: the upstream session token never leaves the daemon.
func (p *Proxy) tokenPUT(r *http.Request, cs *connState, rt Route, relayed string) outcome {
	if relayed != "" { // in strip mode too: IMDS refuses relayed token requests
		return refuse(r, http.StatusForbidden, "token request carries "+relayed)
	}
	ttl, ok := parseTTL(r.Header[imds.HeaderTokenTTL])
	if !ok {
		return refuse(r, http.StatusBadRequest, "X-aws-ec2-metadata-token-ttl-seconds missing or not 1..21600")
	}
	o, ok := enforce(r, p.policy.Load().Decide(rt.PolicyRequest(cs.policy, false)))
	if !ok {
		return o
	}
	o.hop = p.hopLimit(cs.caller.Class)
	if o.hop < 1 {
		o.hop, o.withheld = 0, true
		o.decision, o.reason = audit.Drop, "container caller beyond tokens.hop_limit.container"
		return o
	}
	o.resp = response(r, http.StatusOK, "text/plain", p.minter.Mint(cs.binding, ttl))
	o.resp.Header[imds.HeaderTokenTTL] = []string{strconv.Itoa(int(ttl / time.Second))}
	return o
}

// parseTTL accepts exactly one value of 1 to 21600 decimal digits-only
// seconds, as IMDS does.
func parseTTL(vals []string) (time.Duration, bool) {
	if len(vals) != 1 || len(vals[0]) == 0 || len(vals[0]) > 5 {
		return 0, false
	}
	n := 0
	for _, c := range []byte(vals[0]) {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	ttl := time.Duration(n) * time.Second
	return ttl, ttl >= imds.MinTokenTTL && ttl <= imds.MaxTokenTTL
}

// hopLimit is the IP TTL of a token answer for the caller's class. IMDS's
// answer to a container crosses this host as one routed hop, which
// imdsguard's own answer does not, so a container gets hop_limit-1; with
// hop_limit 1 that is 0: the answer is to be withheld, exactly as the
// network would drop IMDS's.
func (p *Proxy) hopLimit(class identity.Class) int {
	if class == identity.Container {
		return p.hop.Container - 1
	}
	return p.hop.Host
}

// withhold never answers the request of ctx: it waits until the client
// gives up (net/http cancels ctx when the connection closes), dropHold has
// passed or the server shuts down, then aborts the connection without a
// response. Only Proxy.answer calls it.
func (p *Proxy) withhold(ctx context.Context) {
	t := time.NewTimer(dropHold)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	case <-p.unheld:
	}
	panic(http.ErrAbortHandler)
}
