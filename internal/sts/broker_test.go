package sts

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/imdsguard/imdsguard/internal/roles"
)

// fakeSTS is an Assumer whose answers the test sets: it counts calls,
// takes delay to answer, and fails with err while it is set.
type fakeSTS struct {
	mu       sync.Mutex
	calls    atomic.Int64
	delay    time.Duration
	err      error
	duration time.Duration // what the credentials last; default the asked duration
	serial   atomic.Int64
}

func (f *fakeSTS) AssumeRole(ctx context.Context, s roles.Session, d time.Duration) (roles.Credentials, error) {
	f.calls.Add(1)
	f.mu.Lock()
	delay, err, life := f.delay, f.err, f.duration
	f.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return roles.Credentials{}, &Error{Kind: Failed, Err: ctx.Err()}
		}
	}
	if err != nil {
		return roles.Credentials{}, err
	}
	if life == 0 {
		life = d
	}
	n := f.serial.Add(1)
	return roles.Credentials{AccessKeyID: "ASIA" + s.Name + "-" + string(rune('0'+n%10)), SecretAccessKey: "s", SessionToken: "t",
		Expiration: time.Now().Add(life), LastUpdated: time.Now()}, nil
}

func (f *fakeSTS) set(err error, delay time.Duration) {
	f.mu.Lock()
	f.err, f.delay = err, delay
	f.mu.Unlock()
}

var (
	sessA     = roles.Session{RoleARN: "arn:aws:iam::123456789012:role/a", RoleName: "a", Name: "payments.api-1"}
	sessB     = roles.Session{RoleARN: "arn:aws:iam::123456789012:role/a", RoleName: "a", Name: "payments.api-2"}
	throttled = &Error{Kind: Throttled, Code: "Throttling", Err: errors.New("Rate exceeded")}
	fiveXX    = &Error{Kind: ServerError, Code: "InternalFailure", Err: errors.New("500")}
	denied    = &Error{Kind: Denied, Code: "AccessDenied", Err: errors.New("not authorized to perform sts:AssumeRole")}
)

func newTestBroker(f *fakeSTS) *Broker {
	return New(Options{Assumer: f, Duration: time.Hour, Rate: 1000, Burst: 1000})
}

// 200 callers of one session at once: one AssumeRole, and all get its
// credentials; a second session is a second call.
func TestCoalesce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeSTS{delay: 50 * time.Millisecond}
		b := newTestBroker(f)
		defer b.Close()
		var wg sync.WaitGroup
		var miss, coalesced atomic.Int64
		keys := make([]string, 200)
		for i := range 200 {
			wg.Go(func() {
				c, o, err := b.Get(context.Background(), sessA)
				if err != nil {
					t.Errorf("Get: %v", err)
				}
				keys[i] = c.AccessKeyID
				switch o {
				case Miss:
					miss.Add(1)
				case Coalesced:
					coalesced.Add(1)
				}
			})
		}
		wg.Wait()
		if n := f.calls.Load(); n != 1 {
			t.Fatalf("%d STS calls, want 1", n)
		}
		if miss.Load() != 1 || coalesced.Load() != 199 {
			t.Errorf("miss %d, coalesced %d", miss.Load(), coalesced.Load())
		}
		for _, k := range keys {
			if k != keys[0] || k == "" {
				t.Fatalf("callers got different credentials: %q, %q", k, keys[0])
			}
		}
		if _, o, _ := b.Get(context.Background(), sessA); o != Hit {
			t.Errorf("then: %s, want hit", o)
		}
		b.Get(context.Background(), sessB)
		if n := f.calls.Load(); n != 2 {
			t.Errorf("%d STS calls after a second session, want 2", n)
		}
		if s := b.Stats(); s.Calls[OK] != 2 || s.Sessions != 2 || s.Gets[Hit] != 1 {
			t.Errorf("stats %+v", s)
		}
	})
}

// Credentials are served from memory only with at least 15 minutes left:
// STS giving 20-minute credentials means a fetch every time they drop
// under it.
func TestFreshRule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeSTS{duration: 20 * time.Minute}
		b := newTestBroker(f)
		defer b.Close()
		c1, _, _ := b.Get(context.Background(), sessA)
		time.Sleep(4 * time.Minute) // 16 min left: fresh
		if c, o, _ := b.Get(context.Background(), sessA); o != Hit || c != c1 {
			t.Errorf("16 min left: %s", o)
		}
		time.Sleep(2 * time.Minute) // 14 min left (and the half-life refresh is due at ~10 min)
		c, o, err := b.Get(context.Background(), sessA)
		if err != nil || c.Expiration.Sub(time.Now()) < 15*time.Minute {
			t.Errorf("14 min left: served %s with %s left (%v)", o, c.Expiration.Sub(time.Now()), err)
		}
		if b.Fresh() != 15*time.Minute {
			t.Errorf("Fresh %s", b.Fresh())
		}
		short := New(Options{Assumer: f, Duration: 15 * time.Minute})
		defer short.Close()
		if short.Fresh() != 15*time.Minute/4 {
			t.Errorf("Fresh of 15 min sessions %s, want a quarter", short.Fresh())
		}
	})
}

// The background refresh comes around half-life, with jitter, while the
// session is used; an idle session is dropped instead.
func TestRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeSTS{}
		b := newTestBroker(f)
		defer b.Close()
		c1, _, _ := b.Get(context.Background(), sessA)
		time.Sleep(26 * time.Minute) // before 30 min - 10 %
		if f.calls.Load() != 1 {
			t.Fatalf("refreshed before half-life: %d calls", f.calls.Load())
		}
		time.Sleep(8 * time.Minute) // past 30 min + 10 %
		synctest.Wait()
		if f.calls.Load() != 2 {
			t.Fatalf("no refresh around half-life: %d calls", f.calls.Load())
		}
		c2, o, _ := b.Get(context.Background(), sessA)
		if o != Hit || c2.AccessKeyID == c1.AccessKeyID || c2.Expiration.Sub(time.Now()) < 50*time.Minute {
			t.Errorf("after the refresh: %s, %+v", o, c2)
		}
		if s := b.Stats(); s.Refreshes != 1 || s.RefreshLag != 0 {
			t.Errorf("stats %+v", s)
		}
		// Nobody asks any more: refreshes go on for two session lifetimes, then the session goes.
		time.Sleep(3 * time.Hour)
		synctest.Wait()
		if s := b.Stats(); s.Sessions != 0 {
			t.Errorf("idle session kept: %+v", s)
		}
		if n := f.calls.Load(); n > 7 {
			t.Errorf("%d calls for an idle session", n)
		}
	})
}

// Throttling and 5xx keep the held credentials served while they are
// valid; the refresh is retried with backoff and then succeeds.
func TestFailuresKeepCredentials(t *testing.T) {
	for _, fail := range []error{throttled, fiveXX, &Error{Kind: Failed, Err: errors.New("connection refused")}} {
		t.Run(KindOf(fail).String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := &fakeSTS{}
				b := newTestBroker(f)
				defer b.Close()
				c1, _, _ := b.Get(context.Background(), sessA)
				f.set(fail, 0)
				time.Sleep(50 * time.Minute) // refreshes failed since ~30 min; 10 min left
				synctest.Wait()
				c, o, err := b.Get(context.Background(), sessA)
				if err != nil || o != Stale || c != c1 {
					t.Fatalf("STS failing, 10 min left: %s, %v", o, err)
				}
				if s := b.Stats(); s.RefreshLag < 15*time.Minute || s.Calls[KindOf(fail)] < 3 {
					t.Errorf("stats %+v", s)
				}
				time.Sleep(10 * time.Minute) // expired
				if _, o, err := b.Get(context.Background(), sessA); err == nil || KindOf(err) != KindOf(fail) || o != Refused {
					t.Errorf("expired, STS failing: %s, %v", o, err)
				}
				f.set(nil, 0)
				time.Sleep(2 * time.Minute) // a retry is due
				synctest.Wait()
				if c, _, err := b.Get(context.Background(), sessA); err != nil || c == c1 {
					t.Errorf("STS back: %v", err)
				}
			})
		})
	}
}

// An AccessDenied is remembered for 30 s: callers get it without an STS
// call, and held credentials are not served over it.
func TestDeniedRemembered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeSTS{err: denied}
		b := newTestBroker(f)
		defer b.Close()
		for range 10 {
			if _, o, err := b.Get(context.Background(), sessA); KindOf(err) != Denied || o != Refused {
				t.Fatalf("Get = %s, %v", o, err)
			}
		}
		if n := f.calls.Load(); n != 1 {
			t.Fatalf("%d calls in the 30 s after a denial, want 1", n)
		}
		time.Sleep(31 * time.Second)
		f.set(nil, 0)
		if _, _, err := b.Get(context.Background(), sessA); err != nil || f.calls.Load() != 2 {
			t.Fatalf("after 30 s: %v, %d calls", err, f.calls.Load())
		}
		// Denied on refresh: the held credentials are not served any more once stale.
		f.set(denied, 0)
		time.Sleep(50 * time.Minute)
		synctest.Wait()
		if _, o, err := b.Get(context.Background(), sessA); KindOf(err) != Denied {
			t.Errorf("denied refresh, 10 min left: %s, %v", o, err)
		}
	})
}

// The first credentials of a session: a caller waits at most 2 s for the
// fetch, then gets ErrPending; the fetch goes on, and the next caller gets
// its answer.
func TestWaitBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeSTS{delay: 5 * time.Second}
		b := newTestBroker(f)
		defer b.Close()
		start := time.Now()
		_, o, err := b.Get(context.Background(), sessA)
		if !errors.Is(err, ErrPending) || o != Refused || time.Since(start) != DefaultWait {
			t.Fatalf("slow STS: %s, %v after %s", o, err, time.Since(start))
		}
		time.Sleep(4 * time.Second)
		if _, o, err := b.Get(context.Background(), sessA); err != nil || o != Hit || f.calls.Load() != 1 {
			t.Errorf("once fetched: %s, %v, %d calls", o, err, f.calls.Load())
		}
		// A caller's context ends the wait sooner.
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start = time.Now()
		if _, _, err := b.Get(ctx, sessB); !errors.Is(err, ErrPending) || time.Since(start) != 100*time.Millisecond {
			t.Errorf("caller's deadline: %v after %s", err, time.Since(start))
		}
	})
}

// The token bucket bounds AssumeRole calls across sessions.
func TestBucket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeSTS{}
		b := New(Options{Assumer: f, Duration: time.Hour, Rate: 2, Burst: 5})
		defer b.Close()
		for i := range 20 {
			b.Prefetch(roles.Session{RoleARN: sessA.RoleARN, RoleName: "a", Name: "pod-" + string(rune('a'+i))})
		}
		synctest.Wait()
		if n := f.calls.Load(); n != 5 {
			t.Fatalf("%d calls at once, want the burst, 5", n)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if n := f.calls.Load(); n != 7 {
			t.Fatalf("%d calls after 1 s, want 7", n)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if n := f.calls.Load(); n != 20 {
			t.Fatalf("%d calls after 11 s, want 20", n)
		}
	})
}

// Prefetch fetches ahead; Forget drops the session and its refreshes.
func TestPrefetchForget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeSTS{}
		b := newTestBroker(f)
		defer b.Close()
		b.Prefetch(sessA)
		b.Prefetch(sessA)
		synctest.Wait()
		if _, o, err := b.Get(context.Background(), sessA); o != Hit || err != nil || f.calls.Load() != 1 {
			t.Fatalf("after Prefetch: %s, %v, %d calls", o, err, f.calls.Load())
		}
		b.Forget(sessA)
		if s := b.Stats(); s.Sessions != 0 {
			t.Fatalf("Forget kept %d sessions", s.Sessions)
		}
		time.Sleep(2 * time.Hour)
		synctest.Wait()
		if n := f.calls.Load(); n != 1 {
			t.Errorf("%d calls after Forget", n)
		}
	})
}
