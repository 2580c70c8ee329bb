package dashboard

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	sdk "github.com/grafana/grafana-foundation-sdk/go/dashboard"

	"github.com/imdsguard/imdsguard/tools/testbed"
)

func committed(t *testing.T) []byte {
	t.Helper()
	root, err := testbed.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, File))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The committed file is what the generator makes.
func TestGenerated(t *testing.T) {
	want, err := JSON()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(committed(t), want) {
		t.Fatalf("%s differs from what tools/dashboard builds: run `go generate ./dashboard/` in tools/", File)
	}
}

// The file is valid JSON that Grafana's own schema types read back: every
// panel but the rows has a query on the datasource variable, and the
// datasource, job and instance variables exist.
func TestValid(t *testing.T) {
	b := committed(t)
	if !json.Valid(b) {
		t.Fatalf("%s is not valid JSON", File)
	}
	plugins.RegisterDefaultPlugins()
	var d sdk.Dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s as a Grafana dashboard: %v", File, err)
	}
	var vars []string
	for _, v := range d.Templating.List {
		vars = append(vars, v.Name)
	}
	if !slices.Equal(vars, []string{"datasource", "job", "instance"}) {
		t.Errorf("variables %v, want datasource, job, instance", vars)
	}
	panels, rows := 0, 0
	for _, p := range d.Panels {
		switch {
		case p.RowPanel != nil:
			rows++
		case p.Panel != nil:
			panels++
			if len(p.Panel.Targets) == 0 || p.Panel.Datasource == nil || *p.Panel.Datasource.Uid != "${datasource}" {
				t.Errorf("panel %q: %d targets, datasource %+v; want queries on ${datasource}", *p.Panel.Title, len(p.Panel.Targets), p.Panel.Datasource)
			}
		}
	}
	if rows != 5 || panels < 15 {
		t.Errorf("%d rows and %d panels, want 5 rows and at least 15 panels", rows, panels)
	}
}

// promqlnames is bin/promqlnames, built by scripts/build-tools.sh.
func promqlnames(t *testing.T) string {
	t.Helper()
	e := testbed.New(t)
	e.RequireBins("promqlnames")
	return e.Bin("promqlnames")
}

// ParseAll parses every query of the dashboard file with Prometheus's
// parser; it fails t on a query that does not parse.
func parseAll(t *testing.T, b []byte) map[string]Parsed {
	t.Helper()
	qs, err := Queries(b)
	if err != nil {
		t.Fatal(err)
	}
	exprs := make([]string, len(qs))
	for i, q := range qs {
		if exprs[i], err = q.PromQL(); err != nil {
			t.Fatal(err)
		}
	}
	parsed, err := Parse(promqlnames(t), exprs)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]Parsed{}
	for i, p := range parsed {
		if p.Error != "" || len(p.Names) == 0 {
			t.Errorf("%s: %q: %s (names %v)", qs[i].Where, exprs[i], p.Error, p.Names)
		}
		out[qs[i].Where] = p
	}
	return out
}

// Every query parses, and together they read the series the issue asks
// the dashboard to show.
func TestQueriesParse(t *testing.T) {
	parsed := parseAll(t, committed(t))
	read := map[string]bool{}
	for _, p := range parsed {
		for _, n := range p.Names {
			read[n] = true
		}
	}
	t.Logf("%d queries read %d series", len(parsed), len(read))
	for _, want := range []string{
		"imdsguard_imdsv1_requests_by_workload_total", "imdsguard_requests_total", "imdsguard_cache_reads_total",
		"imdsguard_upstream_latency_seconds_bucket", "imdsguard_rules_in_place", "imdsguard_rule_restores_total",
		"imdsguard_fence_rejects_total", "imdsguard_sts_calls_total", "imdsguard_role_sessions",
	} {
		if !read[want] {
			t.Errorf("no panel reads %s", want)
		}
	}
}

// The parse check catches a broken query and a variable the dashboard
// does not define.
func TestQueriesParseCatches(t *testing.T) {
	bad := []byte(`{"panels": [{"id": 1, "title": "x", "targets": [{"refId": "A", "expr": "sum(rate(imdsguard_requests_total[$__rate_interval])"}]}]}`)
	qs, err := Queries(bad)
	if err != nil || len(qs) != 1 {
		t.Fatalf("queries %v, %v", qs, err)
	}
	expr, err := qs[0].PromQL()
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := Parse(promqlnames(t), []string{expr})
	if err != nil || parsed[0].Error == "" {
		t.Fatalf("an unclosed parenthesis parsed: %+v %v", parsed, err)
	}
	nested := []byte(`{"panels": [{"id": 1, "type": "row", "panels": [{"id": 2, "title": "x", "targets": [{"refId": "A", "expr": "up"}]}]}]}`)
	if qs, err := Queries(nested); err != nil || len(qs) != 1 || qs[0].Expr != "up" {
		t.Fatalf("a collapsed row's panel: queries %v, %v", qs, err)
	}
	if _, err := (Query{"x", "rate(x[$__range])"}).PromQL(); err == nil {
		t.Fatal("an undefined variable was accepted")
	}
	if _, err := Queries([]byte(`{"templating": {"list": [{"type": "query", "name": "v", "query": "up"}]}}`)); err == nil {
		t.Fatal("a variable query that is not label_values was accepted")
	}
}
