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

// testClock is the system clock moved by a test: Advance moves both the
// wall and the monotonic reading (time passing), Jump only the wall
// (a resume from hibernation). Timers are real, so budgets and back-offs
// still run.
type testClock struct {
	origin     time.Time
	frozen     bool // only Advance and Jump move it
	mono, wall atomic.Int64
}

func newTestClock() *testClock { return &testClock{origin: time.Now()} }

// newFrozenClock is a test clock that real time does not move, for exact
// lifetimes; only for tests without back-offs, which wait on real timers
// for the clock to pass a point.
func newFrozenClock() *testClock { return &testClock{origin: time.Now(), frozen: true} }

func (c *testClock) Now() (time.Time, time.Duration) {
	t := time.Now()
	if c.frozen {
		t = c.origin
	}
	return t.Round(0).Add(time.Duration(c.wall.Load())), t.Sub(c.origin) + time.Duration(c.mono.Load())
}

func (c *testClock) Timer(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
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
	err, status, gate := f.err, f.status, f.gate
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
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

func testConfig() Config { return DefaultConfig() }

func newTestCache(t *testing.T, inner Upstream, cfg Config) (*Cache, *testClock) {
	t.Helper()
	clk := newTestClock()
	c := New(inner, Options{Config: cfg, Clock: clk})
	t.Cleanup(func() { c.Close() })
	return c, clk
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

// idle waits until no upstream request of c runs.
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
// of the test, that both came back to that.
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

var errDown = errors.New("connect: connection refused")
