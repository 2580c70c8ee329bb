package main

import (
	"math"
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

// Two rounds at c=16 and c=1000 (memory sampled there) of the targets the
// goals compare; nginx's upstream count is off by one in round 2.
const sample = `1	16	nginx	200000	10000000	700	3000	0	0	0	0	0	150	60	200000	0	0	0
1	16	nginx-cache	400000	10000000	300	2000	0	0	0	0	0	150	0	2	0	0	0
1	16	imdsguard-v2	170000	10000000	800	3500	0	0	0	0	0	160	55	170005	0	0	0
1	16	imdsguard-cache-v2	440000	10000000	250	1500	0	0	0	0	0	160	0	0	0	0	0
1	1000	imdsguard-v2	100000	10000000	9000	30000	0	0	0	0	0	160	55	100000	30000	31000	1000
1	1000	imdsguard-cache-v2	300000	10000000	3000	9000	0	0	0	0	0	160	0	0	45000	46000	1000
2	16	nginx	200000	10000000	700	3000	0	0	0	0	0	150	60	199999	0	0	0
2	16	nginx-cache	400000	10000000	300	2000	0	0	0	0	0	150	0	2	0	0	0
2	16	imdsguard-v2	150000	10000000	800	3500	0	0	0	1	0	160	55	150000	0	0	0
2	16	imdsguard-cache-v2	440000	10000000	250	1500	0	0	0	0	0	160	0	0	0	0	0
2	1000	imdsguard-v2	100000	10000000	9000	30000	0	0	0	0	0	160	55	100000	20000	21000	1000
2	1000	imdsguard-cache-v2	300000	10000000	3000	9000	0	0	0	0	0	160	0	0	40000	41000	999
`

// goalsByName indexes goals by group and name.
func goalsByName(gs []goal) map[string]goal {
	out := map[string]goal{}
	for _, g := range gs {
		out[g.group+": "+g.name] = g
	}
	return out
}

// analysed parses tsv (benchreport's runs file) and analyses it, as with
// 1,000 connections sampled for PSS.
func analysed(t *testing.T, tsv string, skipped map[string]string) ([]run, *report) {
	t.Helper()
	runs, err := parseRuns(strings.NewReader(tsv), t.Name())
	if err != nil {
		t.Fatal(err)
	}
	return runs, analyse(runs, 1000, skipped)
}

func TestAnalyse(t *testing.T) {
	runs, rep := analysed(t, sample, nil)
	c := rep.cells[key{tGuard, 16}]
	if c.rps != 16000 || c.p50 != 800 {
		t.Errorf("imdsguard-v2 c=16: rps %v p50 %v, want 16000 and 800", c.rps, c.p50)
	}
	if got := cpuPerRequest(60, 9000); got < 66.6 || got > 66.7 {
		t.Errorf("cpu per request = %v, want 66.7 µs", got)
	}
	if rep.errors != 1 {
		t.Errorf("errors = %d, want 1", rep.errors)
	}
	g := goalsByName(rep.goals)
	for _, want := range []struct {
		name    string
		value   float64
		lo, hi  float64
		ok      bool
		missing bool
	}{
		{"imdsguard cached / nginx proxy_cache: req/s at c=16", 1.1, 1.1, 1.1, true, false},
		{"imdsguard cached / nginx proxy_cache: p99 at c=16", 0.75, 0.75, 0.75, true, false},
		{"imdsguard cached / nginx proxy_cache: req/s at c=256", 0, 0, 0, false, true},
		{"imdsguard uncached / nginx: req/s at c=16", 0.8, 0.75, 0.85, true, false},
		{"imdsguard uncached: PSS with 1,000 connections open", 30000.0 / 1024, 20000.0 / 1024, 30000.0 / 1024, true, false},
		{"imdsguard cached: PSS with 1,000 connections open", 45000.0 / 1024, 40000.0 / 1024, 45000.0 / 1024, false, false},
		{"imdsguard uncached v2 / bareproxy (earlier targets): p50 at c=16", 0, 0, 0, false, true},
	} {
		got, found := g[want.name]
		switch {
		case !found:
			t.Errorf("no goal %q in %v", want.name, rep.goals)
		case want.missing != (got.missing != ""):
			t.Errorf("%s: missing %q, want missing %v", want.name, got.missing, want.missing)
		case !want.missing && (!near(got.value, want.value) || !near(got.lo, want.lo) || !near(got.hi, want.hi) || got.ok() != want.ok):
			t.Errorf("%s: %v (%v–%v) ok %v, want %v (%v–%v) ok %v", want.name, got.value, got.lo, got.hi, got.ok(), want.value, want.lo, want.hi, want.ok)
		}
	}
	if c := rep.cells[key{tNginxCache, 16}]; c.upstream != 4 || !near(c.upstreamPer1k, 0.005) {
		t.Errorf("nginx-cache upstream: %d, %v per 1,000; want 4 and 0.005", c.upstream, c.upstreamPer1k)
	}
	// nginx's round 2 sent one GET fewer than it answered; the caches are not checked.
	if bad := upstreamMismatches(rep, runs); len(bad) != 1 || !strings.Contains(bad[0], "round 2 c=16 nginx") {
		t.Errorf("upstream mismatches %q, want nginx's round 2 alone", bad)
	}
	m := &meta{upstreamPuts: 2, guards: 2}
	if f := loopbackFailures(m, rep, runs); len(f) != 2 {
		t.Errorf("failures = %q, want the errors and the upstream mismatch", f)
	}
	m.upstreamPuts = 1
	if f := failures(m, rep); len(f) != 2 {
		t.Errorf("failures = %q, want errors and PUTs", f)
	}
}

func TestAnalyseSkipped(t *testing.T) {
	_, rep := analysed(t, sample, map[string]string{tGuardCache: "no cache in this daemon"})
	for _, g := range rep.goals {
		if strings.HasPrefix(g.group, "imdsguard cached") && g.missing != "imdsguard-cache-v2 skipped (see below)" {
			t.Errorf("%s: %s: missing %q, want it skipped", g.group, g.name, g.missing)
		}
	}
}

// ratiosAre fails t unless each ratio in want was measured, with that
// value in every round (the runs given have the same ratio in each).
func ratiosAre(t *testing.T, got map[string]goal, want map[string]float64) {
	t.Helper()
	for name, v := range want {
		g, ok := got[name]
		if !ok || g.missing != "" || math.Abs(g.value-v) > 1e-9 || math.Abs(g.lo-v) > 1e-9 || math.Abs(g.hi-v) > 1e-9 {
			t.Errorf("%s: %+v, want %v", name, g, v)
		}
	}
}

// The Go floors against nginx's cache: ratios without targets, and no
// upstream requests expected of them.
func TestFloors(t *testing.T) {
	const floors = `1	16	nginx-cache	400000	10000000	300	2000	0	0	0	0	0	150	0	2	0	0	0
1	16	gofloor	500000	10000000	200	4000	0	0	0	0	0	100	0	0	0	0	0
1	16	gofloor-epoll	600000	10000000	100	1000	0	0	0	0	0	90	0	0	0	0	0
1	16	gofloor-work	400000	10000000	300	5000	0	0	0	0	0	120	0	0	0	0	0
1	16	gofloor-epoll-work	500000	10000000	200	3000	0	0	0	0	0	100	0	0	0	0	0
2	16	nginx-cache	400000	10000000	300	2000	0	0	0	0	0	150	0	2	0	0	0
2	16	gofloor	500000	10000000	200	4000	0	0	0	0	0	100	0	0	0	0	0
2	16	gofloor-epoll	600000	10000000	100	1000	0	0	0	0	0	90	0	0	0	0	0
2	16	gofloor-work	400000	10000000	300	5000	0	0	0	0	0	120	0	0	0	0	0
2	16	gofloor-epoll-work	500000	10000000	200	1000	0	0	0	0	0	100	0	0	0	0	0
`
	runs, rep := analysed(t, floors, nil)
	got := goalsByName(rep.floors)
	ratiosAre(t, got, map[string]float64{
		"(h) Go floor, goroutines / (c) nginx proxy_cache: p99 at c=16":                2,
		"(h) Go floor, goroutines / (c) nginx proxy_cache: req/s at c=16":              1.25,
		"(h) Go floor, goroutines / (c) nginx proxy_cache: CPU/req at c=16":            100.0 / 500000 / (150.0 / 400000), // ticks per request
		"(i) Go floor, epoll loops / (c) nginx proxy_cache: p99 at c=16":               0.5,
		"(i) Go floor, epoll loops / (c) nginx proxy_cache: req/s at c=16":             1.5,
		"(k) Go floor, goroutines, with work / (c) nginx proxy_cache: p99 at c=16":     2.5,
		"(k) Go floor, goroutines, with work / (c) nginx proxy_cache: req/s at c=16":   1,
		"(k) Go floor, goroutines, with work / (c) nginx proxy_cache: CPU/req at c=16": 0.8,
	})
	// (l)'s p99 differs between the rounds: the median and the range.
	if g := got["(l) Go floor, epoll loops, with work / (c) nginx proxy_cache: p99 at c=16"]; g.missing != "" || g.value != 1 || g.lo != 0.5 || g.hi != 1.5 {
		t.Errorf("(l) p99: %+v, want 1 (0.5–1.5): the median and the per-round range", g)
	}
	if g := got["(e) imdsguard cached / (c) nginx proxy_cache: p99 at c=16"]; g.missing == "" {
		t.Errorf("imdsguard cached was not run, yet its floor ratio is %+v", g)
	}
	if g := got["(h) Go floor, goroutines / (c) nginx proxy_cache: p99 at c=256"]; g.missing == "" {
		t.Errorf("c=256 was not run, yet %+v", g)
	}
	if len(rep.floors) != 30 {
		t.Errorf("%d floor ratios, want 30 (5 targets × 3 measures × 2 concurrencies)", len(rep.floors))
	}
	if bad := upstreamMismatches(rep, runs); len(bad) > 0 {
		t.Errorf("the floors ask no upstream, yet: %v", bad)
	}
	if tab := rep.upstreamTable(); !strings.Contains(tab, "| (h) Go floor, goroutines | none: answers itself | 1000000 | 0 |") ||
		!strings.Contains(tab, "| (l) Go floor, epoll loops, with work | none: answers itself | 1000000 | 0 |") {
		t.Errorf("upstream table:\n%s", tab)
	}
	if tab := floorsTable(rep.floors); !strings.Contains(tab, "| (i) Go floor, epoll loops / (c) nginx proxy_cache | p99 at c=16 | 0.50 | 0.50–0.50 |") {
		t.Errorf("floors table:\n%s", tab)
	}
}

// The Go proxy floor and imdsguard uncached against plain nginx: ratios
// of req/s and CPU a request, without targets; the floor forwards every
// request, and is held to that like any proxy without a cache.
func TestProxyFloors(t *testing.T) {
	const runsTSV = `1	16	nginx	200000	10000000	300	2000	0	0	0	0	0	100	0	200000	0	0	0
1	16	gofloor-proxy	150000	10000000	400	3000	0	0	0	0	0	120	0	150000	0	0	0
1	16	imdsguard-v2	100000	10000000	500	4000	0	0	0	0	0	160	0	100000	0	0	0
`
	runs, rep := analysed(t, runsTSV, nil)
	got := goalsByName(rep.proxyFloors)
	ratiosAre(t, got, map[string]float64{
		"(j) Go floor, proxy / (b) nginx: req/s at c=16":            0.75,
		"(j) Go floor, proxy / (b) nginx: proxy CPU/req at c=16":    1.6, // 8 µs / 5 µs
		"(d) imdsguard uncached / (b) nginx: req/s at c=16":         0.5,
		"(d) imdsguard uncached / (b) nginx: proxy CPU/req at c=16": 3.2, // 16 µs / 5 µs
	})
	if g := got["(j) Go floor, proxy / (b) nginx: req/s at c=256"]; g.missing == "" {
		t.Errorf("c=256 was not run, yet %+v", g)
	}
	if len(rep.proxyFloors) != 8 {
		t.Errorf("%d proxy floor ratios, want 8 (2 targets × 2 measures × 2 concurrencies)", len(rep.proxyFloors))
	}
	if bad := upstreamMismatches(rep, runs); len(bad) > 0 {
		t.Errorf("every target forwarded each request, yet: %v", bad)
	}
	short, shortRep := analysed(t, strings.Replace(runsTSV, "120	0	150000", "120	0	1000", 1), nil)
	if bad := upstreamMismatches(shortRep, short); len(bad) != 1 || !strings.Contains(bad[0], "gofloor-proxy") {
		t.Errorf("a proxy floor that forwarded 1,000 of 150,000 requests: %v", bad)
	}
	if tab := floorsTable(rep.proxyFloors); !strings.Contains(tab, "| (j) Go floor, proxy / (b) nginx | req/s at c=16 | 0.75 | 0.75–0.75 |") {
		t.Errorf("proxy floors table:\n%s", tab)
	}
}

// Throughput as connections grow: each proxy's req/s at c=256 and c=1,000
// over its own at c=16, per round too; a concurrency not run is missing.
func TestFlatness(t *testing.T) {
	const runsTSV = `1	16	nginx	200000	10000000	300	2000	0	0	0	0	0	100	0	200000	0	0	0
1	256	nginx	180000	10000000	300	2000	0	0	0	0	0	100	0	180000	0	0	0
1	1000	nginx	150000	10000000	300	2000	0	0	0	0	0	100	0	150000	0	0	0
1	16	imdsguard-v2	100000	10000000	500	4000	0	0	0	0	0	160	0	100000	0	0	0
1	256	imdsguard-v2	100000	10000000	500	4000	0	0	0	0	0	160	0	100000	0	0	0
1	1000	imdsguard-v2	80000	10000000	500	4000	0	0	0	0	0	160	0	80000	0	0	0
2	16	nginx	200000	10000000	300	2000	0	0	0	0	0	100	0	200000	0	0	0
2	256	nginx	180000	10000000	300	2000	0	0	0	0	0	100	0	180000	0	0	0
2	1000	nginx	150000	10000000	300	2000	0	0	0	0	0	100	0	150000	0	0	0
2	16	imdsguard-v2	100000	10000000	500	4000	0	0	0	0	0	160	0	100000	0	0	0
2	256	imdsguard-v2	90000	10000000	500	4000	0	0	0	0	0	160	0	90000	0	0	0
2	1000	imdsguard-v2	60000	10000000	500	4000	0	0	0	0	0	160	0	60000	0	0	0
`
	_, rep := analysed(t, runsTSV, nil)
	got := goalsByName(rep.flat)
	ratiosAre(t, got, map[string]float64{
		"(b) nginx: req/s at c=256 / at c=16":   0.9,
		"(b) nginx: req/s at c=1,000 / at c=16": 0.75,
	})
	for name, want := range map[string][3]float64{ // median, per-round range
		"(d) imdsguard uncached: req/s at c=256 / at c=16":   {0.95, 0.9, 1},
		"(d) imdsguard uncached: req/s at c=1,000 / at c=16": {0.7, 0.6, 0.8},
	} {
		if g := got[name]; g.missing != "" || !near(g.value, want[0]) || !near(g.lo, want[1]) || !near(g.hi, want[2]) {
			t.Errorf("%s: %+v, want %v (%v–%v)", name, g, want[0], want[1], want[2])
		}
	}
	if g := got["(c) nginx proxy_cache: req/s at c=256 / at c=16"]; g.missing == "" {
		t.Errorf("nginx-cache was not run, yet %+v", g)
	}
	if len(rep.flat) != 8 {
		t.Errorf("%d flatness ratios, want 8 (4 targets × 2 concurrencies)", len(rep.flat))
	}
	if tab := floorsTable(rep.flat); !strings.Contains(tab, "| (d) imdsguard uncached | req/s at c=1,000 / at c=16 | 0.70 | 0.60–0.80 |") {
		t.Errorf("flatness table:\n%s", tab)
	}
}
