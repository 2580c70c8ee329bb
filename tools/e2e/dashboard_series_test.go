package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/imdsguard/imdsguard/tools/dashboard"
	"github.com/imdsguard/imdsguard/tools/promrules"
	"github.com/imdsguard/imdsguard/tools/testbed"
)

// The dashboard (packaging/grafana/imdsguard.json) and the Prometheus
// rules (packaging/prometheus/imdsguard-rules.yaml) read only series that
// a running daemon exports: its scrape after a few requests (an IMDSv1
// one among them, so that the label-bearing series exist), the recording
// rules' own series, and Prometheus's up.
func TestDashboardAndRulesReadExportedSeries(t *testing.T) {
	const port = 19990
	e, h, _ := transparent(t, testbed.HostOptions{}, testbed.HostGuardConfig{Extra: fmt.Sprintf("metrics: {listen: \"127.0.0.1:%d\"}", port)})
	e.RequireBins("promqlnames")
	u := testbed.EnsureUser(t, "imdstest-e2e")
	curlOK(t, e, h.InHost(e.AsUser(u, e.Curl(testbed.IMDSURL(4)+"/latest/meta-data/instance-id"))), testbed.AEMMInstanceID)
	curlStatus(t, e, h.InHost(e.AsUser(u, e.Curl(testbed.IMDSURL(4)+"/latest/meta-data/iam/security-credentials/"))), 403)
	if r := e.Run(h.InHost(e.IMDSClient("v2", "", "-no-fallback", "-get", "instance-id"))); r.Err != nil {
		t.Fatal(r)
	}
	r := e.Run(h.InHost(e.Curl(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))))
	if r.Err != nil {
		t.Fatal(r)
	}
	exported := scrapedNames(r.Stdout)
	rules, err := promrules.LoadRules(filepath.Join(e.Root, promrules.RulesFile))
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{"up": true}
	for _, n := range append(exported, rules.Recorded()...) {
		known[n] = true
	}
	t.Logf("the daemon exports %d series names; the rules record %d", len(exported), len(rules.Recorded()))

	reads := dashboardReads(t, e)
	for _, x := range rules.All() {
		reads[ruleWhere(x)] = x.Expr
	}
	unknown := map[string][]string{}
	for where, names := range parseReads(t, e, reads) {
		for _, n := range names {
			if !known[n] {
				unknown[n] = append(unknown[n], where)
			}
		}
	}
	for n, where := range unknown {
		slices.Sort(where)
		t.Errorf("%s is not exported by the daemon, read by %s", n, strings.Join(where, "; "))
	}
}

// scrapedNames are the sample names of a Prometheus text scrape.
func scrapedNames(scrape string) []string {
	var out []string
	for _, l := range strings.Split(scrape, "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if i := strings.IndexAny(l, "{ "); i > 0 {
			out = append(out, l[:i])
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func ruleWhere(r promrules.Rule) string {
	if r.Alert != "" {
		return "alert " + r.Alert
	}
	return "recording rule " + r.Record
}

// dashboardReads is every query of the committed dashboard, as PromQL, by
// where it is.
func dashboardReads(t *testing.T, e *testbed.Env) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.Root, dashboard.File))
	if err != nil {
		t.Fatal(err)
	}
	qs, err := dashboard.Queries(b)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, q := range qs {
		expr, err := q.PromQL()
		if err != nil {
			t.Fatal(err)
		}
		out["dashboard "+q.Where] = expr
	}
	return out
}

// parseReads is the series names each expression reads; an expression
// that does not parse fails t.
func parseReads(t *testing.T, e *testbed.Env, reads map[string]string) map[string][]string {
	t.Helper()
	var where, exprs []string
	for w, x := range reads {
		where, exprs = append(where, w), append(exprs, x)
	}
	parsed, err := dashboard.Parse(e.Bin("promqlnames"), exprs)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for i, p := range parsed {
		if p.Error != "" {
			t.Errorf("%s: %q: %s", where[i], exprs[i], p.Error)
		}
		out[where[i]] = p.Names
	}
	return out
}
