package cache

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testClock is the clock of the machine, or of the synctest bubble, with
// what a test adds: Jump moves the wall reading alone (a resume from
// hibernation), which no bubble does; Advance moves both, to age what is
// held in the tests on real sockets, which cannot run in a bubble.
type testClock struct {
	origin     time.Time
	mono, wall atomic.Int64
}

func newTestClock() *testClock { return &testClock{origin: time.Now()} }

func (c *testClock) Now() (time.Time, time.Duration) {
	t := time.Now()
	return t.Round(0).Add(time.Duration(c.wall.Load())), t.Sub(c.origin) + time.Duration(c.mono.Load())
}

func (c *testClock) Advance(d time.Duration) { c.mono.Add(int64(d)); c.wall.Add(int64(d)) }
func (c *testClock) Jump(d time.Duration)    { c.wall.Add(int64(d)) }

// fakeAnswer is what fakeUpstream answers for a path.
type fakeAnswer struct {
	status int
	body   string
	header http.Header
}

// fakeUpstream is an in-memory IMDS that counts requests per path.
type fakeUpstream struct {
	mu      sync.Mutex
	answers map[string]fakeAnswer
	err     error         // returned for every request when set
	status  int           // when set, every answer has this status
	gate    chan struct{} // when set, requests wait for it to close
	delay   time.Duration // requests answer after it
	calls   map[string]int
	methods []string
	total   atomic.Int64
}

func newFake(answers map[string]fakeAnswer) *fakeUpstream {
	return &fakeUpstream{answers: answers, calls: map[string]int{}}
}

func (f *fakeUpstream) Fetch(ctx context.Context, method, path string) (*http.Response, error) {
	f.total.Add(1)
	f.mu.Lock()
	f.calls[path]++
	f.methods = append(f.methods, method)
	a, ok := f.answers[path]
	err, status, gate, delay := f.err, f.status, f.gate, f.delay
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err != nil {
		return nil, err
	}
	if !ok {
		a = fakeAnswer{status: http.StatusNotFound, body: "not found"}
	}
	if status != 0 {
		a = fakeAnswer{status: status, body: http.StatusText(status)}
	}
	h := http.Header{"Server": {"EC2ws"}, "Content-Type": {"text/plain"}}
	for k, v := range a.header {
		h[k] = v
	}
	return &http.Response{
		Status:        strconv.Itoa(a.status) + " " + http.StatusText(a.status),
		StatusCode:    a.status,
		Header:        h,
		Body:          io.NopCloser(strings.NewReader(a.body)),
		ContentLength: int64(len(a.body)),
	}, nil
}

func (f *fakeUpstream) set(path string, a fakeAnswer) {
	f.mu.Lock()
	f.answers[path] = a
	f.mu.Unlock()
}

func (f *fakeUpstream) count(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[path]
}

func (f *fakeUpstream) fail(err error, status int) {
	f.mu.Lock()
	f.err, f.status = err, status
	f.mu.Unlock()
}

// hold makes requests wait until the returned channel is closed, or for
// ever.
func (f *fakeUpstream) hold() chan struct{} {
	gate := make(chan struct{})
	f.mu.Lock()
	f.gate = gate
	f.mu.Unlock()
	return gate
}

func (f *fakeUpstream) slow(d time.Duration) {
	f.mu.Lock()
	f.delay = d
	f.mu.Unlock()
}

func testConfig() Config { return DefaultConfig() }

// newTestCache is a cache on the clock of the machine, or of the synctest
// bubble it is made in, closed at the end of the test.
func newTestCache(t *testing.T, inner Upstream, cfg Config) *Cache {
	t.Helper()
	c := New(inner, Options{Config: cfg})
	t.Cleanup(func() { c.Close() })
	return c
}

// get fetches path and returns status, body and outcome.
func get(t *testing.T, c *Cache, path string) (int, string, Outcome) {
	t.Helper()
	resp, o, err := c.FetchOutcome(context.Background(), http.MethodGet, path)
	if err != nil {
		t.Fatalf("GET %s: %v (%s)", path, err, o)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), o
}

// idle waits until no upstream request of c runs, on the wall clock: for
// the tests on real sockets; in a synctest bubble, synctest.Wait does it.
func idle(t *testing.T, c *Cache) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		busy := false
		c.mu.RLock()
		for _, s := range c.slots {
			busy = busy || s.flight != nil
		}
		c.mu.RUnlock()
		if !busy {
			return
		}
	}
	t.Fatal("upstream requests still running after 5 s")
}

// noLeaks records the goroutines and open files now and checks, at the end
// of the test, that both came back to that: for the tests on real sockets.
// A test in a synctest bubble needs none: the bubble fails the test when
// one of its goroutines is left blocked at the end.
func noLeaks(t *testing.T) {
	t.Helper()
	g0, f0 := runtime.NumGoroutine(), openFiles()
	t.Cleanup(func() {
		var g, f int
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if g, f = runtime.NumGoroutine(), openFiles(); g <= g0 && f <= f0 {
				return
			}
		}
		buf := make([]byte, 1<<16)
		t.Errorf("goroutines %d -> %d, open files %d -> %d\n%s", g0, g, f0, f, buf[:runtime.Stack(buf, true)])
	})
}

// openFiles counts this process's open file descriptors (0 without /proc).
func openFiles() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	return len(ents)
}

var (
	errDown  = errors.New("connect: connection refused")
	errReset = errors.New("read: connection reset by peer")
)

// valueOf is what the fake IMDSs answer for a path in the storms.
func valueOf(path string) string { return "value of " + path }
