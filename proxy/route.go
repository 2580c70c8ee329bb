package proxy

import (
	"errors"
	"net/http"

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
