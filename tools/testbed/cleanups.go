package testbed

import "sync"

// Cleanups is a stack of cleanup functions, safe for concurrent use: a
// TB's Cleanup pushes, and Run pops and runs them, last added first, each
// once, also those added while it runs.
type Cleanups struct {
	mu  sync.Mutex
	fns []func()
}

// Add pushes f.
func (c *Cleanups) Add(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fns = append(c.fns, f)
}

// Run pops every cleanup, the last added first, and hands each to run
// (which calls it, perhaps guarded), until none is left.
func (c *Cleanups) Run(run func(f func())) {
	for {
		c.mu.Lock()
		n := len(c.fns)
		if n == 0 {
			c.mu.Unlock()
			return
		}
		f := c.fns[n-1]
		c.fns = c.fns[:n-1]
		c.mu.Unlock()
		run(f)
	}
}
