package main

import (
	"math"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		xs   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{1, 100, 2}, 2}, // an outlier round does not move it
	} {
		if got := median(tc.xs); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.xs, got, tc.want)
		}
	}
	if got := median(nil); !math.IsNaN(got) {
		t.Errorf("median of nothing = %v, want NaN", got)
	}
	xs := []float64{3, 1, 2}
	median(xs)
	if xs[0] != 3 || xs[1] != 1 {
		t.Errorf("median sorted its argument: %v", xs)
	}
}

// fakeRun is a result of target id at conc in round: n requests in a second.
func fakeRun(id string, round, conc int, n int64) result {
	return result{Round: round, Conc: conc, Target: id, wrkResult: wrkResult{Requests: n, Elapsed: time.Second}}
}

func TestFigureAndRatio(t *testing.T) {
	runs := []result{
		fakeRun("e", 0, 16, 999999), // the warm-up: never a figure
		fakeRun("e", 1, 16, 100), fakeRun("c", 1, 16, 200),
		fakeRun("e", 2, 16, 300), fakeRun("c", 2, 16, 300),
		fakeRun("e", 3, 16, 200), fakeRun("c", 3, 16, 100),
		fakeRun("e", 1, 256, 7),
	}
	f := figure(runs, "e", 16, reqPerSec)
	if f.Median != 200 || f.Min != 100 || f.Max != 300 || f.N != 3 {
		t.Errorf("figure = %+v, want median 200 over 100–300, 3 rounds", f)
	}
	// Medians 200/200; within the rounds 0.5, 1 and 2.
	r := ratio(runs, "e", "c", 16, reqPerSec)
	if r.Median != 1 || r.Min != 0.5 || r.Max != 2 || r.N != 3 {
		t.Errorf("ratio = %+v, want 1 over 0.5–2, 3 rounds", r)
	}
	if r := ratio(runs, "e", "c", 256, reqPerSec); r.N != 0 || !math.IsNaN(r.Median) {
		t.Errorf("ratio without a denominator = %+v, want unmeasured", r)
	}
	if f := figure(runs, "x", 16, reqPerSec); f.N != 0 || !math.IsNaN(f.Median) {
		t.Errorf("figure of no runs = %+v, want unmeasured", f)
	}
}

func TestMetrics(t *testing.T) {
	r := result{wrkResult: wrkResult{Requests: 2000, Elapsed: 2 * time.Second, P50: 1500 * time.Microsecond, P99: 3 * time.Millisecond},
		CPU: 50 * time.Millisecond, UpstreamGets: 2010, PSSKB: 30 * 1024}
	for m, want := range map[metric]float64{reqPerSec: 1000, p50: 1500, p99: 3000, cpuPerReq: 25, getsPer1000: 1005, pssMB: 30} {
		if got := m.of(r); got != want {
			t.Errorf("%s = %v, want %v", m, got, want)
		}
	}
	if got := cpuPerReq.of(result{}); got != 0 {
		t.Errorf("CPU/req of no requests = %v, want 0", got)
	}
}
