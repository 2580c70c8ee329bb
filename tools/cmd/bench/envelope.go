package main

import (
	"fmt"
	"math"
)

// The envelope: imdsguard against nginx within one run. Reported,
// never asserted: a benchmark on a shared machine is not a test.
const (
	envCachedReqs   = 0.6 // cached req/s ≥ this × nginx proxy_cache's
	envCachedP99    = 3.0 // cached p99 ≤ this × nginx proxy_cache's
	envUncachedReqs = 0.5 // uncached req/s ≥ this × plain nginx's
	envCachedCPU    = 2.0 // CPU per cached read ≤ this × nginx proxy_cache's
	envPSSMB        = 40  // PSS with pssFrom connections open, MB
)

// state is a verdict's outcome.
type state int

const (
	unmeasured state = iota
	pass
	miss
)

func (s state) String() string { return [...]string{"not measured", "pass", "**miss**"}[s] }

// verdict is one line of the envelope.
type verdict struct {
	Compared, Measure string
	Value, Range      string // formatted; the range is over rounds
	Bound             string // "≥ 0.60"
	State             state
}

// build is one imdsguard binary's pair of targets.
type build struct {
	Uncached, Cached string // target IDs
}

// envelope judges b against nginx in runs; label names a target ID.
func envelope(runs []result, b build, label func(string) string) []verdict {
	var out []verdict
	items := []struct {
		num, den string
		m        metric
		atMost   bool
		bound    float64
	}{
		{b.Cached, idNginxCache, reqPerSec, false, envCachedReqs},
		{b.Cached, idNginxCache, p99, true, envCachedP99},
		{b.Uncached, idNginx, reqPerSec, false, envUncachedReqs},
		{b.Cached, idNginxCache, cpuPerReq, true, envCachedCPU},
	}
	for _, it := range items {
		for _, c := range []int{16, 256} { // the concurrencies
			v := ratioVerdict(ratio(runs, it.num, it.den, c, it.m), it.atMost, it.bound)
			v.Compared = label(it.num) + " / " + label(it.den)
			v.Measure = fmt.Sprintf("%s at c=%d", it.m, c)
			out = append(out, v)
		}
	}
	for _, id := range []string{b.Uncached, b.Cached} {
		v := pssVerdict(runs, id)
		v.Compared = label(id)
		out = append(out, v)
	}
	v := failedVerdict(runs, b)
	v.Compared = label(b.Uncached) + ", " + label(b.Cached)
	return append(out, v)
}

// ratioVerdict judges a ratio against bound (at most, or at least).
func ratioVerdict(r spread, atMost bool, bound float64) verdict {
	v := verdict{Bound: fmt.Sprintf("≥ %.2f", bound), Value: "—", Range: "—"}
	if atMost {
		v.Bound = fmt.Sprintf("≤ %.2f", bound)
	}
	if r.N == 0 || math.IsNaN(r.Median) {
		return v
	}
	v.Value, v.Range = fmt.Sprintf("%.2f", r.Median), fmt.Sprintf("%.2f–%.2f", r.Min, r.Max)
	ok := r.Median >= bound
	if atMost {
		ok = r.Median <= bound
	}
	v.State = judged(ok)
	return v
}

// pssVerdict judges a target's peak PSS at pssFrom connections: the largest
// of the rounds, and only when the server held all those connections.
func pssVerdict(runs []result, id string) verdict {
	v := verdict{Measure: fmt.Sprintf("PSS with %d connections open", pssFrom),
		Bound: fmt.Sprintf("≤ %d MB", envPSSMB), Value: "—", Range: "—"}
	pss := figure(runs, id, pssFrom, pssMB)
	if pss.N == 0 {
		return v
	}
	conns := pssFrom
	for _, r := range cell(runs, id, pssFrom) {
		conns = min(conns, r.Conns)
	}
	v.Value = fmt.Sprintf("%.1f MB (largest of rounds), %d connections held", pss.Max, conns)
	v.Range = fmt.Sprintf("%.1f–%.1f MB", pss.Min, pss.Max)
	v.State = judged(pss.Max <= envPSSMB && conns >= pssFrom)
	return v
}

// failedVerdict: no request to b's targets failed at pssFrom connections.
func failedVerdict(runs []result, b build) verdict {
	v := verdict{Measure: fmt.Sprintf("failed requests at %d connections", pssFrom), Bound: "0", Value: "—", Range: "—"}
	var failed, answered int64
	n := 0
	for _, id := range []string{b.Uncached, b.Cached} {
		for _, r := range cell(runs, id, pssFrom) {
			failed, answered, n = failed+r.Errors.Total(), answered+r.Requests, n+1
		}
	}
	if n == 0 {
		return v
	}
	v.Value = fmt.Sprintf("%d failed, %d answered", failed, answered)
	v.State = judged(failed == 0)
	return v
}

func judged(ok bool) state {
	if ok {
		return pass
	}
	return miss
}
