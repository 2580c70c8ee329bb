package cache

import (
	"time"
)

// Clock reads two clocks at once: the wall clock, in which credentials'
// Expiration is written, and the monotonic clock, on which every lifetime
// in the cache is measured. Resuming from hibernation (or a stepped clock)
// moves the first and not the second; the cache then drops everything it
// holds. It is an interface only for that: a test moves the wall reading
// alone, which no other clock does (a synctest bubble moves both). Timers
// are the time package's.
type Clock interface {
	// Now returns the wall clock and the monotonic clock's reading.
	Now() (wall time.Time, mono time.Duration)
}

// JumpThreshold is how far the wall clock may move against the monotonic
// clock before the cache drops everything. Slewing (NTP) never comes near
// it; a resume from hibernation or a stepped clock does.
const JumpThreshold = 2 * time.Second

// SystemClock is the clock of the machine.
func SystemClock() Clock { return systemClock{origin: time.Now()} }

type systemClock struct{ origin time.Time }

// Now reads time.Now once for both. In a synctest bubble time.Now has no
// monotonic reading, and the two move together on the bubble's clock.
func (c systemClock) Now() (time.Time, time.Duration) {
	t := time.Now()
	return t, t.Sub(c.origin) // both carry the monotonic reading: Sub uses it
}

// drift is how far the wall clock is ahead of the monotonic one, in
// nanoseconds; it only changes when the wall clock jumps.
func drift(wall time.Time, mono time.Duration) int64 {
	return wall.UnixNano() - int64(mono)
}

// checkClock drops everything when the wall clock has jumped against the
// monotonic clock since the last check; it costs an atomic load otherwise.
func (c *Cache) checkClock(wall time.Time, mono time.Duration) {
	d := drift(wall, mono) - c.drift.Load()
	if d > int64(JumpThreshold) || d < -int64(JumpThreshold) {
		c.clockJumped(wall, mono)
	}
}

func (c *Cache) clockJumped(wall time.Time, mono time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := drift(wall, mono)
	jump := time.Duration(now - c.drift.Load())
	if jump <= JumpThreshold && jump >= -JumpThreshold {
		return // another caller saw it first
	}
	c.drift.Store(now)
	dropped := len(c.slots)
	c.dropAll()
	c.n.clockJumps.Add(1)
	c.log.Warn("wall clock jumped against the monotonic clock (resume from hibernation?): dropped the metadata cache",
		"jump", jump, "entries", dropped)
}
