package cache

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// Past max_entries the least recently used path goes.
func TestEvictsLeastRecentlyUsed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(map[string]fakeAnswer{})
		path := func(i int) string { return fmt.Sprintf("/latest/meta-data/block-device-mapping/ebs%d", i) }
		for i := range 17 {
			f.set(path(i), fakeAnswer{status: 200, body: "sdf"})
		}
		cfg := testConfig()
		cfg.MaxEntries = minEntries
		cache := newTestCache(t, f, cfg)
		for i := range 16 {
			get(t, cache, path(i))
			time.Sleep(time.Second)
		}
		get(t, cache, path(0)) // path 1 is now the least recently used
		time.Sleep(time.Second)
		get(t, cache, path(16))
		s := cache.Stats()
		if s.Entries != 16 || s.Evictions != 1 {
			t.Fatalf("Stats %+v, want 16 entries after 1 eviction", s)
		}
		for _, c := range []struct { // in this order: reading path 1 again evicts another
			i    int
			want Outcome
		}{{0, Hit}, {2, Hit}, {16, Hit}, {1, Miss}} {
			if _, _, o := get(t, cache, path(c.i)); o != c.want {
				t.Errorf("%s: %s, want %s", path(c.i), o, c.want)
			}
		}
	})
}

// The bytes held stay under max_bytes whatever is read; an answer larger
// than MaxEntryBody is served whole and not kept; one beyond ReadLimit is
// refused.
func TestBytesBounded(t *testing.T) {
	f := newFake(map[string]fakeAnswer{})
	cfg := testConfig()
	cfg.MaxBytes = minBytes
	cache := newTestCache(t, f, cfg)
	big := strings.Repeat("u", 60<<10)
	for i := range 40 {
		p := fmt.Sprintf("/latest/meta-data/tags/instance/k%d", i)
		f.set(p, fakeAnswer{status: 200, body: big})
		if _, body, _ := get(t, cache, p); len(body) != len(big) {
			t.Fatalf("%s: %d bytes", p, len(body))
		}
		if s := cache.Stats(); s.Bytes > cfg.MaxBytes {
			t.Fatalf("after %d reads: %d bytes held, max %d", i+1, s.Bytes, cfg.MaxBytes)
		}
	}
	if s := cache.Stats(); s.Evictions < 20 || s.Entries > 17 {
		t.Fatalf("Stats %+v: expected evictions", s)
	}

	const huge = "/latest/user-data"
	f.set(huge, fakeAnswer{status: 200, body: strings.Repeat("x", MaxEntryBody+1)})
	for i := range 2 {
		if _, body, o := get(t, cache, huge); len(body) != MaxEntryBody+1 || o != Miss {
			t.Fatalf("oversize read %d: %d bytes %s, want all of it, a miss", i, len(body), o)
		}
	}
	if s := cache.Stats(); s.Oversize != 2 {
		t.Fatalf("Stats.Oversize = %d, want 2", s.Oversize)
	}
	f.set(huge, fakeAnswer{status: 200, body: strings.Repeat("x", ReadLimit+1)})
	if _, err := cache.Fetch(context.Background(), http.MethodGet, huge); err == nil {
		t.Fatal("an answer beyond ReadLimit was accepted")
	}
}

// A wall-clock jump against the monotonic clock (resume from hibernation,
// either way) drops everything; a small step does not. This test is about
// the clock: a bubble moves both readings together, so the test clock
// moves the wall one alone.
func TestClockJumpDropsEverything(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const p = "/latest/meta-data/instance-id"
		f := newFake(map[string]fakeAnswer{p: {status: 200, body: "i-1"}})
		clk := newTestClock()
		cache := New(f, Options{Config: testConfig(), Clock: clk})
		defer cache.Close()
		for _, c := range []struct {
			jump time.Duration
			want Outcome
		}{
			{JumpThreshold / 2, Hit},
			{time.Hour, Miss},
			{-10 * time.Second, Miss},
			{-JumpThreshold / 2, Hit},
		} {
			get(t, cache, p)
			clk.Jump(c.jump)
			if _, _, o := get(t, cache, p); o != c.want {
				t.Fatalf("jump %v: %s, want %s", c.jump, o, c.want)
			}
		}
		if s := cache.Stats(); s.ClockJumps != 2 {
			t.Fatalf("Stats.ClockJumps = %d, want 2", s.ClockJumps)
		}
	})
}

// Close stops background refreshes and the requests that callers left:
// it returns, and no goroutine of the cache is left (the bubble would fail
// the test on one still blocked at its end).
func TestCloseStopsUpstreamRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const p = "/latest/meta-data/public-ipv4"
		f := newFake(map[string]fakeAnswer{p: {status: 200, body: "192.0.2.1"}})
		cache := New(f, Options{Config: testConfig(), Budget: 50 * ms})
		get(t, cache, p)
		gate := f.hold() // IMDS stops answering
		time.Sleep(DynamicTTL)
		// Expired: the read starts a request that hangs; the caller gets the
		// held answer at the end of its budget, the request goes on.
		if _, _, o := get(t, cache, p); o != Stale {
			t.Fatalf("IMDS hanging: %s, want stale", o)
		}
		start := time.Now()
		cache.Close()
		if d := time.Since(start); d != 0 {
			t.Fatalf("Close waited %v for the hanging request instead of cancelling it", d)
		}
		close(gate)
		if _, _, o := get(t, cache, p); o != Bypass {
			t.Fatalf("after Close: %s, want bypass", o)
		}
	})
}
