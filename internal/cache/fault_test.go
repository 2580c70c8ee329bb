package cache

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/internal/upstream"
)

// callerBound is the contract: a caller is answered within 1 s whatever
// IMDS does (the budget is 800 ms; the rest is room for a loaded machine).
const callerBound = time.Second

// faults are the ways IMDS fails, each applied to a running fake.
var faults = []struct {
	name  string
	apply func(f *imds)
}{
	{"timeout", func(f *imds) { f.set(hang, 0) }},
	{"slow 2s", func(f *imds) { f.set(slow, 0) }},
	{"refused", func(f *imds) { f.srv.Close() }},
	{"reset", func(f *imds) { f.set(reset, 0) }},
	{"429", func(f *imds) { f.code.Store(429); f.set(status, 0) }},
	{"500", func(f *imds) { f.code.Store(500); f.set(status, 0) }},
	{"503", func(f *imds) { f.code.Store(503); f.set(status, 0) }},
}

// With answers held, every fault is answered from them (stale), within the
// caller bound, with a handful of GETs and no new token PUT; and no
// goroutine or file is left behind.
func TestStaleOnError(t *testing.T) {
	for _, fault := range faults {
		t.Run(fault.name, func(t *testing.T) {
			noLeaks(t)
			f := newIMDS(t)
			clk := newTestClock()
			c := New(f.client(t), Options{Config: testConfig(), Clock: clk})
			defer c.Close()
			if r := storm(c, len(tenPaths), f); r.bad != 0 {
				t.Fatalf("warming: %v", r)
			}
			clk.Advance(time.Minute) // past their lifetime, inside the grace
			fault.apply(f)
			gets := f.gets.Load()
			for round := range 3 {
				if r := storm(c, 1000, f); r.bad != 0 || r.slowest > callerBound || r.outcomes[Stale] != 1000 {
					t.Fatalf("round %d: want every caller answered stale within %v: %v", round, callerBound, r)
				}
				time.Sleep(150 * time.Millisecond) // past the first back-offs
			}
			if n := f.gets.Load() - gets; n > 40 {
				t.Fatalf("3,000 reads of 10 paths sent %d GETs to a failing IMDS: a storm", n)
			}
			if p := f.puts.Load(); p != 1 {
				t.Fatalf("%d token PUTs, want 1", p)
			}
			t.Logf("GETs during the fault %d, stats %+v", f.gets.Load()-gets, c.Stats())
			if s := c.Stats(); s.Stale != 3000 || s.Failures == 0 {
				t.Fatalf("Stats %+v", s)
			}
		})
	}
}

// With nothing held, every fault is an error (502/504 in the proxy) or
// IMDS's own error answer, within the caller bound, and no storm.
func TestColdFaults(t *testing.T) {
	for _, fault := range faults {
		t.Run(fault.name, func(t *testing.T) {
			noLeaks(t)
			f := newIMDS(t)
			c := New(f.client(t), Options{Config: testConfig(), Clock: newTestClock()})
			defer c.Close()
			fault.apply(f)
			for round := range 2 {
				start := time.Now()
				resps := make(chan *http.Response, 200)
				errs := make(chan error, 200)
				for i := range 200 {
					go func() {
						resp, err := c.Fetch(context.Background(), http.MethodGet, tenPaths[i%10])
						resps <- resp
						errs <- err
					}()
				}
				for range 200 {
					resp, err := <-resps, <-errs
					switch {
					case err != nil:
						if (fault.name == "timeout" || fault.name == "slow 2s") && !upstream.IsTimeout(err) {
							t.Errorf("%v: not a timeout (would be 502, not 504)", err)
						}
					case resp.StatusCode < 400:
						t.Errorf("a failing IMDS answered %d", resp.StatusCode)
					default:
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
				}
				if d := time.Since(start); d > callerBound {
					t.Fatalf("round %d: the last caller was answered after %v", round, d)
				}
			}
			if n := f.gets.Load(); n > 60 {
				t.Fatalf("400 reads of 10 paths sent %d GETs to a failing IMDS: a storm", n)
			}
			if p := f.puts.Load(); p > 5 {
				t.Fatalf("%d token PUTs: a storm", p)
			}
		})
	}
}

// IMDS answering 401 to everything for a while: callers get the held
// answers within the bound, the session token is replaced once (two PUTs in
// all), and once IMDS takes the token again the cache refreshes.
func TestUnauthorizedForAWhile(t *testing.T) {
	noLeaks(t)
	f := newIMDS(t)
	clk := newTestClock()
	c := New(f.client(t), Options{Config: testConfig(), Clock: clk})
	defer c.Close()
	if r := storm(c, len(tenPaths), f); r.bad != 0 {
		t.Fatalf("warming: %v", r)
	}
	clk.Advance(time.Minute)
	f.set(refuse, 700*time.Millisecond)
	for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if r := storm(c, 100, f); r.bad != 0 || r.slowest > callerBound {
			t.Fatalf("want every caller answered within %v: %v", callerBound, r)
		}
	}
	if p := f.puts.Load(); p != 2 {
		t.Fatalf("401 to everything for 700 ms: %d token PUTs, want 2 (the first and one replacement)", p)
	}
	idle(t, c)
	clk.Advance(time.Minute)
	time.Sleep(maxRetry) // past every path's back-off
	first := storm(c, len(tenPaths), f)
	idle(t, c)
	if after := storm(c, len(tenPaths), f); after.outcomes[Hit] != len(tenPaths) {
		t.Fatalf("after the refusals: %v, then %v; want fresh answers again", first, after)
	}
	if p := f.puts.Load(); p != 2 {
		t.Fatalf("after the refusals: %d token PUTs, want still 2", p)
	}
}
