package proxy

import (
	"net/http"
	"time"

	"github.com/imdsguard/imdsguard/internal/audit"
	"github.com/imdsguard/imdsguard/internal/cache"
	"github.com/imdsguard/imdsguard/internal/imds"
	"github.com/imdsguard/imdsguard/internal/upstream"
)

// handle runs one request through the pipeline described in the package
// comment and returns the answer; it never returns nil.
func (p *Proxy) handle(r *http.Request) *http.Response {
	cs := p.state(r)
	if cs.ttlSet {
		if err := cs.resetTTL(); err != nil {
			p.log.Warn("restore the connection's TTL after a token answer", "err", err)
		}
	}
	rt, o := p.decide(r, cs)
	return p.answer(r, cs, rt, o)
}

// answer is the pipeline's boundary: it turns the outcome of a request into
// its audit event, observed once, and its answer. A withheld answer ends
// here too: nothing is sent, and the connection is aborted.
func (p *Proxy) answer(r *http.Request, cs *connState, rt Route, o outcome) *http.Response {
	ev := &audit.Event{
		Caller:   &cs.caller,
		Method:   r.Method,
		Version:  o.version,
		Decision: o.decision,
		Rule:     o.rule,
		Reason:   o.reason,
		Upstream: o.upstream,
		Cache:    o.cache,
		Token:    rt.Path.Rel == imds.TokenPath,

		Role:       o.role,
		Session:    o.session,
		RoleReason: o.roleReason,
		RoleCache:  o.roleCache,
	}
	if rt.Canonical() {
		ev.Path = rt.Target
	} else {
		ev.Target = truncate(r.RequestURI)
	}
	if o.withheld {
		p.observe(ev)
		p.withhold(r.Context()) // does not return
	}
	if o.hop > 0 {
		if err := cs.setTTL(o.hop); err != nil {
			p.log.Warn("set hop limit of token answer", "err", err, "hop_limit", o.hop)
		}
	}
	ev.Status = o.resp.StatusCode
	p.observe(ev)
	return o.resp
}

// decide routes a request and runs the step that answers it.
func (p *Proxy) decide(r *http.Request, cs *connState) (Route, outcome) {
	relayed := forwardedHeader(r.Header)
	if relayed != "" && !p.strip {
		return Route{}, refuse(r, http.StatusForbidden, "carries "+relayed+": requests relayed by another proxy are refused")
	}
	rt := RouteOf(r.Method, r.RequestURI)
	switch rt.Kind {
	case TokenPUT:
		return rt, p.tokenPUT(r, cs, rt, relayed)
	case TokenOptions:
		return rt, tokenOptions(r)
	case Read: // a GET or HEAD of a metadata path
		o, ok := p.admit(r, cs, rt)
		if ok && !p.serveRole(r, cs, rt, &o) {
			p.fetch(r, rt, &o)
		}
		return rt, o
	}
	o := refuse(r, rt.Status, rt.Reason)
	if rt.Path.Rel == imds.TokenPath {
		o.resp.Header["Allow"] = []string{imds.TokenAllow}
	}
	return rt, o
}

// truncate keeps audit events of absurd targets small.
func truncate(target string) string {
	if len(target) > 256 {
		return target[:256] + "..."
	}
	return target
}

// admit checks a read's token, if it has one, and asks the policy: ok when
// it is to be served; either way the outcome says why.
func (p *Proxy) admit(r *http.Request, cs *connState, rt Route) (outcome, bool) {
	version, why := p.checkToken(r, cs)
	if why != "" {
		o := refuse(r, http.StatusUnauthorized, why)
		o.version = version
		return o, false
	}
	d := p.policy.Load().Decide(rt.PolicyRequest(cs.policy, version == audit.V1))
	o, ok := enforce(r, d)
	o.version = version
	return o, ok
}

// checkToken tells an IMDSv1 read from an IMDSv2 one, and checks the
// token of the latter: why is "" when it is one minted for this caller and
// unexpired.
func (p *Proxy) checkToken(r *http.Request, cs *connState) (v audit.Version, why string) {
	toks, ok := r.Header[imds.HeaderToken]
	if !ok {
		return audit.V1, ""
	}
	if len(toks) != 1 {
		return audit.V2, "more than one token"
	}
	if err := cs.verify(p.minter, toks[0]); err != nil {
		return audit.V2, err.Error()
	}
	return audit.V2, ""
}

// fetch completes o, a request to be served, with IMDS's answer for the
// canonical path. On failure the answer is 502, or 504 when IMDS did not
// answer in time, and the decision becomes an error.
func (p *Proxy) fetch(r *http.Request, rt Route, o *outcome) {
	start := time.Now()
	var resp *http.Response
	var err error
	if p.cached != nil {
		var co cache.Outcome
		resp, co, err = p.cached.FetchOutcome(r.Context(), r.Method, rt.Target)
		o.cache = co.String()
	} else {
		resp, err = p.upstream.Fetch(r.Context(), r.Method, rt.Target)
	}
	o.upstream = time.Since(start)
	if err != nil {
		status := http.StatusBadGateway
		if upstream.IsTimeout(err) {
			status = http.StatusGatewayTimeout
		}
		o.resp, o.decision, o.reason = errorResponse(r, status), audit.Error, err.Error()
		return
	}
	o.resp = passThrough(resp)
}

// forwardedHeader returns the name of an X-Forwarded-For or Forwarded
// header in h, in any spelling ("x_forwarded_for" too), or "".
func forwardedHeader(h http.Header) string {
	for name := range h {
		if sameHeader(name, "x-forwarded-for") || sameHeader(name, "forwarded") {
			return name
		}
	}
	return ""
}

// sameHeader compares a header name with a lower-case one, ignoring case
// and treating '_' as '-' (some servers and proxies do).
func sameHeader(name, lower string) bool {
	if len(name) != len(lower) {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		} else if c == '_' {
			c = '-'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
