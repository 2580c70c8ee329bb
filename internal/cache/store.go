package cache

import (
	"time"
)

const (
	// slotOverhead is what a slot costs besides its path and answer: the
	// slot, its answer and map entry, rounded up.
	slotOverhead = 256
	// usedShift coarsens the last-use time (to ~16 ms) so that a hit
	// writes it rarely.
	usedShift = 24
	// evictSample is how many entries an eviction compares: all of them in
	// a small cache, an approximation of least-recently-used in a big one.
	evictSample = 16
)

// setAnswer replaces the answer held for s and its bytes. c.mu is held.
func (c *Cache) setAnswer(s *slot, a *answer) {
	size := slotOverhead + int64(len(s.path))
	if a != nil {
		size += a.size
	}
	if c.slots[s.path] == s {
		c.bytes += size - s.size
	}
	s.size = size
	s.ans.Store(a)
}

// evict removes entries other than keep until the cache is inside its
// bounds: first those past their grace, then the least recently used, and
// those being fetched last. c.mu is held.
func (c *Cache) evict(keep *slot, now time.Duration) {
	for len(c.slots) > c.maxN || c.bytes > c.maxB {
		v := c.victim(keep, now)
		if v == nil {
			return
		}
		c.remove(v)
		c.n.evictions.Add(1)
	}
}

func (c *Cache) victim(keep *slot, now time.Duration) *slot {
	var best *slot
	var bestRank [3]int64
	n := 0
	for _, s := range c.slots {
		if s == keep {
			continue
		}
		r := rank(s, now)
		if best == nil || less(r, bestRank) {
			best, bestRank = s, r
		}
		if n++; n == evictSample {
			break
		}
	}
	return best
}

// rank orders eviction candidates: idle before busy, dead before live,
// then by last use.
func rank(s *slot, now time.Duration) [3]int64 {
	var busy, live int64
	if s.flight != nil {
		busy = 1
	}
	if s.staleAt(now) != nil {
		live = 1
	}
	return [3]int64{busy, live, s.used.Load()}
}

func less(a, b [3]int64) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// remove forgets s; a request still running for it ends without keeping
// its answer. c.mu is held.
func (c *Cache) remove(s *slot) {
	delete(c.slots, s.path)
	c.bytes -= s.size
	s.size = 0
	s.ans.Store(nil)
	s.next.Store(int64(never))
}

// dropAll forgets everything. c.mu is held.
func (c *Cache) dropAll() {
	for _, s := range c.slots {
		c.remove(s)
	}
}
