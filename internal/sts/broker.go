// Package sts is imdsguard's STS broker: it turns a workload's role
// session (package roles) into temporary credentials with AssumeRole,
// signed with the node's own credentials, and keeps them.
//
// What the Broker does, per role session (roles.Session.Key: role ARN,
// session name, external id, tags):
//
//  1. credentials with at least Fresh left (15 min, or a quarter of the
//     session for short sessions) are served from memory;
//  2. otherwise the caller joins the session's one AssumeRole in flight,
//     or starts it: however many callers ask at once, STS is asked once;
//     a caller waits at most Wait (2 s) for it, then gets ErrPending;
//  3. every AssumeRole first takes a token from one bucket for the whole
//     host (roles.sts_rate, sts_burst): pod churn never makes an STS storm;
//  4. credentials are refreshed in the background around half their life,
//     with jitter, while the session is in use (asked for, or prefetched,
//     within the last two session lifetimes); an idle session is dropped;
//  5. on throttling, a 5xx or no answer, the held credentials are served
//     while they are still valid (at least a minute left), and the session
//     backs off with jitter before STS is asked again; an AccessDenied is
//     remembered for DeniedFor (30 s) and nothing is served meanwhile;
//  6. Prefetch starts the fetch of a session a new workload will ask for;
//     Forget drops a session whose workload is gone.
//
// The broker never falls back to anything: a caller gets its role's
// credentials or an error, never the node's.
package sts

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/imdsguard/imdsguard/internal/roles"
)

// Assumer calls STS AssumeRole for a session; Client is the real one.
type Assumer interface {
	AssumeRole(ctx context.Context, s roles.Session, duration time.Duration) (roles.Credentials, error)
}

// Defaults of the Broker's bounds.
const (
	DefaultWait        = 2 * time.Second
	DefaultCallTimeout = 10 * time.Second
	// MinFresh is how long credentials must still be valid to be served
	// normally: SDKs refresh container credentials 5 to 15 minutes before
	// they expire, and should not come back at once.
	MinFresh = 15 * time.Minute
	// MinStale is the least validity left of credentials served because
	// STS failed.
	MinStale = time.Minute
	// DeniedFor is how long an AccessDenied (any 4xx) is remembered.
	DeniedFor  = 30 * time.Second
	backoffMin = time.Second
	backoffMax = time.Minute
)

// Options configure a Broker.
type Options struct {
	Assumer     Assumer
	Duration    time.Duration // asked of STS; default roles.DefaultSessionDuration
	Rate        float64       // AssumeRole calls a second; default roles.DefaultSTSRate
	Burst       int           // default roles.DefaultSTSBurst
	Wait        time.Duration // longest a Get waits for a fetch; default DefaultWait
	CallTimeout time.Duration // bounds one AssumeRole, bucket wait included; default DefaultCallTimeout
	Log         *slog.Logger
}

// Outcome says how Get answered.
type Outcome uint8

const (
	Hit       Outcome = iota // fresh credentials from memory
	Miss                     // this caller started the fetch and got its answer
	Coalesced                // waited for a fetch another caller (or a refresh) started
	Stale                    // held credentials, because STS failed or was slow
	Refused                  // an error: nothing to serve
)

var outcomeNames = [...]string{Hit: "hit", Miss: "miss", Coalesced: "coalesced", Stale: "stale", Refused: "refused"}

func (o Outcome) String() string { return outcomeNames[o] }

// Broker fetches and keeps role credentials. It is safe for concurrent use.
type Broker struct {
	o      Options
	fresh  time.Duration
	idle   time.Duration
	bucket *bucket
	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	entries map[string]*entry
	closed  bool
	n       counters
}

// entry is one role session.
type entry struct {
	key       string
	sess      roles.Session
	creds     *roles.Credentials // the last credentials STS gave; nil: none yet
	flight    chan struct{}      // non-nil while an AssumeRole runs; closed when it ends
	err       error              // the last AssumeRole's error; nil after a success
	failures  int                // consecutive failures
	retryAt   time.Time          // no AssumeRole before this, after a failure
	refreshAt time.Time          // when the held credentials are due for a refresh; zero: none held
	timer     *time.Timer        // the next background refresh or retry
	used      time.Time          // last Get or Prefetch
}

// New returns a Broker. Close stops its background refreshes.
func New(o Options) *Broker {
	if o.Duration <= 0 {
		o.Duration = roles.DefaultSessionDuration
	}
	if o.Rate <= 0 {
		o.Rate = roles.DefaultSTSRate
	}
	if o.Burst <= 0 {
		o.Burst = roles.DefaultSTSBurst
	}
	if o.Wait <= 0 {
		o.Wait = DefaultWait
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = DefaultCallTimeout
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	b := &Broker{o: o, fresh: min(MinFresh, o.Duration/4), idle: 2 * o.Duration, bucket: newBucket(o.Rate, o.Burst), entries: map[string]*entry{}}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	return b
}

// Fresh is how much validity credentials need to be served from memory.
func (b *Broker) Fresh() time.Duration { return b.fresh }

// Get returns the credentials of s: from memory when fresh, else from the
// fetch in flight or a new one, waiting at most the Wait bound (and ctx).
// The error is an *Error (STS failed or refused), or ErrPending.
func (b *Broker) Get(ctx context.Context, s roles.Session) (roles.Credentials, Outcome, error) {
	now := time.Now()
	b.mu.Lock()
	e := b.entry(s, now)
	if c := e.creds; c != nil && c.Expiration.Sub(now) >= b.fresh {
		b.mu.Unlock()
		b.n.add(Hit)
		return *c, Hit, nil
	}
	out := Coalesced
	if e.flight == nil {
		if now.Before(e.retryAt) || b.closed { // backing off after a failure
			c, o, err := b.afterFailure(e, now)
			b.mu.Unlock()
			b.n.add(o)
			return c, o, err
		}
		b.start(e)
		out = Miss
	}
	flight := e.flight
	b.mu.Unlock()

	t := time.NewTimer(b.o.Wait)
	defer t.Stop()
	select {
	case <-flight:
	case <-t.C:
	case <-ctx.Done():
	}
	now = time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if c := e.creds; c != nil && c.Expiration.Sub(now) >= b.fresh {
		b.n.add(out)
		return *c, out, nil
	}
	c, o, err := b.afterFailure(e, now)
	b.n.add(o)
	return c, o, err
}

// afterFailure is the answer when no fresh credentials are held: the held
// ones while valid, unless STS denied the session; else the error, or
// ErrPending while the fetch still runs. b.mu is held.
func (b *Broker) afterFailure(e *entry, now time.Time) (roles.Credentials, Outcome, error) {
	err := e.err
	if err == nil || e.flight != nil {
		err = ErrPending
	}
	if c := e.creds; c != nil && c.Expiration.Sub(now) >= MinStale && KindOf(e.err) != Denied {
		return *c, Stale, nil
	}
	return roles.Credentials{}, Refused, err
}

// entry returns the entry of s, made if there is none; b.mu is held.
func (b *Broker) entry(s roles.Session, now time.Time) *entry {
	key := s.Key()
	e := b.entries[key]
	if e == nil {
		e = &entry{key: key, sess: s}
		b.entries[key] = e
	}
	e.used = now
	return e
}

// Prefetch starts fetching the credentials of s unless they are held or
// being fetched: a workload that will ask for them has appeared.
func (b *Broker) Prefetch(s roles.Session) {
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.entry(s, now)
	if e.creds == nil && e.flight == nil && !now.Before(e.retryAt) && !b.closed {
		b.start(e)
	}
}

// Forget drops s: its workload is gone. A fetch in flight finishes and is
// then dropped.
func (b *Broker) Forget(s roles.Session) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e := b.entries[s.Key()]; e != nil {
		b.drop(e)
	}
}

// drop removes e; b.mu is held.
func (b *Broker) drop(e *entry) {
	if e.timer != nil {
		e.timer.Stop()
	}
	if b.entries[e.key] == e {
		delete(b.entries, e.key)
	}
}

// start runs one AssumeRole for e in the background; b.mu is held.
func (b *Broker) start(e *entry) {
	e.flight = make(chan struct{})
	b.wg.Add(1)
	go b.fetch(e)
}

func (b *Broker) fetch(e *entry) {
	defer b.wg.Done()
	ctx, cancel := context.WithTimeout(b.ctx, b.o.CallTimeout)
	defer cancel()
	var creds roles.Credentials
	err := b.bucket.wait(ctx)
	if err != nil {
		err = &Error{Kind: Failed, Err: err}
	} else {
		creds, err = b.o.Assumer.AssumeRole(ctx, e.sess, b.o.Duration)
		b.n.call(KindOf(err))
	}
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if err == nil {
		e.creds, e.err, e.failures, e.retryAt = &creds, nil, 0, time.Time{}
		e.refreshAt = now.Add(jitter(creds.Expiration.Sub(now)/2, 10))
		b.schedule(e, e.refreshAt.Sub(now))
	} else {
		e.err = err
		e.failures++
		wait := DeniedFor
		if KindOf(err) != Denied {
			wait = jitter(min(backoffMax, backoffMin<<min(e.failures-1, 10)), 20)
		}
		e.retryAt = now.Add(wait)
		if e.creds != nil { // retry in the background while something is held
			b.schedule(e, wait)
		} else { // dropped once idle (refresh), retried while asked for
			b.schedule(e, max(wait, b.idle))
		}
		b.o.Log.Warn("sts AssumeRole failed", "role", e.sess.RoleARN, "session", e.sess.Name, "err", err, "failures", e.failures, "retry_in", wait)
	}
	close(e.flight)
	e.flight = nil
}

// schedule runs e's next refresh after d, unless e was dropped; b.mu is held.
func (b *Broker) schedule(e *entry, d time.Duration) {
	if b.closed || b.entries[e.key] != e {
		return
	}
	if e.timer != nil {
		e.timer.Stop()
	}
	e.timer = time.AfterFunc(d, func() { b.refresh(e) })
}

// refresh is e's background refresh: a new AssumeRole while e is in use,
// else e goes.
func (b *Broker) refresh(e *entry) {
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || b.entries[e.key] != e || e.flight != nil {
		return
	}
	if now.Sub(e.used) > b.idle {
		b.drop(e)
		return
	}
	b.n.refreshes.Add(1)
	b.start(e)
}

// jitter spreads d by up to pct percent either way.
func jitter(d time.Duration, pct int64) time.Duration {
	span := int64(d) * pct / 100
	if span <= 0 {
		return d
	}
	return d + time.Duration(rand.Int64N(2*span+1)-span)
}

// Close stops background refreshes and waits for the fetches in flight.
func (b *Broker) Close() {
	b.mu.Lock()
	b.closed = true
	for _, e := range b.entries {
		if e.timer != nil {
			e.timer.Stop()
		}
	}
	b.mu.Unlock()
	b.cancel()
	b.wg.Wait()
}
