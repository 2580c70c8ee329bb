package main

// The report: the markdown document and the summary on stdout.

import (
	"fmt"
	"slices"
	"strings"
)

func us(x float64) string {
	if x >= 1000 {
		return fmt.Sprintf("%.2f ms", x/1000)
	}
	return fmt.Sprintf("%.0f µs", x)
}

func (rep *report) table() string {
	var b strings.Builder
	b.WriteString("| target | request |")
	for _, c := range rep.concs {
		fmt.Fprintf(&b, " c=%d req/s | c=%d p50 | c=%d p99 |", c, c, c)
	}
	b.WriteString("\n|---|---|")
	for range rep.concs {
		b.WriteString("--:|--:|--:|")
	}
	b.WriteString("\n")
	for _, t := range rep.targets {
		fmt.Fprintf(&b, "| %s | %s |", t.label, t.what)
		for _, c := range rep.concs {
			cl := rep.cells[key{t.id, c}]
			if cl == nil {
				b.WriteString(" – | – | – |")
				continue
			}
			fmt.Fprintf(&b, " %.0f | %s | %s |", cl.rps, us(cl.p50), us(cl.p99))
		}
		b.WriteString("\n")
	}
	return b.String()
}

func (rep *report) cpuTable() string {
	var b strings.Builder
	b.WriteString("| target |")
	for _, c := range rep.concs {
		fmt.Fprintf(&b, " c=%d proxy | c=%d fakeimds |", c, c)
	}
	b.WriteString("\n|---|")
	for range rep.concs {
		b.WriteString("--:|--:|")
	}
	b.WriteString("\n")
	for _, t := range rep.targets {
		fmt.Fprintf(&b, "| %s |", t.label)
		for _, c := range rep.concs {
			cl := rep.cells[key{t.id, c}]
			switch {
			case cl == nil:
				b.WriteString(" – | – |")
			case t.id == "direct":
				fmt.Fprintf(&b, " – | %.1f µs |", cl.fakeCPU)
			default:
				fmt.Fprintf(&b, " %.1f µs | %.1f µs |", cl.proxyCPU, cl.fakeCPU)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// correctnessTable is the table of checks both parts of the report end
// with; getsRow is the row of the upstream GET check, which differs.
func correctnessTable(m *meta, rep *report, getsRow string) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("| check | value | |\n|---|--:|---|\n")
	w("| non-2xx answers and socket errors, all runs | %d | %s |\n", rep.errors, check(rep.errors == 0))
	what := "upstream token PUTs by imdsguard (the whole run)"
	if m.guards > 1 {
		what = fmt.Sprintf("upstream token PUTs by imdsguard (the whole run, %d daemons: one each)", m.guards)
	}
	w("| %s | %d | %s |\n", what, m.upstreamPuts, check(m.upstreamPuts == m.wantPuts()))
	w("| upstream 401s | %d | %s |\n", m.upstreamUnauthorized, check(m.upstreamUnauthorized == 0))
	b.WriteString(getsRow)
	return b.String()
}

// redirectGetsRow: every request answered reached fakeimds once, over the
// whole run.
func redirectGetsRow(m *meta, rep *report) string {
	return fmt.Sprintf("| upstream GETs / requests answered (runs %d, warm-up and pre-flight %d) | %d / %d (+%d) | %s |\n",
		rep.total, m.extraRequests, m.upstreamGets, rep.total+m.extraRequests, m.upstreamGets-rep.total-m.extraRequests, check(getsOK(m, rep)))
}

func check(ok bool) string {
	if ok {
		return "ok"
	}
	return "**FAIL**"
}

// runsTable lists every run, by concurrency, target (in the order of ts) and
// round.
func runsTable(runs []run, ts []target) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("| round | c | target | requests | req/s | p50 | p99 | errors | proxy CPU/req | fakeimds CPU/req | upstream GETs | proxy PSS (connections) |\n")
	w("|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	sorted := slices.Clone(runs)
	order := func(id string) int { return targetIndex(ts, id) }
	slices.SortStableFunc(sorted, func(x, y run) int {
		if x.conc != y.conc {
			return x.conc - y.conc
		}
		if d := order(x.target) - order(y.target); d != 0 {
			return d
		}
		return x.round - y.round
	})
	for _, r := range sorted {
		var e []string
		for i, n := range r.errs {
			if n != 0 {
				e = append(e, fmt.Sprintf("%s %d", errNames[i], n))
			}
		}
		es := "0"
		if len(e) > 0 {
			es = strings.Join(e, ", ")
		}
		pcpu := "–"
		if r.target != "direct" {
			pcpu = fmt.Sprintf("%.1f µs", cpuPerRequest(r.proxyTicks, r.requests))
		}
		pss := "–"
		if r.pssDuring > 0 {
			pss = fmt.Sprintf("%s (%d)", mb(r.pssDuring), r.conns)
		}
		w("| %d | %d | %s | %d | %.0f | %s | %s | %s | %s | %.1f µs | %d | %s |\n", r.round, r.conc, r.target, r.requests, r.rps(), us(r.p50), us(r.p99), es,
			pcpu, cpuPerRequest(r.fakeTicks, r.requests), r.upstream, pss)
	}
	return b.String()
}

// mb writes kB as MB with one decimal.
func mb(kb int64) string { return fmt.Sprintf("%.1f MB", float64(kb)/1024) }
