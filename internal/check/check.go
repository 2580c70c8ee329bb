// Package check verifies on an instance that imdsguard's enforcement is
// really in effect: the redirect rules are in place, containers' metadata
// traffic reaches the proxy (and nothing routes it past netfilter), the
// daemon answers, IMDS itself refuses unauthenticated IMDSv1 (the instance
// is set to http-tokens required), and an IMDSv1 request through the
// redirect is served. Each check says PASS or FAIL and, on FAIL, the fix.
package check

import (
	"context"
	"fmt"
	"strings"
)

// Result is one check.
type Result struct {
	Name   string
	Pass   bool
	Detail string // what was seen
	Fix    string // what to do, on FAIL
}

// Report is every check, in order.
type Report []Result

// OK reports whether every check passed.
func (r Report) OK() bool {
	for _, c := range r {
		if !c.Pass {
			return false
		}
	}
	return len(r) > 0
}

func (r Report) String() string {
	var b strings.Builder
	for _, c := range r {
		verdict := "PASS"
		if !c.Pass {
			verdict = "FAIL"
		}
		fmt.Fprintf(&b, "%s  %s\n", verdict, c.Name)
		for _, l := range strings.Split(c.Detail, "\n") {
			if l != "" {
				fmt.Fprintf(&b, "      %s\n", l)
			}
		}
		if !c.Pass && c.Fix != "" {
			fmt.Fprintf(&b, "      fix: %s\n", c.Fix)
		}
	}
	return b.String()
}

// Probes are the ways a check looks at the instance.
type Probes interface {
	// Rules says whether the redirect rules are complete (nil: redirect off).
	Rules(ctx context.Context) (ok bool, detail string, err error)
	// Containers tells about the path of container metadata traffic.
	Containers(ctx context.Context) (Containers, error)
	// Proxy asks the daemon on its own port for a token.
	Proxy(ctx context.Context) (status int, err error)
	// Direct sends an IMDSv1 GET for path straight to IMDS, past the
	// redirect (with the daemon's firewall mark).
	Direct(ctx context.Context, path string) (status int, body string, err error)
	// Redirected sends an IMDSv1 GET for path to the metadata address the
	// way any process would, through the redirect.
	Redirected(ctx context.Context, path string) (status int, body string, err error)
}

const instanceIDPath = "/latest/meta-data/instance-id"

// Run runs every check.
func Run(ctx context.Context, p Probes) Report {
	redirected := redirectedV1(ctx, p)
	return Report{rules(ctx, p), containers(ctx, p), proxyAnswers(ctx, p), tokensRequired(ctx, p, redirected.instanceID), redirected.Result}
}
