// Package cache answers repeated metadata reads from memory: one upstream
// request per path however many callers ask at once, IMDS's answers kept
// for as long as they stay true, and a recent answer served when IMDS
// fails. It sits behind the policy (every request is decided before the
// cache is consulted) and holds IMDS's answers only, never a decision: its
// key is the canonical path, nothing about the caller.
//
// What it does with a GET or HEAD of a path, in order:
//
//  1. the wall clock is compared with the monotonic one: after a jump
//     (resume from hibernation) everything held is dropped;
//  2. a fresh answer is a hit; one old enough starts a background refresh
//     and is still served;
//  3. otherwise the caller joins the path's one upstream request, or
//     starts it; a HEAD is answered from the GET (headers, no body);
//  4. when IMDS fails (no answer, refused, reset, 401, 429, 5xx) or has not
//     answered within half the caller's budget, a held answer still within
//     its grace is served (stale); with nothing held the caller waits the
//     whole budget, then gets the error; the path backs off with
//     jitter before it is asked again, and while its last request failed
//     the held answer is served at once and the retry runs in the
//     background. A caller with nothing to be served waits for the retry
//     if it fits in its budget.
//
// Lifetimes depend on the path's Class (class.go, lifetime.go,
// docs/CACHE.md). Memory is bounded in entries and bytes; the least
// recently used entries go first.
package cache

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Upstream answers metadata requests for canonical paths: the real IMDS
// through upstream.Client. It is proxy.Upstream, named here so that this
// package does not import its parent.
type Upstream interface {
	Fetch(ctx context.Context, method, path string) (*http.Response, error)
}

// DefaultBudget is the longest a caller waits for IMDS before it gets a
// held answer or an error: inside the 1 s that SDKs give IMDS.
const DefaultBudget = 800 * time.Millisecond

// Options configure a Cache.
type Options struct {
	Config Config
	Clock  Clock         // nil: SystemClock()
	Budget time.Duration // 0: DefaultBudget
	Log    *slog.Logger
}

// Cache is an Upstream in front of another one.
type Cache struct {
	inner   Upstream
	clock   Clock
	log     *slog.Logger
	enabled bool
	budget  time.Duration
	grace   time.Duration
	maxN    int
	maxB    int64

	ctx    context.Context // ends at Close: flights stop
	cancel context.CancelFunc
	wg     sync.WaitGroup
	drift  atomic.Int64 // wall minus monotonic at the last jump (clock.go)

	mu     sync.RWMutex
	slots  map[string]*slot // by canonical path
	bytes  int64
	closed bool

	n counters
}

// slot is what the cache knows of one path.
type slot struct {
	path  string
	class Class
	ans   atomic.Pointer[answer] // IMDS's last kept answer; nil: none
	next  atomic.Int64           // monotonic ns: a hit from then on starts a background refresh
	used  atomic.Int64           // monotonic ns >> usedShift of the last use, for eviction

	// under Cache.mu
	flight    *flight
	failures  int           // consecutive upstream failures
	retryAt   time.Duration // no upstream request before this after a failure
	lastErr   error
	unrotated int   // consecutive refreshes that found the same credentials (lifetime.go)
	size      int64 // bytes accounted for the slot and its answer
}

// flight is one upstream request for a path; every caller of the path
// waits for it. Its fields are set before done is closed.
type flight struct {
	done chan struct{}
	ans  *answer // IMDS's answer, whatever the status; nil when err
	err  error
}

// New returns a Cache in front of inner. Close it to stop its background
// requests.
func New(inner Upstream, o Options) *Cache {
	cfg := o.Config
	c := &Cache{
		inner:   inner,
		clock:   o.Clock,
		log:     o.Log,
		enabled: cfg.Enabled,
		budget:  o.Budget,
		grace:   cfg.StaleGrace.Duration,
		maxN:    cfg.MaxEntries,
		maxB:    cfg.MaxBytes,
		slots:   map[string]*slot{},
	}
	if c.clock == nil {
		c.clock = SystemClock()
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.budget <= 0 {
		c.budget = DefaultBudget
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.drift.Store(drift(c.clock.Now()))
	return c
}

// Fetch implements Upstream.
func (c *Cache) Fetch(ctx context.Context, method, path string) (*http.Response, error) {
	resp, _, err := c.FetchOutcome(ctx, method, path)
	return resp, err
}

// FetchOutcome is Fetch, and says how the answer was found (for the audit
// event). The Header of an answer from the cache (GET and HEAD, the cache
// enabled) is shared with every other answer to the same entry: callers
// read it and never change it; one that must, copies it (Header.Clone).
func (c *Cache) FetchOutcome(ctx context.Context, method, path string) (*http.Response, Outcome, error) {
	head := method == http.MethodHead
	if !head && method != http.MethodGet || !c.enabled {
		return c.bypass(ctx, method, path)
	}
	wall, now := c.clock.Now()
	c.checkClock(wall, now)
	c.mu.RLock()
	s := c.slots[path]
	c.mu.RUnlock()
	if s != nil {
		if a := s.ans.Load(); a != nil && now < a.fresh {
			c.hit(s, now)
			return a.response(head), Hit, nil
		}
	}
	return c.miss(ctx, path, head, now)
}

// hit records the use of s and starts its background refresh when due.
func (c *Cache) hit(s *slot, now time.Duration) {
	c.n.hits.Add(1)
	if u := int64(now) >> usedShift; s.used.Load() != u {
		s.used.Store(u)
	}
	if int64(now) >= s.next.Load() {
		c.refresh(s, now)
	}
}

// refresh starts a background request for s unless one runs, s backs off,
// or s is no longer held.
func (c *Cache) refresh(s *slot, now time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || s.flight != nil || int64(now) < s.next.Load() || c.slots[s.path] != s {
		return
	}
	s.next.Store(int64(never)) // until this refresh ends
	c.n.refreshes.Add(1)
	c.start(s)
}

func (c *Cache) bypass(ctx context.Context, method, path string) (*http.Response, Outcome, error) {
	c.n.bypass.Add(1)
	resp, err := c.inner.Fetch(ctx, method, path)
	return resp, Bypass, err
}

// Close stops background requests and waits for every upstream request
// the cache started. Fetch still answers afterwards: fresh answers from
// memory, everything else straight from the inner Upstream.
func (c *Cache) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	return nil
}

// miss is a read without a fresh answer: join or start the path's upstream
// request and wait for it within the budget; serve the held answer when IMDS
// fails or is slow.
func (c *Cache) miss(ctx context.Context, path string, head bool, now time.Duration) (*http.Response, Outcome, error) {
	deadline := now + c.budget
	expired := time.NewTimer(c.budget)
	defer expired.Stop()
	for {
		c.mu.Lock()
		s := c.slotFor(path, now)
		if s == nil { // the token path, or the cache is closed
			c.mu.Unlock()
			return c.bypass(ctx, method(head), path)
		}
		if a, o := c.fromMemory(s, now); a != nil {
			c.mu.Unlock()
			if o == Hit {
				c.hit(s, now)
			}
			return a.response(head), o, nil
		}
		f, outcome := s.flight, Coalesced
		if f == nil && now < s.retryAt { // nothing to serve: wait for the retry if it fits
			wait, err := s.retryAt-now, s.backingOff(now)
			c.mu.Unlock()
			if now+wait < deadline {
				if err = sleep(ctx, wait); err == nil {
					_, now = c.clock.Now()
					continue
				}
			}
			c.n.misses.Add(1)
			return nil, Miss, err
		}
		if f == nil {
			f, outcome = c.start(s), Miss
		}
		held := s.staleAt(now) != nil
		c.mu.Unlock()
		return c.wait(ctx, s, f, head, outcome, expired.C, held, deadline-c.budget/2-now)
	}
}

// fromMemory is the answer of s that needs no waiting: one filled since the
// caller looked (a hit), or, while IMDS fails for the path, the held one
// (stale), with the retry started in the background once the back-off has
// passed. c.mu is held.
func (c *Cache) fromMemory(s *slot, now time.Duration) (*answer, Outcome) {
	a := s.ans.Load()
	switch {
	case a != nil && now < a.fresh:
		return a, Hit
	case a != nil && now < a.stale && s.failures > 0:
		if s.flight == nil && now >= s.retryAt {
			c.n.refreshes.Add(1)
			c.start(s)
		}
		c.n.stale.Add(1)
		return a, Stale
	}
	return nil, 0
}

// wait waits for the request f of s until the caller's budget expires; a
// caller with a held answer to fall back on waits at most until patience,
// half the budget: an IMDS that has not answered by then is in trouble, and
// the request goes on to refresh the cache for the next caller.
func (c *Cache) wait(ctx context.Context, s *slot, f *flight, head bool, o Outcome, expired <-chan time.Time, held bool, patience time.Duration) (*http.Response, Outcome, error) {
	var hurry <-chan time.Time
	if held {
		t := time.NewTimer(max(patience, 0))
		defer t.Stop()
		hurry = t.C
	}
	select {
	case <-f.done:
		_, now := c.clock.Now()
		return c.settle(s, f, head, now, o)
	case <-expired:
	case <-hurry:
	case <-ctx.Done():
		c.count(o)
		return nil, o, ctx.Err()
	}
	_, now := c.clock.Now()
	return c.late(s, head, now, o)
}

func method(head bool) string {
	if head {
		return http.MethodHead
	}
	return http.MethodGet
}

// slotFor returns the slot of path, made if needed; nil for a path never
// cached or once the cache is closed. c.mu is held.
func (c *Cache) slotFor(path string, now time.Duration) *slot {
	if c.closed {
		return nil
	}
	if s := c.slots[path]; s != nil {
		return s
	}
	class := ClassOf(path)
	if class == Never {
		return nil
	}
	s := &slot{path: path, class: class, size: slotOverhead + int64(len(path))}
	s.next.Store(int64(never))
	s.used.Store(int64(now) >> usedShift)
	c.slots[path] = s
	c.bytes += s.size
	c.evict(s, now)
	return s
}

// start begins the upstream request of s. c.mu is held.
func (c *Cache) start(s *slot) *flight {
	f := &flight{done: make(chan struct{})}
	s.flight = f
	c.wg.Add(1)
	go c.run(s, f)
	return f
}

// run is one upstream request, detached from the callers that wait for it
// (one leaving does not cancel it for the others) and bounded by the
// budget; Close cancels it.
func (c *Cache) run(s *slot, f *flight) {
	defer c.wg.Done()
	ctx, cancel := context.WithTimeout(c.ctx, c.budget)
	defer cancel()
	c.n.upstream.Add(1)
	var a *answer
	resp, err := c.inner.Fetch(ctx, http.MethodGet, s.path)
	if err == nil {
		a, err = readAnswer(resp)
	}
	wall, now := c.clock.Now()
	c.mu.Lock()
	c.finish(s, f, a, err, wall, now)
	c.mu.Unlock()
	close(f.done)
}

// finish records the outcome of the request of s. c.mu is held.
func (c *Cache) finish(s *slot, f *flight, a *answer, err error, wall time.Time, now time.Duration) {
	s.flight = nil
	f.ans, f.err = a, err
	if err != nil || failed(a.status) {
		c.failed(s, a, err, now)
		return
	}
	s.failures, s.retryAt, s.lastErr = 0, 0, nil
	held := c.slots[s.path] == s // not evicted or dropped meanwhile
	switch {
	case !cacheable(a.status):
		// IMDS now says something else (a 403, say): what was held is no longer its answer.
		c.setAnswer(s, nil)
		s.next.Store(int64(never))
	case len(a.body) > MaxEntryBody:
		c.n.oversize.Add(1)
		c.setAnswer(s, nil)
		s.next.Store(int64(never))
	case held:
		s.next.Store(int64(c.setLifetimes(s, a, wall, now)))
		c.setAnswer(s, a)
		c.evict(s, now)
	}
}

// failed records an upstream failure of s: back off before asking again,
// and keep what is held for stale answers. c.mu is held.
func (c *Cache) failed(s *slot, a *answer, err error, now time.Duration) {
	c.n.failures.Add(1)
	if err == nil {
		err = fmt.Errorf("IMDS answered %s", a.line)
	}
	s.failures++
	s.lastErr = err
	wait := jitter(backoff(s.failures, minRetry, maxRetry))
	s.retryAt = now + wait
	if s.ans.Load() != nil {
		s.next.Store(int64(s.retryAt)) // a failed refresh is tried again after the back-off
	}
	lvl := slog.LevelDebug
	if s.failures == 1 {
		lvl = slog.LevelWarn
	}
	c.log.Log(context.Background(), lvl, "IMDS failed; serving held answers and backing off",
		"path", s.path, "err", err, "failures", s.failures, "retry_in", wait)
}

// settle answers a caller whose request ended.
func (c *Cache) settle(s *slot, f *flight, head bool, now time.Duration, o Outcome) (*http.Response, Outcome, error) {
	if f.err == nil && !failed(f.ans.status) {
		c.count(o)
		return f.ans.response(head), o, nil
	}
	if a := s.staleAt(now); a != nil {
		c.n.stale.Add(1)
		return a.response(head), Stale, nil
	}
	c.count(o)
	if f.err != nil {
		return nil, o, fmt.Errorf("cache: %s: %w", s.path, f.err)
	}
	return f.ans.response(head), o, nil // IMDS's own error answer
}

// late answers a caller whose budget ended before IMDS answered.
func (c *Cache) late(s *slot, head bool, now time.Duration, o Outcome) (*http.Response, Outcome, error) {
	if a := s.staleAt(now); a != nil {
		c.n.stale.Add(1)
		return a.response(head), Stale, nil
	}
	c.count(o)
	return nil, o, fmt.Errorf("cache: %s: no answer from IMDS within %v: %w", s.path, c.budget, context.DeadlineExceeded)
}

func (c *Cache) count(o Outcome) {
	if o == Miss {
		c.n.misses.Add(1)
	} else {
		c.n.coalesced.Add(1)
	}
}

// sleep waits d, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// staleAt is the held answer if it may still be served instead of an error.
func (s *slot) staleAt(now time.Duration) *answer {
	if a := s.ans.Load(); a != nil && now < a.stale {
		return a
	}
	return nil
}

func (s *slot) held() *answer { return s.ans.Load() }

// backingOff is the error of a caller with nothing held that cannot wait
// for the next try. c.mu is held.
func (s *slot) backingOff(now time.Duration) error {
	return fmt.Errorf("cache: %s: IMDS failed %d times (%v); next try in %v", s.path, s.failures, s.lastErr, (s.retryAt - now).Round(time.Millisecond))
}
