package main

// The loopback report: docs/BENCHMARKS.md up to the redirect section.

import (
	"fmt"
	"strconv"
	"strings"
)

// configs are the files the report quotes.
type configs struct {
	nginxCache, guard, guardCache string
}

// noisyBusy is the share of the CPUs (%) other processes may keep busy
// before the report calls the machine shared and noisy.
const noisyBusy = 10

// machineNote says how busy the machine was around the run.
func machineNote(m *meta) string {
	if m.busyBefore == "" && m.busyAfter == "" {
		return "not measured"
	}
	verdict := "quiet"
	for _, s := range []string{m.busyBefore, m.busyAfter} {
		if n, err := strconv.Atoi(s); err == nil && n >= noisyBusy {
			verdict = "**shared and noisy**"
		}
	}
	return fmt.Sprintf("%s: processes other than the benchmark's kept %s%% of the CPUs busy in the 3 s before the run and %s%% in the 3 s after it (load average %s before, %s after); they ran during the run too",
		verdict, m.busyBefore, m.busyAfter, m.loadBefore, m.loadAfter)
}

// goalsTable shows the goals, grouped.
func (rep *report) goalsTable() string {
	var b strings.Builder
	b.WriteString("| compared | measure | value (median of rounds) | per-round range | target | |\n")
	b.WriteString("|---|---|--:|--:|--:|---|\n")
	for _, g := range rep.goals {
		if g.missing != "" {
			fmt.Fprintf(&b, "| %s | %s | – | – | %s %.2f%s | not measured: %s |\n", g.group, g.name, g.op, g.limit, g.unit, g.missing)
			continue
		}
		verdict := "meets"
		if !g.ok() {
			verdict = "**misses**"
		}
		val := fmt.Sprintf("%.2f", g.value)
		rng := fmt.Sprintf("%.2f–%.2f", g.lo, g.hi)
		if g.unit != "" {
			val = fmt.Sprintf("%.1f%s (largest of rounds)", g.value, g.unit)
			rng = fmt.Sprintf("%.1f–%.1f%s", g.lo, g.hi, g.unit)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s %.2f%s | %s |\n", g.group, g.name, val, rng, g.op, g.limit, g.unit, verdict)
	}
	return b.String()
}

// floorsTable shows floor ratios (rep.floors, rep.proxyFloors): no target.
func floorsTable(floors []goal) string {
	var b strings.Builder
	b.WriteString("| compared | measure | value (median of rounds) | per-round range |\n|---|---|--:|--:|\n")
	for _, g := range floors {
		if g.missing != "" {
			fmt.Fprintf(&b, "| %s | %s | – | not measured: %s |\n", g.group, g.name, g.missing)
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %.2f | %.2f–%.2f |\n", g.group, g.name, g.value, g.lo, g.hi)
	}
	return b.String()
}

// resultsTable: every target at every concurrency, grouped by concurrency.
func (rep *report) resultsTable(skipped map[string]string) string {
	var b strings.Builder
	b.WriteString("| c | target | request | req/s | p50 | p99 | errors (all rounds) | proxy CPU/req | fakeimds CPU/req | upstream GETs per 1,000 answered |\n")
	b.WriteString("|--:|---|---|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, c := range rep.concs {
		for _, t := range rep.targets {
			cl := rep.cells[key{t.id, c}]
			if cl == nil {
				why := "not run"
				if skipped[t.id] != "" {
					why = "skipped (see Targets)"
				}
				fmt.Fprintf(&b, "| %d | %s | %s | %s | | | | | | |\n", c, t.label, t.what, why)
				continue
			}
			pcpu := "–"
			if t.id != tDirect {
				pcpu = fmt.Sprintf("%.1f µs", cl.proxyCPU)
			}
			errs := "0"
			if cl.errors > 0 {
				errs = fmt.Sprintf("**%d** of %d", cl.errors, cl.requests)
			}
			fmt.Fprintf(&b, "| %d | %s | %s | %.0f | %s | %s | %s | %s | %.1f µs | %s |\n",
				c, t.label, t.what, cl.rps, us(cl.p50), us(cl.p99), errs, pcpu, cl.fakeCPU, per1k(cl.upstreamPer1k))
		}
	}
	return b.String()
}

func per1k(x float64) string {
	if x >= 100 {
		return fmt.Sprintf("%.0f", x)
	}
	return fmt.Sprintf("%.2f", x)
}

// memoryTable: the proxies' PSS with conc connections open, and after.
func (rep *report) memoryTable(conc int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "| target | PSS during the c=%d run (largest of rounds) | per-round range | connections open (most seen) | PSS after the run (largest) |\n", conc)
	b.WriteString("|---|--:|--:|--:|--:|\n")
	for _, t := range rep.targets {
		cl := rep.cells[key{t.id, conc}]
		if t.id == tDirect || cl == nil || len(cl.pss) == 0 {
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %s–%s | %s | %s |\n", t.label, mb(maxOf(cl.pss)), mb(minOf(cl.pss)), mb(maxOf(cl.pss)),
			rangeOf(cl.conns), mb(maxOf(cl.pssAfter)))
	}
	return b.String()
}

func maxOf(xs []int64) int64 {
	m := xs[0]
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

func minOf(xs []int64) int64 {
	m := xs[0]
	for _, x := range xs {
		m = min(m, x)
	}
	return m
}

func rangeOf(xs []int64) string {
	lo, hi := minOf(xs), maxOf(xs)
	if lo == hi {
		return strconv.FormatInt(lo, 10)
	}
	return fmt.Sprintf("%d–%d", lo, hi)
}

// upstreamTable: the requests each target answered and sent upstream, over
// all measured runs.
func (rep *report) upstreamTable() string {
	var b strings.Builder
	b.WriteString("| target | cache | requests answered | upstream GETs | per 1,000 answered |\n|---|---|--:|--:|--:|\n")
	for _, t := range rep.targets {
		var answered, up int64
		for _, c := range rep.concs {
			if cl := rep.cells[key{t.id, c}]; cl != nil {
				answered, up = answered+cl.requests, up+cl.upstream
			}
		}
		if answered == 0 {
			continue
		}
		cache := "no"
		switch {
		case t.local:
			cache = "none: answers itself"
		case t.caches:
			cache = "yes"
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %s |\n", t.label, cache, answered, up, per1k(float64(up)/float64(answered)*1000))
	}
	return b.String()
}

// loopbackGetsRow: each run of a proxy without a cache sent each request
// upstream once.
func loopbackGetsRow(rep *report, runs []run) string {
	n := 0
	for _, r := range runs {
		if i := targetIndex(rep.targets, r.target); i >= 0 && rep.targets[i].sendsEach() {
			n++
		}
	}
	bad := len(upstreamMismatches(rep, runs))
	return fmt.Sprintf("| runs of targets without a cache whose upstream GETs are the requests answered 200 (+ at most the other answers and the connections, in flight when wrk stopped) | %d of %d | %s |\n",
		n-bad, n, check(bad == 0))
}

func summary(m *meta, rep *report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nMedian of %d round(s) × %d s, GET %s:\n\n", m.rounds, m.seconds, m.path)
	skipped := map[string]string{}
	if m.cacheSkipped != "" {
		skipped[tGuardCache] = m.cacheSkipped
	}
	b.WriteString(rep.resultsTable(skipped))
	b.WriteString("\n")
	b.WriteString(rep.goalsTable())
	b.WriteString("\n")
	b.WriteString(floorsTable(rep.floors))
	b.WriteString("\n")
	b.WriteString(floorsTable(rep.proxyFloors))
	b.WriteString("\n")
	b.WriteString(floorsTable(rep.flat))
	b.WriteString("\n")
	b.WriteString(rep.memoryTable(m.pssConc))
	b.WriteString("\n")
	b.WriteString(rep.upstreamTable())
	fmt.Fprintf(&b, "\nnon-2xx/socket errors: %d; upstream token PUTs by imdsguard: %d (want %d); upstream 401s: %d\n",
		rep.errors, m.upstreamPuts, m.wantPuts(), m.upstreamUnauthorized)
	fmt.Fprintf(&b, "machine: %s\n", machineNote(m))
	if m.out != "" {
		fmt.Fprintf(&b, "wrote %s\n", m.out)
	}
	return b.String()
}
