// Package proxy is imdsguard's metadata front end: an http.Handler, built on
// goproxy, that speaks IMDS to every caller and asks the real IMDS only
// through the upstream package, for exactly the canonical path it decided on.
//
// The pipeline, in order, for every request (goproxy runs it for
// absolute-form targets as an HTTP_PROXY client sends them; origin-form
// targets, as a redirected client or an endpoint-configured SDK sends them,
// go straight to goproxy's NonproxyHandler; both end in Proxy.handle):
//
//  1. CONNECT: 405; imdsguard is not a tunnel.
//  2. a target longer than canon.MaxTarget: 414.
//  3. X-Forwarded-For or Forwarded, in any case, empty or repeated: 403 in
//     `reject` mode and always on the token PUT (as IMDS does); in `strip`
//     mode they are ignored, which is removal, because nothing a caller
//     sends is ever copied into an upstream request.
//  4. the canonical path (canon.Parse): 400, or 404 for an unknown version.
//  5. /latest/api/token: PUT is answered here with a token minted for the
//     caller (TTL 400, policy 403), sent with the caller class's hop limit;
//     OPTIONS 200; other methods 405 with Allow: OPTIONS, PUT.
//  6. methods other than GET and HEAD: 405.
//  7. X-aws-ec2-metadata-token present: it must be one minted for this
//     caller and unexpired (401); absent: an IMDSv1 request.
//  8. policy: v1 rejected by the caller's rule (401), path denied (403);
//     in audit mode both are served and reported as would-deny.
//  9. a caller with an IAM role of its own (roles.go): iam/ and
//     identity-credentials/ are answered here, from its role's
//     credentials (the STS broker), never from IMDS or the cache.
//  10. Upstream.Fetch of the canonical path: the cache (internal/cache), which
//     answers from memory or asks upstream.Client with the host's session
//     token; IMDS's answer as it is (status, body, Server, Content-Type,
//     Location), hop-by-hop headers dropped; 502, or 504 when IMDS did not
//     answer in time (and the cache held nothing recent).
//  11. one audit.Event per request: every step above returns its outcome
//     (the answer and what the event says of it), and Proxy.answer alone
//     turns it into the event, observed once, and the answer. A token
//     answer withheld for a container beyond the hop limit is such an
//     outcome too; the connection is aborted there and nowhere else.
package proxy

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/elazarl/goproxy"

	"github.com/imdsguard/imdsguard/internal/audit"
	"github.com/imdsguard/imdsguard/internal/cache"
	"github.com/imdsguard/imdsguard/internal/identity"
	"github.com/imdsguard/imdsguard/internal/roles"
	"github.com/imdsguard/imdsguard/internal/token"
	"github.com/imdsguard/imdsguard/policy"
)

// Upstream answers metadata requests for canonical paths: the real IMDS
// through upstream.Client, or the cache in front of it.
type Upstream interface {
	Fetch(ctx context.Context, method, path string) (*http.Response, error)
}

// cachedUpstream is an Upstream that also says how it answered (the cache):
// the audit event carries it.
type cachedUpstream interface {
	FetchOutcome(ctx context.Context, method, path string) (*http.Response, cache.Outcome, error)
}

// Options configure a Proxy.
type Options struct {
	Upstream Upstream
	Minter   *token.Minter
	Policy   *policy.Policy
	// StripForwarded ignores X-Forwarded-For / Forwarded on metadata reads
	// instead of refusing them (config forwarded_headers: strip).
	StripForwarded bool
	HopLimit       token.HopLimit
	// Identify tells who is on the other end of a connection; it is called
	// once per connection. Nil: the connection's addresses only.
	Identify func(c net.Conn) identity.Caller
	// Observe receives every request's Event (audit log, metrics, the
	// IMDSv1 usage table). Nil: events are logged to Log.
	Observe func(*audit.Event)
	Log     *slog.Logger
	// Roles resolves which callers have IAM roles of their own (SPEC
	// section 10), and Credentials serves them (the STS broker). Nil
	// Roles: no caller has one.
	Roles       *roles.Resolver
	Credentials RoleCredentials
}

// Proxy is the metadata front end; it is an http.Handler.
type Proxy struct {
	gp       *goproxy.ProxyHttpServer
	upstream Upstream
	cached   cachedUpstream // upstream, when it is a cache
	minter   *token.Minter
	policy   atomic.Pointer[policy.Policy]
	roles    atomic.Pointer[roles.Resolver]
	creds    RoleCredentials
	strip    bool
	hop      token.HopLimit
	identify func(c net.Conn) identity.Caller
	observe  func(*audit.Event)
	log      *slog.Logger
	// unheld is closed when the server shuts down: token answers withheld
	// from callers beyond the hop limit end at once (withhold).
	unheld     chan struct{}
	unheldOnce sync.Once
}

// New returns a Proxy for o.
func New(o Options) *Proxy {
	p := &Proxy{
		upstream: o.Upstream,
		minter:   o.Minter,
		strip:    o.StripForwarded,
		hop:      o.HopLimit,
		identify: o.Identify,
		observe:  o.Observe,
		log:      o.Log,
		creds:    o.Credentials,
		unheld:   make(chan struct{}),
	}
	p.roles.Store(o.Roles)
	p.cached, _ = o.Upstream.(cachedUpstream)
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.identify == nil {
		p.identify = addressesOnly
	}
	if p.observe == nil {
		p.observe = func(e *audit.Event) { e.Log(p.log) }
	}
	p.policy.Store(o.Policy)
	p.gp = p.pipeline()
	return p
}

// SetPolicy replaces the policy for all requests that start from now on.
func (p *Proxy) SetPolicy(pol *policy.Policy) { p.policy.Store(pol) }

// SetRoles replaces the role resolver (a reload of roles:) for all
// requests that start from now on.
func (p *Proxy) SetRoles(r *roles.Resolver) { p.roles.Store(r) }

// Roles returns the role resolver in force (nil: roles are off).
func (p *Proxy) Roles() *roles.Resolver { return p.roles.Load() }

// Policy returns the policy in force.
func (p *Proxy) Policy() *policy.Policy { return p.policy.Load() }

// ServeHTTP implements http.Handler. Requests for a proxy (absolute-form
// targets, CONNECT) go through goproxy; an origin-form request goes where
// goproxy would send it, its NonproxyHandler (serveOrigin), without
// goproxy's per-request context and log formatting first.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect && !r.URL.IsAbs() {
		p.serveOrigin(w, r)
		return
	}
	p.gp.ServeHTTP(w, r)
}

// stopWithholding ends every withheld answer (the server shuts down).
func (p *Proxy) stopWithholding() { p.unheldOnce.Do(func() { close(p.unheld) }) }
