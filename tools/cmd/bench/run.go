package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/imdsguard/imdsguard/tools/testbed"
)

// measure runs wrk with conc connections for d against tg and reads what
// the server and fakeimds did meanwhile. A server that dies, or a wrk that
// fails or stops early, ends the program: nothing after it would mean
// anything.
func (b *bed) measure(t testbed.TB, tg *target, round, conc int, d time.Duration) result {
	t.Helper()
	res := result{Round: round, Conc: conc, Target: tg.ID}
	gets0 := settledGets(t, tg.Upstream)
	cpu0, err := treeCPU(tg.Proc.Pid())
	if err != nil {
		t.Fatalf("run of %s c=%d: %v", tg.Label(), conc, err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var mem <-chan memSample
	if conc >= pssFrom {
		mem = sampleMemory(ctx, tg.Proc.Pid(), tg.Port, sampleInterval(d))
	}
	res.wrkResult = b.runWrk(t, tg, conc, d)
	stop()
	b.alive(t, tg, conc)
	if mem != nil {
		s := <-mem
		if s.Err != nil {
			t.Fatalf("run of %s c=%d: sampling memory: %v", tg.Label(), conc, s.Err)
		}
		res.PSSKB, res.Conns = s.PSSKB, s.Conns
	}
	cpu1, err := treeCPU(tg.Proc.Pid())
	if err != nil {
		t.Fatalf("run of %s c=%d: %v", tg.Label(), conc, err)
	}
	res.CPU, res.UpstreamGets = cpu1-cpu0, settledGets(t, tg.Upstream)-gets0
	return res
}

// runWrk runs wrk inside the namespace and reads its result.
func (b *bed) runWrk(t testbed.TB, tg *target, conc int, d time.Duration) wrkResult {
	t.Helper()
	url := "http://" + tg.Addr() + b.path
	p := testbed.StartProc(t, testbed.ProcSpec{Name: "wrk", Path: b.wrk, NS: tg.ClientNS,
		Args: wrkArgs(conc, d, b.lua, tg.Header, url)})
	select {
	case <-p.Done():
	case <-time.After(d + wrkTimeout + 10*time.Second):
		t.Fatalf("wrk on %s c=%d: still running %v after its end", tg.Label(), conc, wrkTimeout+10*time.Second)
	}
	if err := p.Stop(); err != nil {
		t.Fatalf("wrk on %s c=%d: %v\n%s", tg.Label(), conc, err, p.Logs())
	}
	r, err := parseWrk(p.Stdout())
	if err != nil {
		t.Fatalf("wrk on %s c=%d: %v", tg.Label(), conc, err)
	}
	if r.Elapsed < d*9/10 {
		t.Fatalf("wrk on %s c=%d stopped after %v of %v (interrupted?)", tg.Label(), conc, r.Elapsed, d)
	}
	return r
}

// alive fails the program when tg's server or its fakeimds exited.
func (b *bed) alive(t testbed.TB, tg *target, conc int) {
	t.Helper()
	for _, p := range []*testbed.Proc{tg.Upstream.Proc, tg.Proc} {
		if done, err := p.Exited(); done {
			t.Fatalf("%s exited during the run of %s c=%d: %v\n%s", p.Name, tg.Label(), conc, err, p.Logs())
		}
	}
}

// settledGets is fakeimds's GET count once it has stopped moving: requests
// a proxy still had in flight when wrk stopped land in the run that sent
// them. It gives up waiting after 5 s.
func settledGets(t testbed.TB, fake *testbed.FakeIMDS) int64 {
	t.Helper()
	last := int64(-1)
	for range 50 {
		s, err := fake.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if s.Gets == last {
			break
		}
		last = s.Gets
		time.Sleep(100 * time.Millisecond)
	}
	return last
}

// rounds runs the warm-up (every target at c=16), then every round: every
// target at the first of concs, then at the next, and so on (roundOrder).
// It prints a line per run and returns the warm-up's results and the
// rounds'.
func (b *bed) rounds(t testbed.TB, targets []*target, concs []int, o options) (warm, runs []result) {
	t.Helper()
	if o.Warmup > 0 {
		for _, tg := range targets {
			warm = append(warm, b.measure(t, tg, 0, 16, o.Warmup))
		}
	}
	for round := 1; round <= o.Rounds; round++ {
		for _, c := range concs {
			for _, tg := range roundOrder(targets, round) {
				r := b.measure(t, tg, round, c, o.Duration)
				fmt.Println(progressLine(tg, r))
				runs = append(runs, r)
			}
		}
	}
	return warm, runs
}

// roundOrder is the order of the targets in a round: as planned in odd
// rounds, reversed in even ones, so that a drift of the machine during a
// round (or a target slowed by the one before it) does not always favour
// the same side of a ratio, B after A above all.
func roundOrder(targets []*target, round int) []*target {
	if round%2 == 1 {
		return targets
	}
	out := slices.Clone(targets)
	slices.Reverse(out)
	return out
}

// progressLine is one run, as printed while the rounds go.
func progressLine(tg *target, r result) string {
	s := fmt.Sprintf("bench: round %d c=%-4d %-26s %8.0f req/s  p50 %6.0f µs  p99 %6.0f µs  errors %d  CPU/req %5.1f µs  upstream GETs/1,000 %6.1f",
		r.Round, r.Conc, tg.Label(), reqPerSec.of(r), p50.of(r), p99.of(r), r.Errors.Total(), cpuPerReq.of(r), getsPer1000.of(r))
	if r.PSSKB > 0 {
		s += fmt.Sprintf("  PSS %.1f MB with %d connections", pssMB.of(r), r.Conns)
	}
	return s
}
