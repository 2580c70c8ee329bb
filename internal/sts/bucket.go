package sts

import (
	"context"
	"sync"
	"time"
)

// bucket is a token bucket: burst calls at once, then rate a second. A
// waiter reserves its token at once (the count may go below zero) and
// sleeps until it is due, so waiters are served in order; one that gives
// up hands its token back.
type bucket struct {
	mu     sync.Mutex
	rate   float64 // tokens a second
	burst  float64
	tokens float64
	last   time.Time
}

func newBucket(rate float64, burst int) *bucket {
	return &bucket{rate: rate, burst: float64(burst), tokens: float64(burst), last: time.Now()}
}

// wait takes a token, sleeping until one is due or ctx ends.
func (b *bucket) wait(ctx context.Context) error {
	b.mu.Lock()
	now := time.Now()
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	b.tokens--
	due := time.Duration(-b.tokens / b.rate * float64(time.Second))
	b.mu.Unlock()
	if due <= 0 {
		return nil
	}
	t := time.NewTimer(due)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		b.mu.Lock()
		b.tokens++
		b.mu.Unlock()
		return ctx.Err()
	}
}
