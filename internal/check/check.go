// Package check verifies on an instance that imdsguard's enforcement is
// really in effect: the redirect rules are in place with their landing
// addresses on lo, containers' metadata traffic reaches the proxy (and
// nothing routes it past netfilter; which container network the node
// has), the container runtimes that name callers answer, the daemon
// answers on its port and through the redirect, IMDS itself refuses
// unauthenticated IMDSv1 (the instance is set to http-tokens required),
// and an IMDSv1 request through the redirect is served. Then the
// instance's metadata options, asked of IMDS directly (options.go): the
// endpoint enabled, the IPv6 endpoint as redirect.ipv6 expects, tags in
// metadata, the token answers' hop limit. Each check says PASS or FAIL
// and, on FAIL, the fix; WARN (with its fix) and INFO leave the report OK.
//
// Offline (offline.go) checks an image being baked instead: no network,
// no IMDS, no running systemd.
//
// Ready is the subset that says "this node's imdsguard is enforcing and
// serving", for a DaemonSet's readiness and liveness probes: it needs
// neither IMDS nor a runtime.
package check

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Result is one check.
type Result struct {
	Name string
	Pass bool
	// Warn (with Pass) is a finding that leaves enforcement in effect but
	// weakens it or differs from what IMDS itself does: printed WARN with
	// its fix; the exit status stays 0. Info (with Pass) only reports a
	// setting: printed INFO.
	Warn, Info bool
	Detail     string // what was seen
	Fix        string // what to do, on FAIL or WARN
	// Short is what a passing check says on Report.Line's one line; ""
	// for the Name.
	Short string
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
		verdict := c.verdict()
		fmt.Fprintf(&b, "%s  %s\n", verdict, c.Name)
		for _, l := range strings.Split(c.Detail, "\n") {
			if l != "" {
				fmt.Fprintf(&b, "      %s\n", l)
			}
		}
		if (!c.Pass || c.Warn) && c.Fix != "" {
			fmt.Fprintf(&b, "      fix: %s\n", c.Fix)
		}
	}
	return b.String()
}

// verdict is the word a report prints for c.
func (c Result) verdict() string {
	switch {
	case !c.Pass:
		return "FAIL"
	case c.Warn:
		return "WARN"
	case c.Info:
		return "INFO"
	}
	return "PASS"
}

// Line is the report on one line, each check's Short (or Name), for a
// probe that passes.
func (r Report) Line() string {
	parts := make([]string, len(r))
	for i, c := range r {
		parts[i] = c.Short
		if parts[i] == "" {
			parts[i] = c.Name
		}
	}
	return strings.Join(parts, "; ")
}

// Probes are the ways a check looks at the instance.
type Probes interface {
	// Rules says whether the redirect rules are complete (nil: redirect off).
	Rules(ctx context.Context) (ok bool, detail string, err error)
	// Landing tells the landing address on lo of each redirected family;
	// none when no container interface is redirected.
	Landing(ctx context.Context) ([]Landing, error)
	// Containers tells about the path of container metadata traffic.
	Containers(ctx context.Context) (Containers, error)
	// Runtimes asks each configured container runtime whether it answers.
	Runtimes(ctx context.Context) []Runtime
	// Proxy asks the daemon on its own port for a token.
	Proxy(ctx context.Context) (status int, err error)
	// Served sends a token OPTIONS to the metadata address of each family
	// the configuration redirects, the way any process would: through the
	// redirect, to be answered by imdsguard itself (IMDS is not asked).
	Served(ctx context.Context) []Answer
	// Direct sends an IMDSv1 GET for path straight to IMDS, past the
	// redirect (with the daemon's firewall mark).
	Direct(ctx context.Context, path string) (status int, body string, err error)
	// Redirected sends an IMDSv1 GET for path to the metadata address the
	// way any process would, through the redirect.
	Redirected(ctx context.Context, path string) (status int, body string, err error)
	// MetadataOptions asks IMDS directly, past the redirect, how the
	// instance's metadata options are set.
	MetadataOptions(ctx context.Context) MetadataOptions
}

const instanceIDPath = "/latest/meta-data/instance-id"

// Run runs every check. The metadata options are asked meanwhile (their
// requests go straight to IMDS, each bounded by DirectTimeout).
func Run(ctx context.Context, p Probes) Report {
	optc := make(chan MetadataOptions, 1)
	go func() { optc <- p.MetadataOptions(ctx) }()
	ru := rules(ctx, p)
	c, cerr := p.Containers(ctx)
	redirected := redirectedV1(ctx, p)
	tokens, tokensStatus := tokensRequired(ctx, p, redirected.instanceID)
	id := redirected.instanceID
	if id == "" {
		id = tokens.instanceID
	}
	o := <-optc
	return Report{
		ru, landing(ctx, p), containers(c, cerr), runtimes(ctx, p, c, cerr),
		proxyAnswers(ctx, p), served(ctx, p, ru.Pass), tokens.Result, redirected.Result,
		endpoint(o, redirected.Result, id), ipv6Endpoint(o, id), tags(o, id), hopLimit(o, tokensStatus, id),
	}
}

// ReadyTimeout bounds Ready as a whole: well under a Kubernetes probe's
// timeoutSeconds (the DaemonSet gives 5).
const ReadyTimeout = 3 * time.Second

// Ready runs only what says "this node's imdsguard is enforcing and
// serving": the rules complete, the landing addresses on lo, and a token
// OPTIONS through the redirect answered. It asks neither IMDS (an instance
// not yet at http-tokens required still gets a ready imdsguard) nor a
// container runtime.
func Ready(ctx context.Context, p Probes) Report {
	ctx, cancel := context.WithTimeout(ctx, ReadyTimeout)
	defer cancel()
	ru := rules(ctx, p)
	return Report{ru, landing(ctx, p), served(ctx, p, ru.Pass)}
}
