package main

import (
	"strings"
	"testing"
)

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

const sample = `1	1	bareproxy	10000	1000000	100	400	0	0	0	0	0	50	30
1	1	imdsguard-v1	9000	1000000	110	500	0	0	0	0	0	60	30
1	16	bareproxy	20000	1000000	800	3000	0	0	0	0	0	150	60
1	16	imdsguard-v1	18000	1000000	900	3500	0	0	0	0	0	160	55
2	1	bareproxy	10000	1000000	100	400	0	0	0	0	0	50	30
2	1	imdsguard-v1	9000	1000000	130	500	0	0	0	0	0	60	30
2	16	bareproxy	20000	1000000	800	3000	0	0	0	0	0	150	60
2	16	imdsguard-v1	16000	1000000	900	3500	0	0	0	1	0	160	55
3	1	bareproxy	10000	1000000	100	400	0	0	0	0	0	50	30
3	1	imdsguard-v1	9000	1000000	120	500	0	0	0	0	0	60	30
3	16	bareproxy	20000	1000000	800	3000	0	0	0	0	0	150	60
3	16	imdsguard-v1	17000	1000000	900	3500	0	0	0	0	0	160	55
`

func TestAnalyse(t *testing.T) {
	runs, err := parseRuns(strings.NewReader(sample), "sample")
	if err != nil {
		t.Fatal(err)
	}
	rep := analyse(runs)
	c := rep.cells[key{"imdsguard-v1", 1}]
	if c.p50 != 120 || c.rps != 9000 {
		t.Errorf("imdsguard-v1 c=1: p50 %v rps %v, want 120 and 9000", c.p50, c.rps)
	}
	if got := cpuPerRequest(60, 9000); got < 66.6 || got > 66.7 {
		t.Errorf("cpu per request = %v, want 66.7 µs", got)
	}
	if rep.errors != 1 {
		t.Errorf("errors = %d, want 1", rep.errors)
	}
	if len(rep.ratios) != 2 {
		t.Fatalf("%d ratios, want 2 (v1 only in the sample)", len(rep.ratios))
	}
	lat, thr := rep.ratios[0], rep.ratios[1]
	if lat.value != 1.2 || lat.lo != 1.1 || lat.hi != 1.3 || lat.ok() {
		t.Errorf("latency ratio %+v, want 1.2 (1.1–1.3), missing ≤ 1.15", lat)
	}
	if thr.value != 0.85 || !thr.ok() {
		t.Errorf("throughput ratio %+v, want 0.85, meeting ≥ 0.85", thr)
	}
	m := &meta{upstreamPuts: 1, upstreamGets: rep.total + 5, extraRequests: 5, inFlightMax: 10}
	if f := failures(m, rep); len(f) != 1 {
		t.Errorf("failures = %q, want only the errors", f)
	}
	m.upstreamPuts, m.upstreamGets = 2, rep.total+100
	if f := failures(m, rep); len(f) != 3 {
		t.Errorf("failures = %q, want errors, PUTs and GETs", f)
	}
}
