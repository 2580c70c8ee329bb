package cache

import "sync/atomic"

// Outcome is how one Fetch was answered.
type Outcome uint8

const (
	_         Outcome = iota
	Hit               // from memory, fresh
	Miss              // this caller's read went to IMDS
	Coalesced         // waited for the read another caller started for the same path
	Stale             // IMDS failed or was slow: a held answer within its grace
	Bypass            // not cached: another method, the token path, cache disabled or closed
)

var outcomeNames = [...]string{"", "hit", "miss", "coalesced", "stale", "bypass"}

func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "unknown"
}

// Stats is a snapshot of what the cache did since it was made.
type Stats struct {
	Hits      uint64 // answered from memory
	Misses    uint64 // callers whose read went to IMDS
	Coalesced uint64 // callers that waited for another caller's read of the same path
	Stale     uint64 // held answers served because IMDS failed or was slow
	Bypass    uint64 // reads passed through uncached

	Upstream   uint64 // requests the cache sent to IMDS (misses and refreshes)
	Refreshes  uint64 // background refreshes started by hits
	Failures   uint64 // requests that ended in an error, 401, 429 or 5xx
	Evictions  uint64 // entries removed to stay inside max_entries and max_bytes
	Oversize   uint64 // answers served but not kept (larger than MaxEntryBody)
	ClockJumps uint64 // times everything was dropped after a wall-clock jump

	Entries int   // paths held (with an answer, being fetched, or backing off)
	Bytes   int64 // bytes accounted for them
}

type counters struct {
	hits, misses, coalesced, stale, bypass                         atomic.Uint64
	upstream, refreshes, failures, evictions, oversize, clockJumps atomic.Uint64
}

// Stats returns a snapshot of the counters.
func (c *Cache) Stats() Stats {
	c.mu.RLock()
	entries, bytes := len(c.slots), c.bytes
	c.mu.RUnlock()
	return Stats{
		Hits:       c.n.hits.Load(),
		Misses:     c.n.misses.Load(),
		Coalesced:  c.n.coalesced.Load(),
		Stale:      c.n.stale.Load(),
		Bypass:     c.n.bypass.Load(),
		Upstream:   c.n.upstream.Load(),
		Refreshes:  c.n.refreshes.Load(),
		Failures:   c.n.failures.Load(),
		Evictions:  c.n.evictions.Load(),
		Oversize:   c.n.oversize.Load(),
		ClockJumps: c.n.clockJumps.Load(),
		Entries:    entries,
		Bytes:      bytes,
	}
}
