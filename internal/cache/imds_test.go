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
	"testing/synctest"
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
// connection after its answer, and counts token PUTs and GETs. It is for
// the tests where the real upstream client and its socket are the point;
// those run on the wall clock, since a goroutine that reads a socket is
// not durably blocked and cannot be in a synctest bubble.
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
	untilMode time.Time // mode goes back to normal at this time (zero: never)
}

func newIMDS(t *testing.T) *imds {
	f := &imds{}
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
	io.WriteString(w, valueOf(r.URL.Path))
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

// storm has callers read tenPaths[i%10] at once; a good answer is a 200
// with valueOf the path.
func storm(c *Cache, callers int) stormResult {
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
				ok = resp.StatusCode == 200 && string(b) == valueOf(p)
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
	c := New(f.client(t), Options{Config: testConfig()})
	defer c.Close()
	r := storm(c, 1000)
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
	synctest.Test(t, func(t *testing.T) {
		f := newTenPaths()
		gate := f.hold()
		c := New(f, Options{Config: testConfig(), Budget: 10 * time.Second})
		defer c.Close()
		var wg sync.WaitGroup
		for i := range 1000 {
			wg.Go(func() {
				resp, err := c.Fetch(context.Background(), http.MethodGet, tenPaths[i%10])
				if err != nil || resp.StatusCode != 200 {
					t.Errorf("%v %v", resp, err)
				}
			})
		}
		synctest.Wait() // every caller waits, for the request it started or joined
		if n := f.total.Load(); n != 10 {
			t.Errorf("while the callers wait: %d upstream requests, want 10", n)
		}
		close(gate)
		wg.Wait()
		if n := f.total.Load(); n != 10 {
			t.Fatalf("%d upstream requests, want 10", n)
		}
		if s := c.Stats(); s.Misses != 10 || s.Coalesced != 990 {
			t.Fatalf("Stats %+v, want 10 misses and 990 coalesced", s)
		}
	})
}

// wireFaults are faults of a real IMDS on loopback, as in faults.
var wireFaults = []struct {
	name  string
	apply func(f *imds)
}{
	{"timeout", func(f *imds) { f.set(hang, 0) }},
	{"slow 2s", func(f *imds) { f.set(slow, 0) }},
	{"refused", func(f *imds) { f.srv.Close() }},
	{"reset", func(f *imds) { f.set(reset, 0) }},
	{"429", func(f *imds) { f.code.Store(429); f.set(status, 0) }},
	{"500", func(f *imds) { f.code.Store(500); f.set(status, 0) }},
	{"503", func(f *imds) { f.code.Store(503); f.set(status, 0) }},
}

// callerBound is the contract: a caller is answered within 1 s whatever
// IMDS does (the budget is 800 ms; the rest is room for a loaded machine,
// in the tests on the wall clock).
const callerBound = time.Second

// The faults once more through the real upstream client and a real socket,
// for what only they show: a failing IMDS costs no new token PUT, and a
// real hang reaches the caller as a timeout (504, not 502). TestStaleOnError
// and TestColdFaults hold the cache to the rest (storms included) on the
// bubble's clock; here the clock is the wall's (the test clock only ages
// what is held), so every fault runs at once, with answers held and
// without, with a few callers per path.
func TestFaultsThroughClient(t *testing.T) {
	noLeaks(t)
	var wg sync.WaitGroup
	for _, fault := range wireFaults {
		held, cold := newIMDS(t), newIMDS(t)
		clk := newTestClock()
		hc := New(held.client(t), Options{Config: testConfig(), Clock: clk})
		cc := New(cold.client(t), Options{Config: testConfig()})
		defer hc.Close()
		defer cc.Close()
		wg.Go(func() {
			if r := storm(hc, len(tenPaths)); r.bad != 0 {
				t.Errorf("%s: warming: %v", fault.name, r)
				return
			}
			clk.Advance(time.Minute) // past their lifetime, inside the grace
			fault.apply(held)
			for round := range 2 {
				if r := storm(hc, 20); r.bad != 0 || r.slowest > callerBound || r.outcomes[Stale] != 20 {
					t.Errorf("%s: round %d: want every caller answered stale within %v: %v", fault.name, round, callerBound, r)
				}
				time.Sleep(150 * time.Millisecond) // past the first back-offs: the retries go upstream
			}
			if p := held.puts.Load(); p != 1 {
				t.Errorf("%s, answers held: %d token PUTs, want 1", fault.name, p)
			}
		})
		wg.Go(func() {
			fault.apply(cold)
			if d := coldRound(t, cc, fault.name, 20); d > callerBound {
				t.Errorf("%s, nothing held: the last caller was answered after %v", fault.name, d)
			}
			if p := cold.puts.Load(); p > 5 {
				t.Errorf("%s, nothing held: %d token PUTs: a storm", fault.name, p)
			}
		})
	}
	wg.Wait()
}

// IMDS answering 401 to everything for a while: callers get the held
// answers within the bound, the session token is replaced once (two PUTs in
// all), and once IMDS takes the token again the cache refreshes. The
// session's replacement of a refused token is the point, so this runs
// through the real client, on the wall clock.
func TestUnauthorizedForAWhile(t *testing.T) {
	noLeaks(t)
	f := newIMDS(t)
	clk := newTestClock()
	c := New(f.client(t), Options{Config: testConfig(), Clock: clk})
	defer c.Close()
	if r := storm(c, len(tenPaths)); r.bad != 0 {
		t.Fatalf("warming: %v", r)
	}
	clk.Advance(time.Minute)
	f.set(refuse, 700*time.Millisecond)
	for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if r := storm(c, 100); r.bad != 0 || r.slowest > callerBound {
			t.Fatalf("want every caller answered within %v: %v", callerBound, r)
		}
	}
	if p := f.puts.Load(); p != 2 {
		t.Fatalf("401 to everything for 700 ms: %d token PUTs, want 2 (the first and one replacement)", p)
	}
	idle(t, c)
	clk.Advance(time.Minute) // past the held answers' lifetime and every path's back-off
	first := storm(c, len(tenPaths))
	idle(t, c)
	if after := storm(c, len(tenPaths)); after.outcomes[Hit] != len(tenPaths) {
		t.Fatalf("after the refusals: %v, then %v; want fresh answers again", first, after)
	}
	if p := f.puts.Load(); p != 2 {
		t.Fatalf("after the refusals: %d token PUTs, want still 2", p)
	}
}
