package proxy

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/imdsguard/imdsguard/internal/imds"
	"github.com/imdsguard/imdsguard/internal/roles"
	"github.com/imdsguard/imdsguard/policy"
)

// Explain writes what the proxy would do with a request from caller, without
// sending anything: the canonical path, and the route's answer or the
// policy's decision with the rule, pattern and reason that made it. It uses
// the pipeline's own RouteOf and verdict, so `imdsguard policy explain` and
// the proxy cannot disagree. v1 says the request carries no token.
func Explain(w io.Writer, pol *policy.Policy, caller policy.Caller, v1 bool, method, target string) {
	rt := RouteOf(method, target)
	switch rt.Kind {
	case Refused:
		fmt.Fprintf(w, "request:  %s %s\ndecision: refused before policy (%d): %s\n", method, target, rt.Status, rt.Reason)
		return
	case TokenOptions:
		fmt.Fprintf(w, "request:  %s %s\ndecision: answered 200 with Allow: %s (no policy)\n", method, rt.Path, imds.TokenAllow)
		return
	}
	req := rt.PolicyRequest(caller, v1)
	version := "IMDSv2 (valid token)"
	switch {
	case req.Token:
		version = "token request"
	case v1:
		version = "IMDSv1 (no token)"
	}
	fmt.Fprintf(w, "request:  %s %s, %s; policy path %s\n", method, rt.Path, version, req.Path)
	io.WriteString(w, ExplainDecision(pol.Decide(req)))
}

// ExplainDecision renders d, one fact a line:
//
//	decision: deny (403)
//	rule:     legacy-app
//	pattern:  /meta-data/iam/**
//	reason:   denied by rule legacy-app: the path matches deny pattern /meta-data/iam/**
func ExplainDecision(d policy.Decision) string {
	var b strings.Builder
	b.WriteString("decision: ")
	if d.Allow {
		b.WriteString("allow")
	} else {
		if d.RejectV1 {
			b.WriteString("reject IMDSv1")
		} else {
			b.WriteString("deny")
		}
		b.WriteString(" (" + strconv.Itoa(refusalStatus(d)) + ")")
		if !d.Enforced {
			b.WriteString(", not enforced (audit mode: served anyway, logged as a would-be denial)")
		}
	}
	b.WriteString("\n")
	b.WriteString(d.String())
	return b.String()
}

// ExplainRole writes which IAM role of its own the caller would have (SPEC
// section 10) and why, and, for a read under iam/ or identity-credentials/
// that the policy allows, what the proxy answers it with that role. It
// resolves as the proxy does (Route, policy decision, roles.Resolver,
// roleRoute); res nil means roles are off.
func ExplainRole(w io.Writer, res *roles.Resolver, pol *policy.Policy, caller policy.Caller, v1 bool, method, target string) {
	if res == nil {
		return
	}
	rt := RouteOf(method, target)
	d := pol.Decide(rt.PolicyRequest(caller, v1))
	a := res.Resolve(SubjectOf(&caller, d.Rule, d.Role))
	switch {
	case a.Broken:
		fmt.Fprintf(w, "role:     unusable: credentials are refused (500)\n")
	case a.Refused:
		fmt.Fprintf(w, "role:     refused: credentials are refused (403), never the node's\n")
	case a.HasRole():
		fmt.Fprintf(w, "role:     %s, session %s (from %s)\n", a.Session.RoleARN, a.Session.Name, a.Source)
	default:
		fmt.Fprintf(w, "role:     none: the node's answers as the policy allows\n")
	}
	fmt.Fprintf(w, "why:      %s\n", a.Reason)
	if rt.Kind != Read || !roleScoped(rt.Path.Rel) || !a.HasRole() {
		return
	}
	if _, status := verdict(d); status != 0 {
		return // refused by the policy first, as explained above
	}
	switch kind, status := roleRoute(rt.Path.Rel, &a); kind {
	case roleCredentials:
		fmt.Fprintf(w, "answer:   the role's credentials from STS (AssumeRole with the node's credentials), never the node's; 503 while STS fails or is slow, 500 when it refuses\n")
	case roleList:
		fmt.Fprintf(w, "answer:   %d, the role's name %s alone\n", status, a.Session.RoleName)
	case roleIAMList:
		fmt.Fprintf(w, "answer:   %d, security-credentials/ alone\n", status)
	case roleNotFound:
		fmt.Fprintf(w, "answer:   %d: the node's, or no role of this caller's\n", status)
	}
}
