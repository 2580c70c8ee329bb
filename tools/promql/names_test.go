package main

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		expr  string
		names []string
		err   string
	}{
		{`up`, []string{"up"}, ""},
		{`sum by (kind, workload) (rate(imdsguard_imdsv1_requests_by_workload_total{job=~"x"}[5m]))`,
			[]string{"imdsguard_imdsv1_requests_by_workload_total"}, ""},
		{`histogram_quantile(0.99, sum by (le) (rate(a_bucket[5m]))) / on () b + a_bucket`, []string{"a_bucket", "b"}, ""},
		{`{__name__="x", job="y"}`, []string{"x"}, ""},
		{`sum(rate(x[5m])`, nil, "unclosed left parenthesis"},
		{`rate(x[$__rate_interval])`, nil, "parse error"},
		{`{__name__=~"imdsguard_.*"}`, nil, "without an exact metric name"},
		{`{job="y"}`, nil, "without an exact metric name"},
	} {
		r := Parse(c.expr)
		if c.err != "" {
			if !strings.Contains(r.Error, c.err) {
				t.Errorf("%s: error %q, want one with %q", c.expr, r.Error, c.err)
			}
			continue
		}
		if r.Error != "" || !slices.Equal(r.Names, c.names) {
			t.Errorf("%s: names %v error %q, want %v", c.expr, r.Names, r.Error, c.names)
		}
	}
}

func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(strings.NewReader(`["up", "sum("]`), &out); err != nil {
		t.Fatal(err)
	}
	var rs []Result
	if err := json.Unmarshal(out.Bytes(), &rs); err != nil || len(rs) != 2 || rs[0].Names[0] != "up" || rs[1].Error == "" {
		t.Fatalf("results %+v (%v) from\n%s", rs, err, out.String())
	}
	if err := run(strings.NewReader(`{}`), &out); err == nil {
		t.Fatal("an object instead of an array of expressions was accepted")
	}
}
