package upstream

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/imdsguard/imdsguard/internal/config/field"
)

// fakeIMDS is a tokens-required IMDS on loopback that counts token PUTs.
type fakeIMDS struct {
	puts    atomic.Int64
	gets    atomic.Int64
	putWait time.Duration // delay before answering a PUT
	putCode atomic.Int32  // status of PUT answers (0 = 200)
	putFail atomic.Int64  // the next putFail PUTs answer 500
	refuse  atomic.Bool   // answer 401 to every GET, whatever the token
	getWait time.Duration // delay before answering a GET
	open    atomic.Int64  // requests being answered now
	maxOpen atomic.Int64  // most requests answered at once
	putsNow atomic.Int64  // PUTs being answered now
	maxPuts atomic.Int64  // most PUTs answered at once
	valid   atomic.Value  // the token GETs must carry
	seq     atomic.Int64
	mu      sync.Mutex
	headers []http.Header // headers of every GET received
}

// track counts n up for the length of a request and keeps the maximum in most.
func track(n, most *atomic.Int64) func() {
	v := n.Add(1)
	for m := most.Load(); v > m && !most.CompareAndSwap(m, v); m = most.Load() {
	}
	return func() { n.Add(-1) }
}

func (f *fakeIMDS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer track(&f.open, &f.maxOpen)()
	if r.Method == http.MethodPut && r.URL.Path == "/latest/api/token" {
		defer track(&f.putsNow, &f.maxPuts)()
		f.puts.Add(1)
		time.Sleep(f.putWait)
		if c := f.putCode.Load(); c != 0 {
			w.WriteHeader(int(c))
			return
		}
		if f.putFail.Add(-1) >= 0 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		tok := "tok-" + string(rune('a'+f.seq.Add(1)%26))
		f.valid.Store(tok)
		w.Header().Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", r.Header.Get("X-Aws-Ec2-Metadata-Token-Ttl-Seconds"))
		io.WriteString(w, tok)
		return
	}
	f.gets.Add(1)
	f.mu.Lock()
	f.headers = append(f.headers, r.Header.Clone())
	f.mu.Unlock()
	time.Sleep(f.getWait)
	if v, _ := f.valid.Load().(string); v == "" || r.Header.Get("X-Aws-Ec2-Metadata-Token") != v || f.refuse.Load() {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	w.Header().Set("Server", "EC2ws")
	io.WriteString(w, "i-0123456789abcdef0")
}

// newClient is a Client of h, served over loopback TCP.
func newClient(t *testing.T, h http.Handler) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return newClientAt(t, srv.URL)
}

func newClientAt(t *testing.T, u string) *Client {
	t.Helper()
	c, err := New(Options{Config: Config{URL: u, TokenTTL: field.Duration{Duration: 6 * time.Hour}}, UserAgent: "imdsguard-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// newBubbleClient is a Client of h inside a synctest bubble: h is served
// by net/http's server over in-memory connections (net.Pipe), so the
// bubble's fake clock runs the session's waits, back-offs and lifetimes.
// Call it inside synctest.Test; the server and the client's connections
// close when the test ends.
func newBubbleClient(t *testing.T, h http.Handler) *Client {
	t.Helper()
	ln := &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	c := newClientAt(t, "http://imds.test")
	c.tr.DialContext = ln.dial
	t.Cleanup(func() { srv.Close() })
	return c
}

// pipeListener hands the server ends of in-memory connections to a server.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *pipeListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "imds.test:80" }

func fetchBody(t *testing.T, c *Client) (int, string) {
	t.Helper()
	resp, err := c.Fetch(context.Background(), http.MethodGet, "/latest/meta-data/instance-id")
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// 1,000 callers arriving at once, with no token yet, cause one PUT.
func TestColdStartOnePut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeIMDS{putWait: 50 * time.Millisecond}
		c := newBubbleClient(t, f)
		const callers = 1000
		var wg sync.WaitGroup
		var failed atomic.Int64
		for range callers {
			wg.Go(func() {
				tok, err := c.session.token(context.Background())
				if err != nil || tok == "" {
					failed.Add(1)
				}
			})
		}
		wg.Wait()
		if n := f.puts.Load(); n != 1 || c.TokenPuts() != 1 {
			t.Fatalf("%d concurrent cold callers caused %d upstream PUTs (client counted %d), want exactly 1", callers, n, c.TokenPuts())
		}
		if failed.Load() != 0 {
			t.Fatalf("%d callers got no token", failed.Load())
		}
	})
}

// Over real loopback sockets, IMDS receives only the headers it needs,
// and the path on the request line is the one given, byte for byte.
func TestFetchSendsOnlyWhatIMDSNeeds(t *testing.T) {
	f := &fakeIMDS{}
	c := newClient(t, f)
	if code, body := fetchBody(t, c); code != 200 || body != "i-0123456789abcdef0" {
		t.Fatalf("Fetch = %d %q", code, body)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.headers) == 0 {
		t.Fatal("no GET reached IMDS: the test proves nothing")
	}
	for _, h := range f.headers {
		for name := range h {
			switch name {
			case "X-Aws-Ec2-Metadata-Token", "User-Agent", "Accept":
			default:
				t.Errorf("upstream received header %s: %q", name, h[name])
			}
		}
	}
}

// The request line carries the canonical path exactly as given (no
// escaping or cleaning of its own), and a path that is not one of canon's
// is never sent.
func TestPathSentAsGiven(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			io.WriteString(w, "tok")
			return
		}
		mu.Lock()
		lines = append(lines, r.RequestURI)
		mu.Unlock()
	})
	c := newClient(t, h)
	for _, p := range []string{"/latest/meta-data/a%2Fb", "/latest/meta-data/x;y", "/latest/meta-data/%41", "/latest/meta-data/tags/instance/Name:x"} {
		resp, err := c.Fetch(context.Background(), http.MethodGet, p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		resp.Body.Close()
		mu.Lock()
		got := lines[len(lines)-1]
		mu.Unlock()
		if got != p {
			t.Errorf("asked for %q, IMDS's request line had %q", p, got)
		}
	}
	for _, p := range []string{"", "latest/meta-data/", "//169.254.169.254/latest", "/a b", "/a\r\nX-Forwarded-For: 1"} {
		if _, err := c.Fetch(context.Background(), http.MethodGet, p); err == nil || !strings.Contains(err.Error(), "not canonical") {
			t.Errorf("path %q: %v, want it refused as not canonical", p, err)
		}
	}
}

func TestUnauthorizedRenewsOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeIMDS{}
		c := newBubbleClient(t, f)
		fetchBody(t, c)
		f.valid.Store("rotated-away") // IMDS forgot our token (e.g. it expired early)
		if code, _ := fetchBody(t, c); code != 200 {
			t.Fatalf("after a 401 the retry got %d, want 200", code)
		}
		if n := f.puts.Load(); n != 2 {
			t.Fatalf("PUTs = %d, want 2 (one renewal)", n)
		}
		// An IMDS that keeps refusing gets exactly one retry, and the 401 passes on.
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPut {
				io.WriteString(w, "t")
				return
			}
			w.WriteHeader(http.StatusUnauthorized)
		})
		c2 := newBubbleClient(t, h)
		if code, _ := fetchBody(t, c2); code != http.StatusUnauthorized {
			t.Fatalf("always-401 upstream: got %d, want 401 passed on", code)
		}
		if n := c2.TokenPuts(); n != 2 {
			t.Fatalf("always-401 upstream: %d PUTs, want 2 (first + one retry)", n)
		}
	})
}

// A failing PUT is retried once per jittered back-off, never two at once.
// Callers wait for the retry while it fits in their 700 ms budget; a caller
// whose budget ends before the next retry fails at once with ErrBackoff.
func TestPutFailureBacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeIMDS{}
		f.putCode.Store(http.StatusInternalServerError)
		c := newBubbleClient(t, f)
		var wg sync.WaitGroup
		var succeeded atomic.Int64
		for range 20 {
			wg.Go(func() {
				if _, err := c.Fetch(context.Background(), http.MethodGet, "/latest/meta-data/"); err == nil {
					succeeded.Add(1)
				}
			})
		}
		wg.Wait()
		if succeeded.Load() != 0 {
			t.Fatal("Fetch succeeded with a failing token PUT")
		}
		// The back-offs are drawn from [50,100], [100,200], [200,400], [400,800] ms:
		// inside one 700 ms budget the first PUT is followed by two or three retries.
		if n := f.puts.Load(); n < 2 || n > 4 {
			t.Fatalf("20 callers sharing one 700 ms budget sent %d PUTs, want 2..4 (one per back-off step)", n)
		}
		if m := f.maxPuts.Load(); m != 1 {
			t.Fatalf("%d PUTs in flight at once, want 1", m)
		}
		if n := c.TokenPutFailures(); n != uint64(f.puts.Load()) {
			t.Fatalf("%d failed PUTs counted of %d sent, all refused", n, f.puts.Load())
		}
		// Fail until the back-off is longer than a budget: a caller then
		// fails at once, sending nothing.
		for c.backoffLeft() <= FetchTimeout {
			time.Sleep(c.backoffLeft())
			c.Fetch(context.Background(), http.MethodGet, "/latest/meta-data/")
		}
		start, before := time.Now(), f.puts.Load()
		if _, err := c.Fetch(context.Background(), http.MethodGet, "/latest/meta-data/"); !errors.Is(err, ErrBackoff) {
			t.Fatalf("retry %v away, beyond the budget: err = %v, want ErrBackoff", c.backoffLeft(), err)
		}
		if d := time.Since(start); d != 0 || f.puts.Load() != before {
			t.Fatalf("a caller that cannot make the retry waited %v and sent %d PUTs", d, f.puts.Load()-before)
		}
		f.putCode.Store(0)
		time.Sleep(c.backoffLeft())
		before, fails := f.puts.Load(), c.TokenPutFailures()
		if code, _ := fetchBody(t, c); code != 200 {
			t.Fatalf("after the backoff: %d, want 200", code)
		}
		if n := f.puts.Load() - before; n != 1 {
			t.Fatalf("after the backoff: %d PUTs, want 1", n)
		}
		if n := c.TokenPutFailures(); n != fails {
			t.Fatalf("a PUT that succeeded counted as failed: %d failures, were %d", n, fails)
		}
	})
}

// backoffLeft is how long the session still waits before its next PUT.
func (c *Client) backoffLeft() time.Duration {
	c.session.mu.Lock()
	defer c.session.mu.Unlock()
	return max(time.Until(c.session.retryAt), 0)
}

// The first PUT fails under load. Callers still inside their budget wait
// for one retry and get a token; nobody fails while a retry would succeed.
func TestPutFailureRetriedWithinBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeIMDS{putWait: 20 * time.Millisecond}
		f.putFail.Store(1)
		c := newBubbleClient(t, f)
		var wg sync.WaitGroup
		var failed atomic.Int64
		for i := range 200 {
			wg.Go(func() {
				time.Sleep(time.Duration(i%50) * time.Millisecond) // some arrive during the back-off
				ctx, cancel := context.WithTimeout(context.Background(), FetchTimeout)
				defer cancel()
				if _, err := c.session.token(ctx); err != nil {
					failed.Add(1)
				}
			})
		}
		wg.Wait()
		if failed.Load() != 0 {
			t.Fatalf("%d of 200 callers got no token although the retry succeeded", failed.Load())
		}
		if n := f.puts.Load(); n != 2 {
			t.Fatalf("PUTs = %d, want 2 (the failed one and one retry)", n)
		}
		if code, _ := fetchBody(t, c); code != 200 {
			t.Fatalf("then a fetch: %d, want 200", code)
		}
	})
}

// IMDS answering 401 to everything for a while: the refused token is
// replaced once; the replacement is refused too, and the session keeps it
// instead of sending a PUT per request. A later single refusal, once IMDS
// has accepted the token again, is replaced at once.
func TestRefusedTokenReplacedOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeIMDS{}
		c := newBubbleClient(t, f)
		fetchBody(t, c)
		f.refuse.Store(true)
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				for end := time.Now().Add(500 * time.Millisecond); time.Now().Before(end); {
					if code, _ := fetchBody(t, c); code != http.StatusUnauthorized {
						t.Errorf("refusing IMDS: %d, want the 401 passed on", code)
						return
					}
					time.Sleep(5 * time.Millisecond)
				}
			})
		}
		wg.Wait()
		if n := f.puts.Load(); n != 2 {
			t.Fatalf("401 to everything for 500 ms: %d PUTs, want 2 (the first and one replacement)", n)
		}
		f.refuse.Store(false)
		if code, _ := fetchBody(t, c); code != 200 {
			t.Fatalf("after the refusals: %d, want 200 with the kept token", code)
		}
		f.valid.Store("rotated-away")
		if code, _ := fetchBody(t, c); code != 200 || f.puts.Load() != 3 {
			t.Fatalf("a later refusal: %d after %d PUTs, want 200 after 3", code, f.puts.Load())
		}
	})
}

// At most MaxConns requests are open towards IMDS at once; the others wait
// for a connection inside their budget.
func TestConnectionsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeIMDS{getWait: 10 * time.Millisecond}
		c := newBubbleClient(t, f)
		var wg sync.WaitGroup
		var failed atomic.Int64
		for range 6 * MaxConns { // 60 ms through the connections at least, well inside the budget
			wg.Go(func() {
				resp, err := c.Fetch(context.Background(), http.MethodGet, "/latest/meta-data/instance-id")
				if err != nil {
					failed.Add(1)
					return
				}
				resp.Body.Close()
			})
		}
		wg.Wait()
		if failed.Load() != 0 {
			t.Fatalf("%d fetches failed", failed.Load())
		}
		if m := f.maxOpen.Load(); m < 2 || m > MaxConns {
			t.Fatalf("%d requests open at IMDS at once, want 2 to %d", m, MaxConns)
		}
	})
}

// A token is renewed in the background once less than a tenth of its life
// is left; callers keep using it meanwhile.
func TestRenewsBeforeExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeIMDS{}
		c := newBubbleClient(t, f)
		fetchBody(t, c)
		time.Sleep(6*time.Hour - 10*time.Minute) // inside the last tenth of its life
		fetchBody(t, c)                          // served with the old token, renewal starts
		synctest.Wait()
		if n := f.puts.Load(); n != 2 {
			t.Fatalf("PUTs = %d, want 2 (early renewal)", n)
		}
		time.Sleep(10 * time.Minute) // the first token has expired: the new one serves
		if code, _ := fetchBody(t, c); code != 200 || f.puts.Load() != 2 {
			t.Fatalf("after the first token's expiry: %d after %d PUTs, want 200 after 2", code, f.puts.Load())
		}
	})
}

func TestUnreachableFailsFast(t *testing.T) {
	// A listener that accepts nothing: connections hang in the backlog, then
	// time out; and a closed port: refused at once.
	hang, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hang.Close()
	silent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers
	}))
	defer silent.Close()
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedURL := "http://" + closed.Addr().String()
	closed.Close()
	for _, u := range []string{"http://" + hang.Addr().String(), silent.URL, closedURL} {
		c := newClientAt(t, u)
		start := time.Now()
		_, err = c.Fetch(context.Background(), http.MethodGet, "/latest/meta-data/")
		if err == nil {
			t.Fatalf("%s: Fetch succeeded", u)
		}
		// The bound is structural (FetchTimeout is a context deadline); the
		// check only catches a hang, with room for a loaded machine.
		if d := time.Since(start); d > 3*FetchTimeout {
			t.Errorf("%s: failed after %v: the %v budget did not hold", u, d, FetchTimeout)
		}
		t.Logf("%s: %v after %v (timeout=%v)", u, err, time.Since(start).Round(time.Millisecond), IsTimeout(err))
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ url, ttl, want string }{
		{"https://169.254.169.254", "6h", "url:"},
		{"http://169.254.169.254/latest", "6h", "url:"},
		{"http://u@host", "6h", "url:"},
		{"http://169.254.169.254", "7h", "token_ttl:"},
		{"http://169.254.169.254", "500ms", "token_ttl:"},
		{"http://169.254.169.254", "soon", "token_ttl:"},
	} {
		var d field.Duration
		d.UnmarshalText([]byte(c.ttl))
		err := Config{URL: c.url, TokenTTL: d}.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate(%s, %s) = %v, want %s error", c.url, c.ttl, err, c.want)
		}
	}
}
