package proxy

import (
	"net/http"
	"time"

	"github.com/imdsguard/imdsguard/policy"
	"github.com/imdsguard/imdsguard/proxy/upstream"
)

// handle runs one request through the pipeline described in the package
// comment and returns the answer; it never returns nil.
func (p *Proxy) handle(r *http.Request) *http.Response {
	cs := p.state(r)
	cs.resetTTL()
	ev := Event{Caller: &cs.caller, Method: r.Method}
	resp := p.route(r, cs, &ev)
	ev.Status = resp.StatusCode
	p.observe(&ev)
	return resp
}

func (p *Proxy) route(r *http.Request, cs *connState, ev *Event) *http.Response {
	relayed := forwardedHeader(r.Header)
	if relayed != "" && !p.strip {
		ev.Target = truncate(r.RequestURI)
		return reject(r, ev, http.StatusForbidden, "carries "+relayed+": requests relayed by another proxy are refused")
	}
	rt := RouteOf(r.Method, r.RequestURI)
	if rt.Canonical() {
		ev.Path = rt.Path.String()
	} else {
		ev.Target = truncate(r.RequestURI)
	}
	switch rt.Kind {
	case TokenPUT, TokenOptions:
		return p.tokenEndpoint(r, cs, rt, ev, relayed)
	case Read:
		return p.read(r, cs, rt, ev)
	}
	resp := reject(r, ev, rt.Status, rt.Reason)
	if rt.Path.Rel == "/api/token" {
		ev.Token = true
		resp.Header["Allow"] = []string{tokenAllow}
	}
	return resp
}

// truncate keeps audit events of absurd targets small.
func truncate(target string) string {
	if len(target) > 256 {
		return target[:256] + "..."
	}
	return target
}

// read is a GET or HEAD of a metadata path: token check, policy, upstream.
func (p *Proxy) read(r *http.Request, cs *connState, rt Route, ev *Event) *http.Response {
	v1 := true
	ev.Version = "v1"
	if toks, ok := r.Header["X-Aws-Ec2-Metadata-Token"]; ok {
		v1, ev.Version = false, "v2"
		if len(toks) != 1 {
			return reject(r, ev, http.StatusUnauthorized, "more than one token")
		}
		if err := p.minter.Verify(toks[0], cs.binding); err != nil {
			return reject(r, ev, http.StatusUnauthorized, err.Error())
		}
	}
	d := p.policy.Load().Decide(rt.PolicyRequest(cs.policy, v1))
	if resp := p.enforce(r, ev, d); resp != nil {
		return resp
	}
	return p.fetch(r, ev)
}

// enforce records the policy decision in ev and returns the refusal, or nil
// when the request is to be served (allowed, or denied in audit mode).
func (p *Proxy) enforce(r *http.Request, ev *Event, d policy.Decision) *http.Response {
	ev.Rule, ev.Reason = d.Rule, d.Reason
	switch {
	case d.Allow:
		ev.Decision = Allow
	case !d.Enforced:
		ev.Decision = WouldDeny
	case d.RejectV1:
		ev.Decision = Deny
		return errorResponse(r, http.StatusUnauthorized)
	default:
		ev.Decision = Deny
		return errorResponse(r, http.StatusForbidden)
	}
	return nil
}

func (p *Proxy) fetch(r *http.Request, ev *Event) *http.Response {
	start := time.Now()
	resp, err := p.upstream.Fetch(r.Context(), r.Method, ev.Path)
	ev.Upstream = time.Since(start)
	if err != nil {
		ev.Decision, ev.Reason = Fail, err.Error()
		if upstream.IsTimeout(err) {
			return errorResponse(r, http.StatusGatewayTimeout)
		}
		return errorResponse(r, http.StatusBadGateway)
	}
	return passThrough(resp)
}

// reject is a refusal by the protocol rather than by policy.
func reject(r *http.Request, ev *Event, status int, reason string) *http.Response {
	ev.Decision, ev.Reason = Reject, reason
	return errorResponse(r, status)
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
