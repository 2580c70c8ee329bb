package proxy

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/internal/audit"
	"github.com/imdsguard/imdsguard/internal/cache"
	"github.com/imdsguard/imdsguard/internal/identity"
	"github.com/imdsguard/imdsguard/internal/token"
)

// serve runs e's proxy with Serve (the daemon's real server and limits) and
// returns its address; it stops at the end of the test.
func serve(t *testing.T, e *env) string {
	t.Helper()
	addr, stop := serveUntil(t, e)
	t.Cleanup(func() {
		if err := <-stop(); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return addr
}

// serveUntil runs e's proxy with Serve until stop is called (or the test
// ends); stop returns the channel Serve's result comes on.
func serveUntil(t *testing.T, e *env) (addr string, stop func() <-chan error) {
	t.Helper()
	lns, err := Listen([]string{"127.0.0.1:0"}, e.proxy.log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, e.proxy, lns) }()
	return lns[0].Addr().String(), func() <-chan error { cancel(); return done }
}

func TestBadInputKeepsServingOthers(t *testing.T) {
	e := newEnv(t)
	addr := serve(t, e)

	// Slow clients: a header that never ends, a request line half sent.
	var slow []net.Conn
	for _, partial := range []string{"GET /latest/meta-data/ HTTP/1.1\r\nHost: x\r\nX-Slow: ", "GET /latest/me"} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, partial)
		slow = append(slow, c)
	}
	cases := []struct {
		name   string
		req    string
		status string
	}{
		{"oversized header", "GET /latest/meta-data/ HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", MaxHeaderBytes+4096) + "\r\n\r\n", "431"},
		{"oversized target", "GET /latest/meta-data/" + strings.Repeat("a", 4000) + " HTTP/1.1\r\nHost: x\r\n\r\n", "414"},
		{"garbage request line", "HELLO\r\n\r\n", "400"},
		{"bad version", "GET / HTTP/9.9\r\nHost: x\r\n\r\n", "505"},
		{"no host", "GET /latest/meta-data/ HTTP/1.1\r\n\r\n", "400"},
		{"bad escape", "GET /latest/%zz HTTP/1.1\r\nHost: x\r\n\r\n", "400"},
		{"space before colon", "GET /latest/meta-data/ HTTP/1.1\r\nHost: x\r\nX-Forwarded-For : 1.2.3.4\r\n\r\n", "400"},
		{"normal caller meanwhile", "GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: x\r\n\r\n", "200"},
	}
	for _, c := range cases {
		if got := statusOf(t, addr, c.req); got != c.status {
			t.Errorf("%s: status %s, want %s", c.name, got, c.status)
		}
	}
	// The slow clients are cut off by the header read timeout.
	for _, c := range slow {
		c.SetReadDeadline(time.Now().Add(ReadHeaderTimeout + 3*time.Second))
		b, err := io.ReadAll(c)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("slow client still connected after %v", ReadHeaderTimeout+3*time.Second)
		}
		t.Logf("slow client: %q %v", firstLine(b), err)
	}
}

func statusOf(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, req)
	b := make([]byte, 64)
	n, _ := io.ReadAtLeast(c, b, 12)
	f := strings.Fields(string(b[:n]))
	if len(f) < 2 {
		return "no answer"
	}
	return f[1]
}

func firstLine(b []byte) string {
	line, _, _ := bytes.Cut(b, []byte("\r\n"))
	return string(line)
}

func TestGracefulShutdown(t *testing.T) {
	e := newEnv(t)
	lns, err := Listen([]string{"127.0.0.1:0", "[::1]:0"}, e.proxy.log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, e.proxy, lns) }()
	for _, ln := range lns {
		if got := statusOf(t, ln.Addr().String(), "GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: x\r\n\r\n"); got != "200" {
			t.Fatalf("%s: %s", ln.Addr(), got)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(ShutdownTimeout + time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	if _, err := net.Dial("tcp", lns[0].Addr().String()); err == nil {
		t.Fatal("still accepting after shutdown")
	}
}

// An SDK pointed at imdsguard as an HTTP proxy sends absolute-form targets.
func TestHTTPProxyClient(t *testing.T) {
	e := newEnv(t)
	proxyURL, err := url.Parse(e.url)
	if err != nil {
		t.Fatal(err)
	}
	// The client only ever connects to the proxy; nothing is sent to 169.254.169.254.
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}}
	resp, err := client.Get("http://169.254.169.254/latest/meta-data/instance-id")
	if err != nil {
		t.Fatal(err)
	}
	if body := bodyOf(resp); resp.StatusCode != 200 || body != "served:/latest/meta-data/instance-id" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
}

// 1,000 cold callers through the pipeline and the cache, as the daemon
// runs by default: one token PUT, one GET, every caller served. (Without
// the cache, package upstream's TestColdStartOnePut proves the one PUT;
// 1,000 GETs within the budget are up to the machine.)
func TestColdStartOnePutThroughProxy(t *testing.T) {
	e := newEnv(t, withCache(t))
	const callers = 1000
	results := make(chan int, callers)
	for range callers {
		go func() {
			rec := newRecorder()
			req := newRequest("GET", "/latest/meta-data/instance-id")
			e.proxy.ServeHTTP(rec, req)
			results <- rec.Code
		}()
	}
	for range callers {
		if code := <-results; code != 200 {
			t.Fatalf("a cold caller got %d", code)
		}
	}
	if n := e.imds.puts.Load(); n != 1 {
		t.Fatalf("%d concurrent cold callers caused %d upstream token PUTs, want 1", callers, n)
	}
	if n := len(e.imds.received()) - 1; n != 1 {
		t.Fatalf("%d concurrent cold callers of one path caused %d upstream GETs, want 1", callers, n)
	}
}

func TestUpstreamDown(t *testing.T) {
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedURL := "http://" + closed.Addr().String()
	closed.Close()
	silent := newSilentServer(t)
	for _, c := range []struct {
		url    string
		status int
	}{{closedURL, 502}, {silent, 504}} {
		e := newEnvUpstream(t, c.url)
		start := time.Now()
		resp := e.raw(t, "GET", "/latest/meta-data/instance-id")
		d := time.Since(start)
		if resp.StatusCode != c.status {
			t.Errorf("%s: %d, want %d", c.url, resp.StatusCode, c.status)
		}
		if !strings.Contains(bodyOf(resp), "<h1>") {
			t.Errorf("%s: not an IMDS-style body", c.url)
		}
		t.Logf("upstream %s: %d after %v", c.url, resp.StatusCode, d.Round(time.Millisecond))
		if d > 3*time.Second {
			t.Errorf("%s: answered after %v: a hang", c.url, d)
		}
	}
}

func TestPolicyModes(t *testing.T) {
	const reject = `rules: [{name: strict, match: {}, allow: ['/meta-data/instance-id'], imds_v1: reject}]`
	e := newEnv(t, withPolicy(t, reject))
	tok := e.mint(t)
	for _, c := range []struct {
		target  string
		headers []string
		status  int
	}{
		{"/latest/meta-data/instance-id", nil, 401},
		{"/latest/meta-data/instance-id", []string{"X-aws-ec2-metadata-token: " + tok}, 200},
		{"/latest/meta-data/placement/availability-zone", []string{"X-aws-ec2-metadata-token: " + tok}, 403},
	} {
		if got := e.raw(t, "GET", c.target, c.headers...).StatusCode; got != c.status {
			t.Errorf("reject rule: %s %v: %d, want %d", c.target, c.headers, got, c.status)
		}
	}
	auditing := newEnv(t, withPolicy(t, "mode: audit\n"+reject))
	drain(auditing.events)
	if got := auditing.raw(t, "GET", "/latest/meta-data/iam/info").StatusCode; got != 200 {
		t.Fatalf("audit mode served %d, want 200", got)
	}
	ev := <-auditing.events
	if ev.Decision != audit.WouldDeny || ev.Rule != "strict" || ev.Version != audit.V1 || ev.Path != "/latest/meta-data/iam/info" {
		t.Fatalf("audit event %+v", ev)
	}
}

func TestEventPerRequest(t *testing.T) {
	e := newEnv(t)
	e.raw(t, "GET", "/latest/meta-data/iam/security-credentials/")
	ev := <-e.events
	if ev.Decision != audit.Deny || ev.Status != 403 || ev.Method != "GET" || ev.Path != "/latest/meta-data/iam/security-credentials/" || ev.Reason == "" || ev.Caller == nil || ev.Version != audit.V1 {
		t.Fatalf("event %+v", ev)
	}
	e.raw(t, "GET", "/latest/meta-data/%252e")
	if ev = <-e.events; ev.Decision != audit.Reject || ev.Status != 400 || ev.Target != "/latest/meta-data/%252e" {
		t.Fatalf("event %+v", ev)
	}
}

func drain(c chan *audit.Event) {
	for {
		select {
		case <-c:
		default:
			return
		}
	}
}

// The policy decides every request before the cache is asked: an answer
// cached for a caller who may read it is never served to one who may not.
// The event says how the cache answered.
func TestPolicyBeforeCache(t *testing.T) {
	rootEnv := newEnv(t, withCache(t), asUID(0))
	const creds = "/latest/meta-data/iam/security-credentials/role"
	for i, want := range []string{"miss", "hit"} {
		if resp := rootEnv.raw(t, "GET", creds); resp.StatusCode != 200 {
			t.Fatalf("root read %d: %d", i, resp.StatusCode)
		}
		if ev := <-rootEnv.events; ev.Cache != want || ev.Decision != audit.Allow {
			t.Fatalf("root read %d: cache %q decision %s, want %s allow", i, ev.Cache, ev.Decision, want)
		}
	}
	// Another caller of the same proxy and cache.
	other := New(Options{Upstream: rootEnv.proxy.upstream, Minter: rootEnv.proxy.minter, Policy: rootEnv.proxy.Policy(),
		HopLimit: rootEnv.proxy.hop, Identify: asUIDIdentify(1000), Observe: func(*audit.Event) {}})
	srv := httptest.NewUnstartedServer(other)
	srv.Config.ConnContext = other.ConnContext
	srv.Start()
	t.Cleanup(srv.Close)
	resp := rawRequest(t, strings.TrimPrefix(srv.URL, "http://"), "GET", creds)
	if body := bodyOf(resp); resp.StatusCode != 403 || strings.Contains(body, "ASIASECRET") {
		t.Fatalf("uid 1000 got %d %q from the cache", resp.StatusCode, body)
	}
	if n := len(rootEnv.imds.received()); n != 2 {
		t.Fatalf("IMDS saw %d requests, want the PUT and one GET", n)
	}
}

// TestWithheldTokenAndShutdown: a container's token PUT beyond the hop
// limit gets no answer; the hold ends when the client leaves, and a held
// request does not hold up the daemon's shutdown.
func TestWithheldTokenAndShutdown(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.HopLimit = token.HopLimit{Host: 1, Container: 1}
		o.Identify = func(c net.Conn) identity.Caller {
			id := addressesOnly(c)
			id.Class = identity.Container
			return id
		}
	})
	addr, stop := serveUntil(t, e)
	put := "PUT /latest/api/token HTTP/1.1\r\nHost: x\r\nX-aws-ec2-metadata-token-ttl-seconds: 60\r\n\r\n"
	left, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(left, put)
	time.Sleep(100 * time.Millisecond)
	left.Close() // the client gives up
	held, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	io.WriteString(held, put)
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	select {
	case err := <-stop():
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("Serve returned %v after its context ended, a token PUT held", time.Since(start).Round(time.Millisecond))
	case <-time.After(ShutdownTimeout + time.Second):
		t.Fatal("a withheld token answer held up the shutdown")
	}
	if time.Since(start) > time.Second {
		t.Errorf("shutdown took %v with a held request, want well under a second", time.Since(start))
	}
	held.SetReadDeadline(time.Now().Add(time.Second))
	if n, _ := held.Read(make([]byte, 64)); n != 0 {
		t.Errorf("the held client got an answer")
	}
}

// A cached answer's header map is shared by every caller's answer
// (cache.Cache.FetchOutcome): nothing on the way to a caller may change it. Many
// callers at once, over the daemon's own server (origin form, GET and
// HEAD) and through goproxy (absolute form, as an HTTP proxy), then the
// entry's header is what IMDS gave and every caller saw it.
func TestCachedHeaderUnchanged(t *testing.T) {
	e := newEnv(t, withCache(t))
	addr := serve(t, e)
	cached := e.proxy.upstream.(cachedUpstream)
	paths := map[string]string{
		"/latest/meta-data/instance-id": "text/plain",
		"/latest/meta-data/iam":         "",
	}
	want := map[string]http.Header{}
	for p := range paths {
		resp, _, err := cached.FetchOutcome(context.Background(), http.MethodGet, p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want[p] = resp.Header.Clone()
	}
	proxyURL, err := url.Parse("http://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL)}}
			defer client.CloseIdleConnections()
			for j := range 20 {
				for p, ctype := range paths {
					method := []string{http.MethodGet, http.MethodHead}[j%2]
					var resp *http.Response
					if i%2 == 0 {
						resp = rawRequest(t, addr, method, p)
					} else {
						req, _ := http.NewRequest(method, "http://169.254.169.254"+p, nil)
						var err error
						if resp, err = client.Do(req); err != nil {
							t.Error(err)
							return
						}
					}
					resp.Body.Close()
					if got := resp.Header.Get("Content-Type"); resp.Header.Get("Server") != "EC2ws" || ctype != "" && got != ctype {
						t.Errorf("%s %s: header %v", method, p, resp.Header)
					}
				}
			}
		})
	}
	wg.Wait()
	for p := range paths {
		resp, o, err := cached.FetchOutcome(context.Background(), http.MethodGet, p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if o != cache.Hit || !reflect.DeepEqual(resp.Header, want[p]) {
			t.Errorf("%s after 320 answers: %s, header %v; want a hit with %v", p, o, resp.Header, want[p])
		}
	}
}
