package main

// The medians over rounds, the ratios and the correctness checks.

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// The targets of issue 10 (docs/BENCHMARKS.md, "Targets"), and the earlier
// ones against bareproxy.
const (
	minCachedRPS   = 1.0  // imdsguard cached over nginx proxy_cache, req/s at c=16 and c=256
	maxCachedP99   = 1.0  // ... and p99 below nginx's (strictly)
	minUncachedRPS = 0.8  // imdsguard uncached over nginx plain, req/s at c=16 and c=256
	maxPSSMB       = 40.0 // imdsguard's PSS with 1,000 connections open, MB
	maxP50Ratio    = 1.15 // earlier: imdsguard p50 at c=1 over bareproxy's
	minRPSRatio    = 0.85 // earlier: imdsguard req/s at c=16 over bareproxy's
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
	upstream         int64   // upstream GETs, all rounds
	upstreamPer1k    float64 // upstream GETs per 1,000 requests answered, median of rounds
	pss              []int64 // kB, the sampled rounds' largest PSS during the run (none: not sampled)
	pssAfter         []int64 // kB, after those runs
	conns            []int64 // connections open when pss was sampled
}

// goal is one target of the report: a ratio of two targets' medians (with
// the range of the per-round ratios) or an absolute figure (unit set), held
// against a limit.
type goal struct {
	group, name string
	value       float64
	lo, hi      float64 // per-round range
	limit       float64
	op          string // "≥", "≤" or "<"
	unit        string // "" for a ratio
	missing     string // why it was not measured; "" when it was
}

func (g goal) ok() bool {
	switch g.op {
	case "≥":
		return g.value >= g.limit
	case "<":
		return g.value < g.limit
	}
	return g.value <= g.limit
}

type report struct {
	targets     []target // shown, in this order
	concs       []int
	cells       map[key]*cell
	goals       []goal
	floors      []goal // the Go server floors and imdsguard's cache against nginx's: no targets
	proxyFloors []goal // the Go proxy floor and imdsguard uncached against plain nginx: no targets
	flat        []goal // req/s at higher concurrencies over c=16, imdsguard and nginx: no targets
	total       int64  // requests completed by wrk, all runs
	errors      int64
}

// analyse is the loopback report: the cells, and the goals.
func analyse(runs []run, pssConc int, skipped map[string]string) *report {
	rep := cells(runs, targets)
	const cached, uncached = "imdsguard cached / nginx proxy_cache", "imdsguard uncached / nginx"
	for _, c := range []int{16, 256} {
		at := " at c=" + strconv.Itoa(c)
		rep.addRatio(runs, skipped, cached, "req/s"+at, tGuardCache, tNginxCache, c, rpsOf, minCachedRPS, "≥")
		rep.addRatio(runs, skipped, cached, "p99"+at, tGuardCache, tNginxCache, c, p99Of, maxCachedP99, "<")
	}
	for _, c := range []int{16, 256} {
		rep.addRatio(runs, skipped, uncached, "req/s at c="+strconv.Itoa(c), tGuard, tNginx, c, rpsOf, minUncachedRPS, "≥")
	}
	for _, t := range []string{tGuard, tGuardCache} {
		rep.addPSS(skipped, t, pssConc)
	}
	for _, c := range []int{16, 256} {
		at := " at c=" + strconv.Itoa(c)
		for _, t := range []string{tFloor, tFloorEpoll, tFloorWork, tFloorEpollWork, tGuardCache} {
			label := rep.targets[targetIndex(rep.targets, t)].label + " / (c) nginx proxy_cache"
			rep.floors = append(rep.floors,
				rep.ratio(runs, skipped, label, "p99"+at, t, tNginxCache, c, p99Of, 0, ""),
				rep.ratio(runs, skipped, label, "req/s"+at, t, tNginxCache, c, rpsOf, 0, ""),
				rep.ratio(runs, skipped, label, "CPU/req"+at, t, tNginxCache, c, cpuOf, 0, ""))
		}
	}
	for _, c := range []int{16, 256} {
		at := " at c=" + strconv.Itoa(c)
		for _, t := range []string{tFloorProxy, tGuard} {
			label := rep.targets[targetIndex(rep.targets, t)].label + " / (b) nginx"
			rep.proxyFloors = append(rep.proxyFloors,
				rep.ratio(runs, skipped, label, "req/s"+at, t, tNginx, c, rpsOf, 0, ""),
				rep.ratio(runs, skipped, label, "proxy CPU/req"+at, t, tNginx, c, cpuOf, 0, ""))
		}
	}
	for _, t := range []string{tNginx, tGuard, tNginxCache, tGuardCache} {
		for _, c := range []int{256, 1000} {
			rep.flat = append(rep.flat, rep.flatness(runs, skipped, t, c))
		}
	}
	lo, hi := rep.concs[0], rep.concs[len(rep.concs)-1]
	if slices.Contains(rep.concs, 16) {
		hi = 16
	}
	for _, v := range []struct{ label, target string }{{"imdsguard uncached v2 / bareproxy", tGuard}, {"imdsguard uncached v1 / bareproxy", tGuardV1}} {
		group := v.label + " (earlier targets)"
		rep.addRatio(runs, skipped, group, "p50 at c="+strconv.Itoa(lo), v.target, tBare, lo, p50Of, maxP50Ratio, "≤")
		rep.addRatio(runs, skipped, group, "req/s at c="+strconv.Itoa(hi), v.target, tBare, hi, rpsOf, minRPSRatio, "≥")
	}
	return rep
}

// The measures a ratio compares: of a cell (the median) and of one run.
type measure struct {
	cell func(*cell) float64
	run  func(run) float64
}

var (
	rpsOf = measure{func(c *cell) float64 { return c.rps }, func(r run) float64 { return r.rps() }}
	p50Of = measure{func(c *cell) float64 { return c.p50 }, func(r run) float64 { return r.p50 }}
	p99Of = measure{func(c *cell) float64 { return c.p99 }, func(r run) float64 { return r.p99 }}
	cpuOf = measure{func(c *cell) float64 { return c.proxyCPU }, func(r run) float64 { return cpuPerRequest(r.proxyTicks, r.requests) }}
)

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
		var rps, p50, p99, pcpu, fcpu, up []float64
		for _, r := range rs {
			rps = append(rps, r.rps())
			if r.requests > 0 {
				up = append(up, float64(r.upstream)/float64(r.requests)*1000)
			}
			c.upstream += r.upstream
			if r.pssDuring > 0 {
				c.pss, c.pssAfter, c.conns = append(c.pss, r.pssDuring), append(c.pssAfter, r.pssAfter), append(c.conns, r.conns)
			}
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
		if len(up) > 0 {
			c.upstreamPer1k = median(up)
		}
		c.rpsMin, c.rpsMax = slices.Min(rps), slices.Max(rps)
		c.p50Min, c.p50Max = slices.Min(p50), slices.Max(p50)
		rep.cells[k] = c
	}
	return rep
}

// addRatio adds the goal target/base of a measure at conc (see ratio).
func (rep *report) addRatio(runs []run, skipped map[string]string, group, name, target, base string, conc int,
	m measure, limit float64, op string) {
	rep.goals = append(rep.goals, rep.ratio(runs, skipped, group, name, target, base, conc, m, limit, op))
}

// ratio is target/base of a measure at conc (see ratioOf).
func (rep *report) ratio(runs []run, skipped map[string]string, group, name, target, base string, conc int,
	m measure, limit float64, op string) goal {
	return rep.ratioOf(runs, skipped, group, name, key{target, conc}, key{base, conc}, m, limit, op)
}

// ratioOf is a measure of t over the same of b (each a target at a
// concurrency): the ratio of the medians, and the range of the per-round
// ratios (the runs of one round are back to back, so they saw about the
// same machine). A target that was not run is reported missing, with the
// reason from skipped if there is one.
func (rep *report) ratioOf(runs []run, skipped map[string]string, group, name string, t, b key,
	m measure, limit float64, op string) goal {
	g := goal{group: group, name: name, limit: limit, op: op}
	tc, bc := rep.cells[t], rep.cells[b]
	switch {
	case skipped[t.target] != "":
		g.missing = t.target + " skipped (see below)"
	case !slices.Contains(rep.concs, t.conc):
		g.missing = "c=" + strconv.Itoa(t.conc) + " was not run"
	case !slices.Contains(rep.concs, b.conc):
		g.missing = "c=" + strconv.Itoa(b.conc) + " was not run"
	case tc == nil || bc == nil:
		g.missing = "no runs of " + t.target + " or " + b.target
	case m.cell(bc) == 0:
		g.missing = b.target + " measured 0"
	default:
		g.value = m.cell(tc) / m.cell(bc)
		g.lo, g.hi = perRoundRange(runs, t, b, m.run)
	}
	return g
}

// flatness is target's req/s at conc over its own at c=16: 1 is throughput
// that holds as the connections grow (issue 10: flat from c=16 to 256 and
// 1,000).
func (rep *report) flatness(runs []run, skipped map[string]string, target string, conc int) goal {
	return rep.ratioOf(runs, skipped, rep.targets[targetIndex(rep.targets, target)].label,
		"req/s at c="+thousands(int64(conc))+" / at c=16", key{target, conc}, key{target, 16}, rpsOf, 0, "")
}

// addPSS adds the goal on target's PSS with conc connections open: the
// largest of the rounds (the range is all rounds').
func (rep *report) addPSS(skipped map[string]string, target string, conc int) {
	g := goal{group: "imdsguard " + map[string]string{tGuard: "uncached", tGuardCache: "cached"}[target],
		name: "PSS with " + thousands(int64(conc)) + " connections open", limit: maxPSSMB, op: "≤", unit: " MB"}
	c := rep.cells[key{target, conc}]
	switch {
	case skipped[target] != "":
		g.missing = target + " skipped (see below)"
	case c == nil || len(c.pss) == 0:
		g.missing = "not sampled (c=" + strconv.Itoa(conc) + " was not run)"
	default:
		g.value = float64(slices.Max(c.pss)) / 1024
		g.lo, g.hi = float64(slices.Min(c.pss))/1024, g.value
	}
	rep.goals = append(rep.goals, g)
}

// thousands writes n with a comma between thousands: 1,000.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// perRoundRange is the range of the ratio of a measure of the run of
// target over that of base (each a target at a concurrency), over the
// rounds that have both (0, 0 when none has).
func perRoundRange(runs []run, target, base key, ofRun func(run) float64) (lo, hi float64) {
	of := map[int]float64{}
	for _, rn := range runs {
		if rn.target == base.target && rn.conc == base.conc {
			of[rn.round] = ofRun(rn)
		}
	}
	var per []float64
	for _, rn := range runs {
		if rn.target == target.target && rn.conc == target.conc && of[rn.round] != 0 {
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

// wantPuts is the upstream token PUTs a run must have sent: one per
// imdsguard daemon (one when not said).
func (m *meta) wantPuts() int64 { return max(m.guards, 1) }

// failures are the correctness checks both sections share: no errors, no
// 401 upstream, one token PUT per imdsguard.
func failures(m *meta, rep *report) []string {
	var f []string
	if rep.errors != 0 {
		f = append(f, fmt.Sprintf("%d non-2xx answers or socket errors over all runs (want 0)", rep.errors))
	}
	if m.upstreamPuts != m.wantPuts() {
		f = append(f, fmt.Sprintf("fakeimds counted %d token PUTs from imdsguard (want exactly %d: one per daemon)", m.upstreamPuts, m.wantPuts()))
	}
	if m.upstreamUnauthorized != 0 {
		f = append(f, fmt.Sprintf("fakeimds answered %d requests with 401 (want 0)", m.upstreamUnauthorized))
	}
	return f
}

// redirectFailures adds the check of the redirect section: every request
// answered reached fakeimds once, over the whole run.
func redirectFailures(m *meta, rep *report) []string {
	f := failures(m, rep)
	if !getsOK(m, rep) {
		f = append(f, fmt.Sprintf("fakeimds counted %d GETs; the targets answered %d requests, and at most %d more were in flight when runs ended: every request must reach the upstream exactly once",
			m.upstreamGets, rep.total+m.extraRequests, m.inFlightMax))
	}
	return f
}

// loopbackFailures adds the check of the loopback report: in every run of a
// target without a cache, each request answered reached fakeimds once.
func loopbackFailures(m *meta, rep *report, runs []run) []string {
	f := failures(m, rep)
	if bad := upstreamMismatches(rep, runs); len(bad) > 0 {
		f = append(f, fmt.Sprintf("%d run(s) of proxies without a cache did not send each request upstream exactly once (give or take those in flight): %s",
			len(bad), strings.Join(bad, "; ")))
	}
	return f
}

// upstreamMismatches names the runs of targets that send each request
// upstream (no cache, not local) whose upstream GETs are not between the
// requests answered 200 and all requests answered plus the connections (the requests in flight when wrk stopped,
// which it does not count). An error answer may or may not have asked
// upstream first (a 504 did, a 503 of a full queue did not); the non-2xx
// answers are failures of their own.
func upstreamMismatches(rep *report, runs []run) []string {
	var bad []string
	for _, r := range runs {
		i := targetIndex(rep.targets, r.target)
		if i < 0 || !rep.targets[i].sendsEach() {
			continue
		}
		if r.upstream < r.requests-r.errs[errStatus] || r.upstream > r.requests+int64(r.conc) {
			bad = append(bad, fmt.Sprintf("round %d c=%d %s: %d upstream GETs for %d requests", r.round, r.conc, r.target, r.upstream, r.requests))
		}
	}
	return bad
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
