package workload

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Backoff between attempts to follow a runtime's events.
const (
	watchRetryMin = time.Second
	watchRetryMax = 10 * time.Second
)

// Run follows every runtime's events until ctx ends: an event about a
// container drops its answer, and a stream that opens or breaks drops
// every answer of that runtime (events may have been missed), which are
// then kept for the TTL only until the stream is back.
func (c *Cache) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, f := range c.runtimes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.follow(ctx, f)
		}()
	}
	wg.Wait()
}

// follow keeps one runtime's event stream open, with backoff.
func (c *Cache) follow(ctx context.Context, f *follower) {
	name := f.rt.Name()
	retry := watchRetryMin
	for ctx.Err() == nil {
		start := time.Now()
		err := f.rt.Watch(ctx,
			func() {
				c.forget(name)
				f.following.Store(true)
				c.o.Log.Info("following runtime events", "runtime", name)
			},
			c.changed)
		lost := f.following.Swap(false)
		c.forget(name)
		if errors.Is(err, ErrNoEvents) {
			c.o.Log.Info("runtime has no events: its answers are kept for a short time", "runtime", name, "ttl", c.o.TTL)
			return
		}
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > watchRetryMax {
			retry = watchRetryMin
		}
		if lost { // a runtime that is not there at all is retried quietly
			c.o.Log.Warn("runtime events stopped: its answers are asked again", "runtime", name, "err", err, "retry_in", retry)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(retry):
		}
		retry = min(2*retry, watchRetryMax)
	}
}

// changed is the event stream's report about container id.
func (c *Cache) changed(id string) {
	c.Invalidate(id)
	if c.o.Changed != nil {
		c.o.Changed(id)
	}
}
