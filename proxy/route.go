package proxy

import (
	"errors"
	"maps"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/imdsguard/imdsguard/internal/canon"
	"github.com/imdsguard/imdsguard/internal/imds"
	"github.com/imdsguard/imdsguard/policy"
)

// RouteKind is where the pipeline sends a request.
type RouteKind uint8

const (
	Refused      RouteKind = iota // answered with Route.Status before token and policy
	TokenPUT                      // the token endpoint: minted here
	TokenOptions                  // OPTIONS on the token endpoint: 200
	Read                          // GET or HEAD of a metadata path
)

// Route is what the pipeline makes of a method and request target before it
// looks at the caller's token and the policy. The proxy and `imdsguard
// policy explain` both use it, so they cannot disagree.
type Route struct {
	Kind   RouteKind
	Path   canon.Path
	Target string // Path.String(): what is asked upstream and logged, made once
	Status int    // when Refused
	Reason string // when Refused
}

// RouteOf routes a request.
func RouteOf(method, target string) Route {
	if len(target) > canon.MaxTarget {
		return Route{Status: http.StatusRequestURITooLong, Reason: "request target too long"}
	}
	path, err := canon.Parse(target)
	if err != nil {
		var ce *canon.Error
		errors.As(err, &ce)
		return Route{Status: ce.Status, Reason: ce.Reason}
	}
	rt := Route{Kind: Read, Path: path, Target: path.String()}
	switch {
	case path.Rel == imds.TokenPath && method == http.MethodPut:
		rt.Kind = TokenPUT
	case path.Rel == imds.TokenPath && method == http.MethodOptions:
		rt.Kind = TokenOptions
	case path.Rel == imds.TokenPath:
		rt.Kind, rt.Status, rt.Reason = Refused, http.StatusMethodNotAllowed, "the token path takes PUT"
	case method != http.MethodGet && method != http.MethodHead:
		rt.Kind, rt.Status, rt.Reason = Refused, http.StatusMethodNotAllowed, "method not allowed on metadata paths"
	}
	return rt
}

// Canonical reports whether the target had a canonical path.
func (rt Route) Canonical() bool { return rt.Path.Rel != "" }

// PolicyRequest is the question the route puts to the policy for caller.
func (rt Route) PolicyRequest(caller policy.Caller, v1 bool) policy.Request {
	if rt.Kind == TokenPUT {
		return policy.Request{Caller: caller, Path: imds.TokenPath, Token: true}
	}
	return policy.Request{Caller: caller, Path: rt.Path.Rel, V1: v1}
}

// routes remembers RouteOf's answers for the requests a host sends over and
// over (a handful of targets, thousands of times a second), so that parsing
// and building the canonical path happen once per distinct target instead
// of once per request. RouteOf is a pure function of the method and target,
// so a remembered Route is exactly the one it would return. Reads take no
// lock: the table is replaced whole (copy on write) when a route is added,
// and emptied when it is full, so a caller sending endless distinct targets
// costs only itself the parsing.
type routes struct {
	table atomic.Pointer[map[routeKey]Route]
	mu    sync.Mutex // serializes additions
}

type routeKey struct{ method, target string }

// maxRoutes bounds the table; maxRouteTarget the targets it keeps.
const (
	maxRoutes      = 256
	maxRouteTarget = 256
)

// of is RouteOf(method, target), remembered.
func (rs *routes) of(method, target string) Route {
	k := routeKey{method, target}
	if t := rs.table.Load(); t != nil {
		if rt, ok := (*t)[k]; ok {
			return rt
		}
	}
	rt := RouteOf(method, target)
	if len(target) <= maxRouteTarget {
		rs.add(k, rt)
	}
	return rt
}

func (rs *routes) add(k routeKey, rt Route) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	next := map[routeKey]Route{}
	if t := rs.table.Load(); t != nil && len(*t) < maxRoutes {
		next = make(map[routeKey]Route, len(*t)+1)
		maps.Copy(next, *t)
	}
	// The key's strings are cloned: the request's would keep its whole
	// request line alive.
	next[routeKey{strings.Clone(k.method), strings.Clone(k.target)}] = rt
	rs.table.Store(&next)
}
