package workload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Bounds and lifetimes of the Cache; Options may lower them (tests do).
const (
	// DefaultWait is the longest a request waits for a runtime's answer.
	// A lookup that takes longer goes on in the background, and the next
	// connection of that container gets its answer.
	DefaultWait = 100 * time.Millisecond
	// DefaultTimeout bounds one background lookup.
	DefaultTimeout = 2 * time.Second
	// DefaultTTL keeps an answer of a runtime whose events are not being
	// followed (CRI-O, or a runtime whose event stream broke).
	DefaultTTL = 10 * time.Second
	// DefaultMaxAge keeps an answer of a runtime whose events are followed:
	// events invalidate it sooner, the age bounds what a lost event costs.
	DefaultMaxAge = 10 * time.Minute
	// DefaultMissTTL keeps "not known" and "unreachable": a stopped runtime
	// is not asked again by every connection, and a restarted one is
	// noticed within it.
	DefaultMissTTL = time.Second
	// DefaultMaxEntries bounds the cache.
	DefaultMaxEntries = 4096
)

// Options configure a Cache.
type Options struct {
	Runtimes   []Runtime // in no particular order: Owners orders them per container
	Wait       time.Duration
	Timeout    time.Duration
	TTL        time.Duration
	MaxAge     time.Duration
	MissTTL    time.Duration
	MaxEntries int
	Log        *slog.Logger
	// Changed, when set, is told the id of every container a runtime's
	// events report created, changed or gone, after its answer was
	// dropped: the daemon fetches a new pod's role credentials ahead
	// (and forgets a gone one's) from there. It runs on the event
	// stream's goroutine and must not block.
	Changed func(id string)
}

// Result is what a caller's connection gets: the workload, or why not.
type Result struct {
	Workload *Workload // nil: no runtime fields; the caller matches no containers or pods selector
	Reason   string    // why Workload is nil ("" when it is not)
}

// Cache looks containers up in their runtime, once per container id, and
// keeps the answers until the runtime's events say the container changed
// or went away, or for a short TTL where there are no events. It is safe
// for concurrent use.
type Cache struct {
	o        Options
	runtimes map[string]*follower
	mu       sync.Mutex
	entries  map[string]*entry
	lookups  atomic.Uint64 // runtime lookups started (cache misses)
}

// follower is one runtime and whether its events are being followed.
type follower struct {
	rt        Runtime
	following atomic.Bool
	epoch     atomic.Uint64 // counts forget: the stream opened or broke
}

// entry is one container's answer, or the lookup that will give it.
type entry struct {
	done    chan struct{} // closed when res and owner are set
	res     Result
	owner   string    // the runtime that answered, "" if none did
	expires time.Time // set with res
	added   time.Time
}

// New returns a Cache over the runtimes in o. Call Run to follow their events.
func New(o Options) *Cache {
	o.Wait = orDefault(o.Wait, DefaultWait)
	o.Timeout = orDefault(o.Timeout, DefaultTimeout)
	o.TTL = orDefault(o.TTL, DefaultTTL)
	o.MaxAge = orDefault(o.MaxAge, DefaultMaxAge)
	o.MissTTL = orDefault(o.MissTTL, DefaultMissTTL)
	if o.MaxEntries <= 0 {
		o.MaxEntries = DefaultMaxEntries
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	c := &Cache{o: o, runtimes: map[string]*follower{}, entries: map[string]*entry{}}
	for _, rt := range o.Runtimes {
		c.runtimes[rt.Name()] = &follower{rt: rt}
	}
	return c
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Lookups is the number of runtime lookups started: cache misses.
func (c *Cache) Lookups() uint64 { return c.lookups.Load() }

// Find returns the workload of container id (from the caller's cgroup
// path cgroup), waiting for its runtime at most the Wait bound. It never
// fails: without an answer in time, or from no runtime, the Result says
// why.
func (c *Cache) Find(ctx context.Context, id, cgroup string) Result {
	if id == "" {
		return Result{Reason: "the caller's cgroup names no container"}
	}
	e := c.entry(id, cgroup)
	select {
	case <-e.done: // known: no timer on the path of nearly every connection
		return e.res
	default:
	}
	t := time.NewTimer(c.o.Wait)
	defer t.Stop()
	return c.await(ctx, e, t.C, id)
}

// Lookup is Find without the Wait bound: it waits for the runtime's
// answer as long as ctx allows (the lookup itself is bounded by Timeout).
// For work off the request path, such as an event's.
func (c *Cache) Lookup(ctx context.Context, id, cgroup string) Result {
	if id == "" {
		return Result{Reason: "no container id"}
	}
	return c.await(ctx, c.entry(id, cgroup), nil, id)
}

// await waits for e's answer, until bound fires (nil: no bound) or ctx
// ends.
func (c *Cache) await(ctx context.Context, e *entry, bound <-chan time.Time, id string) Result {
	select {
	case <-e.done:
		return e.res
	case <-bound:
		return Result{Reason: fmt.Sprintf("no runtime answered about container %s within %s; the lookup goes on for the next connection", short(id), c.o.Wait)}
	case <-ctx.Done():
		return Result{Reason: "gave up waiting for the runtime: " + ctx.Err().Error()}
	}
}

// entry returns the fresh entry of id, starting its lookup if there is none.
func (c *Cache) entry(id, cgroup string) *entry {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[id]; e != nil && !e.expired(now) {
		return e
	}
	c.evict(now)
	e := &entry{done: make(chan struct{}), added: now}
	c.entries[id] = e
	c.lookups.Add(1)
	go c.fill(e, id, cgroup)
	return e
}

// expired reports whether a finished entry is past its lifetime; c.mu is held.
func (e *entry) expired(now time.Time) bool {
	select {
	case <-e.done:
		return !now.Before(e.expires)
	default:
		return false // in flight
	}
}

// evict makes room for one entry: expired entries go, else the oldest
// finished one; c.mu is held.
func (c *Cache) evict(now time.Time) {
	if len(c.entries) < c.o.MaxEntries {
		return
	}
	var oldestID string
	var oldest *entry
	for id, e := range c.entries {
		if e.expired(now) {
			delete(c.entries, id)
			continue
		}
		if oldest == nil || e.added.Before(oldest.added) {
			oldestID, oldest = id, e
		}
	}
	if len(c.entries) >= c.o.MaxEntries && oldest != nil {
		delete(c.entries, oldestID)
	}
}

// fill asks the runtimes that may own the container, in order, until one
// knows it, and completes e.
func (c *Cache) fill(e *entry, id, cgroup string) {
	ctx, cancel := context.WithTimeout(context.Background(), c.o.Timeout)
	defer cancel()
	var why []string
	for _, name := range Owners(cgroup, id) {
		f := c.runtimes[name]
		if f == nil {
			continue
		}
		epoch, following := f.epoch.Load(), f.following.Load()
		w, err := f.rt.Lookup(ctx, id, cgroup)
		if err == nil {
			// An answer is kept until an event only when the stream was
			// open for the whole lookup.
			c.finish(e, Result{Workload: w}, name, c.keep(following && f.epoch.Load() == epoch))
			return
		}
		why = append(why, describe(name, id, err))
		if !errors.Is(err, ErrNotFound) {
			c.o.Log.Debug("runtime lookup failed", "runtime", name, "container", id, "err", err)
		}
	}
	if len(why) == 0 {
		why = append(why, "no runtime that may own it is configured (runtimes: "+strings.Join(Owners(cgroup, id), ", ")+")")
	}
	c.finish(e, Result{Reason: strings.Join(why, "; ")}, "", c.o.MissTTL)
}

// keep is how long an answer stays: until an event (bounded by MaxAge)
// when the runtime's events were followed when the lookup began, else TTL.
func (c *Cache) keep(following bool) time.Duration {
	if following {
		return c.o.MaxAge
	}
	return c.o.TTL
}

func (c *Cache) finish(e *entry, res Result, owner string, keep time.Duration) {
	c.mu.Lock()
	e.res, e.owner, e.expires = res, owner, time.Now().Add(keep)
	close(e.done)
	c.mu.Unlock()
}

// describe says why runtime name gave no answer about id.
func describe(name, id string, err error) string {
	if errors.Is(err, ErrNotFound) {
		return name + " does not know container " + short(id)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return name + " did not answer in time: " + err.Error()
	}
	return name + " unreachable: " + err.Error()
}

// short is the 12-character form of a container id, as runtimes print it.
func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// Invalidate forgets what is known about container id: its runtime
// reported it changed or gone.
func (c *Cache) Invalidate(id string) {
	c.mu.Lock()
	delete(c.entries, id)
	c.mu.Unlock()
}

// forget drops every answer runtime name gave: its event stream opened or
// broke, so events may have been missed.
func (c *Cache) forget(name string) {
	if f := c.runtimes[name]; f != nil {
		f.epoch.Add(1)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, e := range c.entries {
		if e.owner == name {
			delete(c.entries, id)
		}
	}
}
