package workload

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// fakeRuntime is a runtime that keeps its containers in a map, answers
// after a delay, and sends events on demand.
type fakeRuntime struct {
	name    string
	mu      sync.Mutex
	known   map[string]*Workload
	down    error         // non-nil: every call fails with it
	delay   time.Duration // before each answer
	events  chan string   // Watch forwards these; nil: ErrNoEvents
	drop    chan struct{} // a send breaks the event stream
	ack     chan struct{} // Watch sends after each forwarded event
	asked   atomic.Int32
	watches atomic.Int32
}

func newFake(name string, events bool) *fakeRuntime {
	f := &fakeRuntime{name: name, known: map[string]*Workload{}, drop: make(chan struct{}), ack: make(chan struct{})}
	if events {
		f.events = make(chan string)
	}
	return f
}

func (f *fakeRuntime) Name() string { return f.name }

func (f *fakeRuntime) set(id string, w *Workload) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if w == nil {
		delete(f.known, id)
		return
	}
	w.ID, w.Runtime = id, f.name
	f.known[id] = w
}

// emit reports container id changed and returns once the cache heard it.
func (f *fakeRuntime) emit(id string) {
	f.events <- id
	<-f.ack
}

func (f *fakeRuntime) setDown(err error) {
	f.mu.Lock()
	f.down = err
	f.mu.Unlock()
}

func (f *fakeRuntime) Lookup(ctx context.Context, id, _ string) (*Workload, error) {
	f.asked.Add(1)
	f.mu.Lock()
	delay, down, w := f.delay, f.down, f.known[id]
	f.mu.Unlock()
	select {
	case <-time.After(delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	switch {
	case down != nil:
		return nil, down
	case w == nil:
		return nil, ErrNotFound
	}
	return w.Clone(), nil
}

func (f *fakeRuntime) Watch(ctx context.Context, connected func(), changed func(string)) error {
	if f.events == nil {
		return ErrNoEvents
	}
	f.mu.Lock()
	down := f.down
	f.mu.Unlock()
	if down != nil {
		return down
	}
	f.watches.Add(1)
	connected()
	for {
		select {
		case id := <-f.events:
			changed(id)
			f.ack <- struct{}{}
		case <-f.drop:
			return context.Canceled
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
