package main

import (
	"strings"
	"testing"
	"time"
)

// fig is a run with the figures the envelope reads.
type fig struct {
	id          string
	round, conc int
	rps         int64 // requests in the run's one second
	p99us, cpu  int   // p99 and CPU per request, µs
	pssMB       int64
	conns       int
	failed      int64
}

func (f fig) result() result {
	return result{Round: f.round, Conc: f.conc, Target: f.id,
		wrkResult: wrkResult{Requests: f.rps, Elapsed: time.Second, P99: time.Duration(f.p99us) * time.Microsecond,
			Errors: wrkErrors{Read: f.failed}},
		CPU: time.Duration(f.cpu) * time.Duration(f.rps) * time.Microsecond, PSSKB: f.pssMB * 1024, Conns: f.conns}
}

// envelopeRuns: nginx (b) and nginx proxy_cache (c) against imdsguard
// uncached (d) and cached (e), one round, at c=16, 256 and 1000; the
// cached/nginx ratios at c=16 are exactly the bounds, at c=256 beyond them.
func envelopeRuns() []result {
	fs := []fig{
		{id: "b", conc: 16, rps: 1000, p99us: 100, cpu: 10},
		{id: "c", conc: 16, rps: 1000, p99us: 100, cpu: 10},
		{id: "d", conc: 16, rps: 500, p99us: 500, cpu: 40},
		{id: "e", conc: 16, rps: 600, p99us: 300, cpu: 20},
		{id: "b", conc: 256, rps: 1000, p99us: 100, cpu: 10},
		{id: "c", conc: 256, rps: 1000, p99us: 100, cpu: 10},
		{id: "d", conc: 256, rps: 490, p99us: 500, cpu: 40},
		{id: "e", conc: 256, rps: 590, p99us: 310, cpu: 21},
		{id: "d", conc: 1000, rps: 100, pssMB: 40, conns: 1000},
		{id: "e", conc: 1000, rps: 100, pssMB: 41, conns: 1000, failed: 1},
	}
	var runs []result
	for _, f := range fs {
		f.round = 1
		runs = append(runs, f.result())
	}
	return runs
}

func TestEnvelope(t *testing.T) {
	vs := envelope(envelopeRuns(), build{Uncached: "d", Cached: "e"}, func(id string) string { return id })
	want := map[string]state{
		"e / c req/s at c=16":                      pass,
		"e / c req/s at c=256":                     miss,
		"e / c p99 at c=16":                        pass,
		"e / c p99 at c=256":                       miss,
		"d / b req/s at c=16":                      pass,
		"d / b req/s at c=256":                     miss,
		"e / c CPU/req at c=16":                    pass,
		"e / c CPU/req at c=256":                   miss,
		"d PSS with 1000 connections open":         pass,
		"e PSS with 1000 connections open":         miss,
		"d, e failed requests at 1000 connections": miss,
	}
	if len(vs) != len(want) {
		t.Errorf("%d verdicts, want %d", len(vs), len(want))
	}
	for _, v := range vs {
		key := v.Compared + " " + v.Measure
		w, ok := want[key]
		if !ok {
			t.Errorf("unexpected verdict %q", key)
			continue
		}
		if v.State != w {
			t.Errorf("%s: %s (value %s, bound %s), want %s", key, v.State, v.Value, v.Bound, w)
		}
	}
}

func TestEnvelopeUnmeasured(t *testing.T) {
	// Only c=1 was run: nothing can be judged, and nothing passes.
	runs := []result{fig{id: "e", round: 1, conc: 1, rps: 10}.result(), fig{id: "c", round: 1, conc: 1, rps: 10}.result()}
	for _, v := range envelope(runs, build{Uncached: "d", Cached: "e"}, func(id string) string { return id }) {
		if v.State != unmeasured || v.Value != "—" {
			t.Errorf("%s %s: %s %q, want not measured", v.Compared, v.Measure, v.State, v.Value)
		}
	}
}

func TestPSSVerdictNeedsTheConnections(t *testing.T) {
	runs := []result{
		fig{id: "e", round: 1, conc: 1000, rps: 10, pssMB: 20, conns: 1000}.result(),
		fig{id: "e", round: 2, conc: 1000, rps: 10, pssMB: 21, conns: 640}.result(),
	}
	v := pssVerdict(runs, "e")
	if v.State != miss || !strings.Contains(v.Value, "640 connections") {
		t.Errorf("PSS with a round of 640 connections: %s %q, want a miss naming 640", v.State, v.Value)
	}
	if !strings.HasPrefix(v.Value, "21.0 MB") || v.Range != "20.0–21.0 MB" {
		t.Errorf("PSS value %q range %q, want the largest round, 21.0 MB, over 20.0–21.0", v.Value, v.Range)
	}
}
