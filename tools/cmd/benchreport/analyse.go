package main

// The medians over rounds, the ratios and the correctness checks.

import (
	"fmt"
	"slices"
	"strconv"
)

// Targets of the ratios imdsguard/bareproxy (see docs/BENCHMARKS.md).
const (
	maxP50Ratio = 1.15 // imdsguard p50 at c=1 over bareproxy's
	minRPSRatio = 0.85 // imdsguard req/s at c=16 over bareproxy's
)

// clkTck is the unit of the CPU ticks: ticks a second.
var clkTck = 100.0

// cpuPerRequest is the CPU time a process spent per request, in µs.
func cpuPerRequest(ticks, requests int64) float64 {
	if requests == 0 {
		return 0
	}
	return float64(ticks) / clkTck / float64(requests) * 1e6
}

type key struct {
	target string
	conc   int
}

// cell is the median over rounds of one target at one concurrency.
type cell struct {
	n                int
	rps, p50, p99    float64
	rpsMin, rpsMax   float64
	p50Min, p50Max   float64
	requests, errors int64
	errs             [5]int64
	proxyCPU         float64 // µs a request, median of rounds
	fakeCPU          float64
}

type ratio struct {
	name, version string
	value         float64
	lo, hi        float64 // per-round range
	target        float64
	higherIsBad   bool
}

func (r ratio) ok() bool {
	if r.higherIsBad {
		return r.value <= r.target
	}
	return r.value >= r.target
}

type report struct {
	targets []target // shown, in this order
	concs   []int
	cells   map[key]*cell
	ratios  []ratio
	total   int64 // requests completed by wrk, all runs
	errors  int64
}

// analyse is the loopback report: the cells, and imdsguard/bareproxy
// against the targets.
func analyse(runs []run) *report {
	rep := cells(runs, targets)
	lo, hi := rep.concs[0], rep.concs[len(rep.concs)-1]
	for _, v := range []struct{ version, target string }{{"v1", "imdsguard-v1"}, {"v2", "imdsguard-v2"}} {
		rep.addRatio(runs, "p50 latency at c="+strconv.Itoa(lo), v.version, v.target, lo,
			func(c *cell) float64 { return c.p50 }, func(r run) float64 { return r.p50 }, maxP50Ratio, true)
		rep.addRatio(runs, "req/s at c="+strconv.Itoa(hi), v.version, v.target, hi,
			func(c *cell) float64 { return c.rps }, func(r run) float64 { return r.rps() }, minRPSRatio, false)
	}
	return rep
}

// cells is the median over rounds of every target and concurrency of runs
// (which must not be empty), shown in the order of ts.
func cells(runs []run, ts []target) *report {
	rep := &report{targets: ts, cells: map[key]*cell{}}
	byKey := map[key][]run{}
	for _, r := range runs {
		k := key{r.target, r.conc}
		byKey[k] = append(byKey[k], r)
		if !slices.Contains(rep.concs, r.conc) {
			rep.concs = append(rep.concs, r.conc)
		}
		rep.total += r.requests
		rep.errors += r.errors()
	}
	slices.Sort(rep.concs)
	for k, rs := range byKey {
		c := &cell{n: len(rs)}
		var rps, p50, p99, pcpu, fcpu []float64
		for _, r := range rs {
			rps = append(rps, r.rps())
			pcpu = append(pcpu, cpuPerRequest(r.proxyTicks, r.requests))
			fcpu = append(fcpu, cpuPerRequest(r.fakeTicks, r.requests))
			p50 = append(p50, r.p50)
			p99 = append(p99, r.p99)
			c.requests += r.requests
			c.errors += r.errors()
			for i, e := range r.errs {
				c.errs[i] += e
			}
		}
		c.rps, c.p50, c.p99 = median(rps), median(p50), median(p99)
		c.proxyCPU, c.fakeCPU = median(pcpu), median(fcpu)
		c.rpsMin, c.rpsMax = slices.Min(rps), slices.Max(rps)
		c.p50Min, c.p50Max = slices.Min(p50), slices.Max(p50)
		rep.cells[k] = c
	}
	return rep
}

// addRatio adds target/bareproxy of a measure at conc: the ratio of the
// medians, and the range of the per-round ratios (the runs of one round are
// back to back, so they saw about the same machine).
func (rep *report) addRatio(runs []run, name, version, target string, conc int,
	ofCell func(*cell) float64, ofRun func(run) float64, limit float64, higherIsBad bool) {
	g, b := rep.cells[key{target, conc}], rep.cells[key{"bareproxy", conc}]
	if g == nil || b == nil || ofCell(b) == 0 {
		return
	}
	r := ratio{name: name, version: version, value: ofCell(g) / ofCell(b), target: limit, higherIsBad: higherIsBad}
	r.lo, r.hi = perRoundRange(runs, target, "bareproxy", conc, ofRun)
	rep.ratios = append(rep.ratios, r)
}

// perRoundRange is the range of target/base of a measure at conc over the
// rounds that have both (0, 0 when none has).
func perRoundRange(runs []run, target, base string, conc int, ofRun func(run) float64) (lo, hi float64) {
	of := map[int]float64{}
	for _, rn := range runs {
		if rn.target == base && rn.conc == conc {
			of[rn.round] = ofRun(rn)
		}
	}
	var per []float64
	for _, rn := range runs {
		if rn.target == target && rn.conc == conc && of[rn.round] != 0 {
			per = append(per, ofRun(rn)/of[rn.round])
		}
	}
	if len(per) == 0 {
		return 0, 0
	}
	return slices.Min(per), slices.Max(per)
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func failures(m *meta, rep *report) []string {
	var f []string
	if rep.errors != 0 {
		f = append(f, fmt.Sprintf("%d non-2xx answers or socket errors over all runs (want 0)", rep.errors))
	}
	if m.upstreamPuts != 1 {
		f = append(f, fmt.Sprintf("fakeimds counted %d token PUTs from imdsguard (want exactly 1)", m.upstreamPuts))
	}
	if m.upstreamUnauthorized != 0 {
		f = append(f, fmt.Sprintf("fakeimds answered %d requests with 401 (want 0)", m.upstreamUnauthorized))
	}
	if !getsOK(m, rep) {
		f = append(f, fmt.Sprintf("fakeimds counted %d GETs; the targets answered %d requests, and at most %d more were in flight when runs ended: every request must reach the upstream exactly once",
			m.upstreamGets, rep.total+m.extraRequests, m.inFlightMax))
	}
	return f
}

// getsOK: every request answered reached fakeimds once (the proxies neither
// cache nor retry), give or take the requests in flight when a run ended.
func getsOK(m *meta, rep *report) bool {
	if m.upstreamGets < 0 {
		return true
	}
	answered := rep.total + m.extraRequests
	return m.upstreamGets >= answered && m.upstreamGets <= answered+m.inFlightMax
}
