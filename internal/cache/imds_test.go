package cache

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/internal/config/field"
	"github.com/imdsguard/imdsguard/internal/upstream"
)

// Ways a fake IMDS answers GETs.
const (
	normal = iota // as IMDS does
	hang          // accepts, never answers
	slow          // answers after 2 s
	reset         // resets the connection
	refuse        // 401 to everything, whatever the token
	status        // answers with the status in imds.code
)

// imds is a tokens-required IMDS on loopback that, like IMDS, closes every
// connection after its answer, and counts token PUTs and GETs.
type imds struct {
	srv       *httptest.Server
	mode      atomic.Int32
	code      atomic.Int32
	puts      atomic.Int64
	gets      atomic.Int64
	getWait   time.Duration
	tok       atomic.Value
	mu        sync.Mutex
	seq       int
	body      func(path string) string
	untilMode time.Time // mode goes back to normal at this time (zero: never)
}

func newIMDS(t *testing.T) *imds {
	f := &imds{body: func(p string) string { return "value of " + p }}
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *imds) client(t *testing.T) *upstream.Client {
	c, err := upstream.New(upstream.Options{Config: upstream.Config{URL: f.srv.URL, TokenTTL: field.Duration{Duration: 6 * time.Hour}}, UserAgent: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func (f *imds) set(mode int, d time.Duration) {
	f.mu.Lock()
	f.untilMode = time.Time{}
	if d > 0 {
		f.untilMode = time.Now().Add(d)
	}
	f.mu.Unlock()
	f.mode.Store(int32(mode))
}

func (f *imds) currentMode() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.untilMode.IsZero() && time.Now().After(f.untilMode) {
		f.mode.Store(normal)
		f.untilMode = time.Time{}
	}
	return int(f.mode.Load())
}

func (f *imds) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Connection", "close")
	w.Header().Set("Server", "EC2ws")
	if r.Method == http.MethodPut {
		f.puts.Add(1)
		f.mu.Lock()
		f.seq++
		tok := fmt.Sprintf("token-%d", f.seq)
		f.mu.Unlock()
		f.tok.Store(tok)
		io.WriteString(w, tok)
		return
	}
	f.gets.Add(1)
	time.Sleep(f.getWait)
	switch f.currentMode() {
	case hang:
		<-r.Context().Done()
		return
	case slow:
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
			return
		}
	case reset:
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.(*net.TCPConn).SetLinger(0)
			conn.Close()
		}
		return
	case refuse:
		w.WriteHeader(http.StatusUnauthorized)
		return
	case status:
		w.WriteHeader(int(f.code.Load()))
		return
	}
	if tok, _ := f.tok.Load().(string); r.Header.Get("X-Aws-Ec2-Metadata-Token") != tok {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	io.WriteString(w, f.body(r.URL.Path))
}

// tenPaths are Dynamic paths: short-lived, so a test can age them with the clock.
var tenPaths = func() []string {
	var ps []string
	for i := range 10 {
		ps = append(ps, fmt.Sprintf("/latest/meta-data/network/interfaces/macs/0e:00:00:00:00:%02d/local-ipv4s", i))
	}
	return ps
}()

// stormResult is what the callers of a storm got.
type stormResult struct {
	bad      int64         // callers without a 200 and the expected body
	slowest  time.Duration // the longest a caller waited
	outcomes map[Outcome]int
	err      error // the first error
}

func (r stormResult) String() string {
	return fmt.Sprintf("%d bad, slowest %v, %v, first error %v", r.bad, r.slowest, r.outcomes, r.err)
}

// storm has callers read tenPaths[i%10] at once.
func storm(c *Cache, callers int, f *imds) stormResult {
	var wg sync.WaitGroup
	var mu sync.Mutex
	r := stormResult{outcomes: map[Outcome]int{}}
	start := make(chan struct{})
	for i := range callers {
		p := tenPaths[i%len(tenPaths)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			t0 := time.Now()
			resp, o, err := c.FetchOutcome(context.Background(), http.MethodGet, p)
			ok := err == nil
			if ok {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				ok = resp.StatusCode == 200 && string(b) == f.body(p)
			}
			d := time.Since(t0)
			mu.Lock()
			defer mu.Unlock()
			r.outcomes[o]++
			r.slowest = max(r.slowest, d)
			if !ok {
				r.bad++
				if r.err == nil {
					r.err = err
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	return r
}

// Issue 10's cold storm: 1,000 concurrent callers over 10 paths, through
// the real upstream client: at most 10 GETs and one token PUT.
func TestColdStormThroughClient(t *testing.T) {
	noLeaks(t)
	f := newIMDS(t)
	f.getWait = 20 * time.Millisecond // a throttled IMDS: the storm arrives while the GETs run
	c := New(f.client(t), Options{Config: testConfig(), Clock: newTestClock()})
	defer c.Close()
	r := storm(c, 1000, f)
	if r.bad != 0 {
		t.Fatalf("storm: %v", r)
	}
	if g, p := f.gets.Load(), f.puts.Load(); g > 10 || p != 1 {
		t.Fatalf("1,000 callers over 10 paths: %d GETs and %d PUTs, want at most 10 and 1", g, p)
	}
	s := c.Stats()
	if s.Misses != 10 || s.Hits+s.Coalesced != 990 || s.Upstream != 10 {
		t.Fatalf("Stats %+v: want 10 misses, 990 hits or coalesced waiters", s)
	}
	t.Logf("storm: %v", r)
}

// The same storm against an in-memory upstream that holds every request
// until the callers have arrived: callers of a path being fetched wait for
// that one request.
func TestColdStormCoalesced(t *testing.T) {
	noLeaks(t)
	f := newFake(map[string]fakeAnswer{})
	for _, p := range tenPaths {
		f.set(p, fakeAnswer{status: 200, body: "x"})
	}
	gate := make(chan struct{})
	f.gate = gate
	c := New(f, Options{Config: testConfig(), Clock: newTestClock(), Budget: 10 * time.Second})
	defer c.Close()
	var wg sync.WaitGroup
	var entered atomic.Int64
	for i := range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			entered.Add(1)
			resp, err := c.Fetch(context.Background(), http.MethodGet, tenPaths[i%10])
			if err != nil || resp.StatusCode != 200 {
				t.Errorf("%v %v", resp, err)
			}
		}()
	}
	for entered.Load() < 1000 || f.total.Load() < 10 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // let the callers reach their wait
	close(gate)
	wg.Wait()
	if n := f.total.Load(); n != 10 {
		t.Fatalf("%d upstream requests, want 10", n)
	}
	if s := c.Stats(); s.Misses != 10 || s.Coalesced+s.Hits != 990 || s.Coalesced == 0 {
		t.Fatalf("Stats %+v, want 10 misses and 990 coalesced (or, for late arrivals, hits)", s)
	}
}
