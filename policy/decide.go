package policy

import (
	"net/netip"
	"strconv"

	"github.com/imdsguard/imdsguard/internal/canon"
	"github.com/imdsguard/imdsguard/internal/workload"
)

// Mode says whether decisions are enforced.
type Mode uint8

const (
	// Enforce: denied requests are refused.
	Enforce Mode = iota
	// Audit: every request is served; denials are logged as would-be denials.
	Audit
)

func (m Mode) String() string {
	if m == Audit {
		return modeAudit
	}
	return modeEnforce
}

// Caller is who asks, as established by package internal/identity.
type Caller struct {
	UIDKnown  bool // false: the kernel could not attest the user; matches no users or groups entry
	UID       uint32
	GIDs      []uint32 // primary and supplementary groups
	Source    netip.Addr
	Interface string // ingress interface, "" for host processes
	// Container is true for a caller in another network namespace (its
	// traffic came through PREROUTING). Users and groups name users of this
	// host, sources and interfaces name containers: a container caller
	// matches no users or groups entry, whatever its uid (a container's uid 0
	// is not the host's root), and a host caller no sources or interfaces
	// entry, whatever its address (any local user can bind the host's bridge
	// address).
	Container bool
	// Workload is what the container's runtime says, for a caller whose
	// cgroup names a container the runtime knows; nil otherwise (a plain
	// host process, a runtime that did not answer). Only the containers and
	// pods selectors look at it; a host-network container (Container
	// false, Workload set) is still a host process for users and groups.
	Workload *workload.Workload
}

// Request is one metadata request, as far as the policy cares.
type Request struct {
	Caller Caller
	Path   string // canonical, relative to the version prefix: "/meta-data/iam/info"
	V1     bool   // the request carries no IMDSv2 token
	Token  bool   // this is the token PUT (Path "/api/token")
}

// Decision is the answer to a Request, with its explanation.
type Decision struct {
	Allow    bool
	RejectV1 bool   // a V1 request and the rule says imds_v1: reject: the proxy answers 401
	Enforced bool   // false in audit mode: the proxy serves anyway and logs the would-be denial
	Rule     string // name of the applying rule, "" when the default applied
	Pattern  string // the allow or deny pattern that decided, "" if none
	Reason   string // one sentence: why
	// Role is the applying rule's role: as written ("" for none): the
	// caller's IAM role of its own, resolved by package roles.
	Role string
}

// Mode returns the policy's mode.
func (p *Policy) Mode() Mode {
	if p == nil {
		return Enforce
	}
	return p.mode
}

// Decide applies the policy to r. It does no I/O, and allocates only when no
// rule matches the caller or the path is not canonical (the Reason then
// names the caller or the path); a nil Policy denies everything.
//
// Order: a non-canonical path is denied (enforced even in audit mode: it is a
// canonicalization bug, not a policy question); the first rule that fits the
// caller applies, or the default; a token request is allowed unless a deny
// pattern of the rule matches "/api/token"; an IMDSv1 request under
// imds_v1: reject is rejected whatever its path; then the path must match an
// allow pattern and no deny pattern.
func (p *Policy) Decide(r Request) Decision {
	if p == nil {
		return Decision{Enforced: true, Reason: "denied: no policy is loaded"}
	}
	if !canon.IsRel(r.Path) {
		return Decision{Enforced: true, Reason: notCanonicalReason(r.Path)}
	}
	d := p.decide(&r)
	d.Enforced = p.mode == Enforce
	return d
}

// decide is Decide without the mode.
func (p *Policy) decide(r *Request) Decision {
	ru := p.ruleFor(&r.Caller)
	if ru == nil {
		return Decision{Allow: p.defaultAllow, Reason: defaultReason(p.defaultAllow, &r.Caller)}
	}
	d := Decision{Rule: ru.name, Role: ru.role}
	if r.Token {
		if deny := firstMatch(ru.deny, tokenPath); deny != nil {
			d.Pattern, d.Reason = deny.raw, deny.reason
			return d
		}
		d.Allow, d.Reason = true, ru.tokenReason
		return d
	}
	if r.V1 && ru.rejectV1 {
		d.RejectV1, d.Reason = true, ru.rejectV1Reason
		return d
	}
	return ru.decidePath(d, r.Path)
}

// decidePath fills d for path under rule ru: deny wins over allow.
func (ru *rule) decidePath(d Decision, path string) Decision {
	if deny := firstMatch(ru.deny, path); deny != nil {
		d.Pattern, d.Reason = deny.raw, deny.reason
		return d
	}
	if allow := firstMatch(ru.allow, path); allow != nil {
		d.Allow, d.Pattern, d.Reason = true, allow.raw, allow.reason
		return d
	}
	d.Reason = ru.noAllowReason
	return d
}

// ruleFor returns the first rule whose match fits c, or nil.
func (p *Policy) ruleFor(c *Caller) *rule {
	for i := range p.rules {
		if p.rules[i].match.fits(c) {
			return &p.rules[i]
		}
	}
	return nil
}

// firstMatch returns the first of pats that matches path, or nil.
func firstMatch(pats []pattern, path string) *pattern {
	for i := range pats {
		if pats[i].match(path) {
			return &pats[i]
		}
	}
	return nil
}

// defaultReason explains a default decision, naming the caller.
func defaultReason(allow bool, c *Caller) string {
	var buf [256]byte
	b := append(buf[:0], "no rule matched the caller (uid "...)
	if c.UIDKnown {
		b = strconv.AppendUint(b, uint64(c.UID), 10)
	} else {
		b = append(b, "unknown"...)
	}
	b = append(b, ", source "...)
	if c.Source.IsValid() {
		b = c.Source.AppendTo(b)
	} else {
		b = append(b, "unknown"...)
	}
	if c.Interface != "" {
		b = append(b, ", interface "...)
		b = append(b, c.Interface...)
	}
	if w := c.Workload; w != nil {
		b = append(b, ", "...)
		b = append(b, w.Runtime...)
		b = append(b, " container "...)
		b = append(b, w.Name...)
		if w.Pod != nil {
			b = append(b, " of pod "...)
			b = append(b, w.Pod.Namespace...)
			b = append(b, '/')
			b = append(b, w.Pod.Name...)
		}
	}
	if allow {
		return string(append(b, "): the default is allow"...))
	}
	return string(append(b, "): the default is deny"...))
}

// notCanonicalReason explains the denial of a path Decide cannot trust.
func notCanonicalReason(path string) string {
	var buf [160]byte
	b := append(buf[:0], "denied: the path "...)
	b = strconv.AppendQuote(b, path)
	return string(append(b, " is not canonical (a canonicalization bug): it is never matched against the rules"...))
}
