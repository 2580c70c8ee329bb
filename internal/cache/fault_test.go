package cache

import (
	"context"
	"io"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/imdsguard/imdsguard/internal/upstream"
)

// faults are the ways IMDS fails, as the cache sees them through its
// Upstream, each applied to a running in-memory IMDS. TestFaultsThroughClient
// applies them to a real one on loopback.
var faults = []struct {
	name  string
	apply func(f *fakeUpstream)
}{
	{"timeout", func(f *fakeUpstream) { f.hold() }},
	{"slow 2s", func(f *fakeUpstream) { f.slow(2 * time.Second) }},
	{"refused", func(f *fakeUpstream) { f.fail(errDown, 0) }},
	{"reset", func(f *fakeUpstream) { f.fail(errReset, 0) }},
	{"401", func(f *fakeUpstream) { f.fail(nil, 401) }},
	{"429", func(f *fakeUpstream) { f.fail(nil, 429) }},
	{"500", func(f *fakeUpstream) { f.fail(nil, 500) }},
	{"503", func(f *fakeUpstream) { f.fail(nil, 503) }},
}

// newTenPaths is an in-memory IMDS that answers tenPaths.
func newTenPaths() *fakeUpstream {
	f := newFake(map[string]fakeAnswer{})
	for _, p := range tenPaths {
		f.set(p, fakeAnswer{status: 200, body: valueOf(p)})
	}
	return f
}

// With answers held, every fault is answered from them (stale) within half
// the budget, with a handful of GETs. Time is the bubble's: the bounds are
// exact, with no room for a loaded machine.
func TestStaleOnError(t *testing.T) {
	for _, fault := range faults {
		t.Run(fault.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newTenPaths()
				c := newTestCache(t, f, testConfig())
				if r := storm(c, len(tenPaths)); r.bad != 0 {
					t.Fatalf("warming: %v", r)
				}
				time.Sleep(time.Minute) // past their lifetime, inside the grace
				fault.apply(f)
				gets := f.total.Load()
				for round := range 3 {
					if r := storm(c, 1000); r.bad != 0 || r.slowest > DefaultBudget/2 || r.outcomes[Stale] != 1000 {
						t.Fatalf("round %d: want every caller answered stale within %v: %v", round, DefaultBudget/2, r)
					}
					time.Sleep(150 * time.Millisecond) // past the first back-offs
				}
				if n := f.total.Load() - gets; n > 40 {
					t.Fatalf("3,000 reads of 10 paths sent %d GETs to a failing IMDS: a storm", n)
				}
				if s := c.Stats(); s.Stale != 3000 || s.Failures == 0 {
					t.Fatalf("Stats %+v", s)
				}
			})
		})
	}
}

// With nothing held, every fault is an error (502/504 in the proxy) or
// IMDS's own error answer, within the budget, and no storm.
func TestColdFaults(t *testing.T) {
	for _, fault := range faults {
		t.Run(fault.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newTenPaths()
				c := newTestCache(t, f, testConfig())
				fault.apply(f)
				for round := range 2 {
					if d := coldRound(t, c, fault.name, 200); d > DefaultBudget {
						t.Fatalf("round %d: the last caller was answered after %v", round, d)
					}
				}
				if n := f.total.Load(); n > 60 {
					t.Fatalf("400 reads of 10 paths sent %d GETs to a failing IMDS: a storm", n)
				}
			})
		})
	}
}

// coldRound has callers read tenPaths at once from a failing IMDS, checks
// that none is answered with success and that a timeout is told apart (504,
// not 502), and returns how long the last one waited.
func coldRound(t *testing.T, c *Cache, fault string, callers int) time.Duration {
	t.Helper()
	start := time.Now()
	type result struct {
		resp *http.Response
		err  error
	}
	results := make(chan result, callers)
	for i := range callers {
		go func() {
			resp, err := c.Fetch(context.Background(), http.MethodGet, tenPaths[i%10])
			results <- result{resp, err}
		}()
	}
	for range callers {
		r := <-results
		resp, err := r.resp, r.err
		switch {
		case err != nil:
			if (fault == "timeout" || fault == "slow 2s") && !upstream.IsTimeout(err) {
				t.Errorf("%v: not a timeout (would be 502, not 504)", err)
			}
		case resp.StatusCode < 400:
			t.Errorf("a failing IMDS answered %d", resp.StatusCode)
		default:
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	return time.Since(start)
}
