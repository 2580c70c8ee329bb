package main

import "time"

// result is one wrk run against one target, and what the server did
// meanwhile.
type result struct {
	Round  int // 0 for the warm-up
	Conc   int
	Target string // target ID
	wrkResult
	CPU          time.Duration // the server's (tree's) CPU time over the run
	UpstreamGets int64         // GETs fakeimds received over the run
	PSSKB        int64         // peak PSS while the run was on; 0: not sampled
	Conns        int           // most connections the server held at a sample
}

// pssFrom is the concurrency from which runs sample the server's memory.
const pssFrom = 1000

// metric is one figure of a run.
type metric int

const (
	reqPerSec metric = iota
	p50
	p99
	cpuPerReq
	getsPer1000
	pssMB
)

// of is the metric's value for r: req/s, latencies and CPU in µs, PSS in
// MB (2^20 bytes).
func (m metric) of(r result) float64 {
	switch m {
	case reqPerSec:
		return perSecond(r.Requests, r.Elapsed)
	case p50:
		return float64(r.P50) / float64(time.Microsecond)
	case p99:
		return float64(r.P99) / float64(time.Microsecond)
	case cpuPerReq:
		return perRequest(float64(r.CPU)/float64(time.Microsecond), r.Requests)
	case getsPer1000:
		return perRequest(1000*float64(r.UpstreamGets), r.Requests)
	case pssMB:
		return float64(r.PSSKB) / 1024
	}
	panic("unknown metric")
}

func (m metric) String() string {
	return [...]string{"req/s", "p50", "p99", "CPU/req", "upstream GETs/1,000", "PSS"}[m]
}

func perSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

func perRequest(x float64, requests int64) float64 {
	if requests == 0 {
		return 0
	}
	return x / float64(requests)
}
