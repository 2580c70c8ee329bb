package proxy

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/imdsguard/imdsguard/internal/imds"
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
