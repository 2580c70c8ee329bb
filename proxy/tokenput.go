package proxy

import (
	"net/http"
	"strconv"
	"time"

	"github.com/imdsguard/imdsguard/proxy/identity"
	"github.com/imdsguard/imdsguard/proxy/token"
)

// dropHold is how long a token request beyond the hop limit is held without
// an answer (as IMDS's answer would be lost on the way) before the
// connection is closed.
const dropHold = 10 * time.Second

// tokenEndpoint answers /latest/api/token itself: the upstream session token
// never leaves the daemon.
func (p *Proxy) tokenEndpoint(r *http.Request, cs *connState, rt Route, ev *Event, relayed string) *http.Response {
	ev.Token = true
	if rt.Kind == TokenOptions {
		resp := response(r, http.StatusOK, "text/plain", "")
		resp.Header["Allow"] = []string{tokenAllow}
		ev.Decision, ev.Reason = Allow, "OPTIONS on the token path"
		return resp
	}
	if relayed != "" { // in strip mode too: IMDS refuses relayed token requests
		return reject(r, ev, http.StatusForbidden, "token request carries "+relayed)
	}
	ttl, ok := parseTTL(r.Header["X-Aws-Ec2-Metadata-Token-Ttl-Seconds"])
	if !ok {
		return reject(r, ev, http.StatusBadRequest, "X-aws-ec2-metadata-token-ttl-seconds missing or not 1..21600")
	}
	d := p.policy.Load().Decide(rt.PolicyRequest(cs.policy, false))
	if resp := p.enforce(r, ev, d); resp != nil {
		return resp
	}
	p.sendWithHopLimit(r, cs, ev)
	resp := response(r, http.StatusOK, "text/plain", p.minter.Mint(cs.binding, ttl))
	resp.Header["X-Aws-Ec2-Metadata-Token-Ttl-Seconds"] = []string{strconv.Itoa(int(ttl / time.Second))}
	return resp
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
	return ttl, ttl >= token.MinTTL && ttl <= token.MaxTTL
}

// sendWithHopLimit sets the TTL of the token answer for the caller's class.
// IMDS's answer to a container crosses this host as one routed hop, which
// imdsguard's own answer does not, so a container gets hop_limit-1; with
// hop_limit 1 that is nothing, and the answer is withheld exactly as the
// network would drop IMDS's: no reply, then the connection closes.
func (p *Proxy) sendWithHopLimit(r *http.Request, cs *connState, ev *Event) {
	hop := p.hop.Host
	if cs.caller.Class == identity.Container {
		hop = p.hop.Container - 1
	}
	if hop < 1 {
		ev.Decision, ev.Reason = Drop, "container caller beyond tokens.hop_limit.container"
		p.observe(ev)
		withhold(r)
	}
	if err := cs.setTTL(hop); err != nil {
		p.log.Warn("set hop limit of token answer", "err", err, "hop_limit", hop)
	}
}

// withhold never answers r: it waits for the client to give up, then aborts
// the connection without a response.
func withhold(r *http.Request) {
	t := time.NewTimer(dropHold)
	defer t.Stop()
	select {
	case <-r.Context().Done():
	case <-t.C:
	}
	panic(http.ErrAbortHandler)
}
