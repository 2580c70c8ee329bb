package cache

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

const ms = time.Millisecond

// Each class and status is held exactly as long as docs/CACHE.md says:
// a hit until the background refresh is due (refreshing classes), and a
// miss once the answer's lifetime is over. Time is the bubble's: it passes
// only in the test's sleeps, so lifetimes are exact.
func TestLifetimes(t *testing.T) {
	for _, c := range []struct {
		path    string
		status  int
		fresh   time.Duration
		refresh time.Duration // 0: no background refresh
	}{
		{"/latest/meta-data/instance-id", 200, StaticTTL, StaticTTL * 3 / 4},
		{"/2009-04-04/user-data", 200, StaticTTL, StaticTTL * 3 / 4},
		{"/latest/meta-data/placement", 301, StaticTTL, StaticTTL * 3 / 4},
		{"/latest/meta-data/public-ipv4", 200, DynamicTTL, DynamicTTL * 3 / 4},
		{"/latest/meta-data/", 200, DynamicTTL, DynamicTTL * 3 / 4},
		{"/latest/meta-data/iam/security-credentials/", 200, DynamicTTL, DynamicTTL * 3 / 4},
		{"/latest/meta-data/spot/instance-action", 200, EventTTL, 0},
		{"/latest/meta-data/spot/instance-action", 404, EventTTL, 0},
		{"/latest/meta-data/events/maintenance/scheduled", 200, EventTTL, 0},
		{"/latest/meta-data/autoscaling/target-lifecycle-state", 200, EventTTL, 0},
		{"/latest/meta-data/iam/info", 404, NotFoundTTL, 0},
		{"/latest/meta-data/kernel-id", 404, NotFoundTTL, 0},
		{"/latest/meta-data/iam/security-credentials/gone", 404, NotFoundTTL, 0},
		{"/latest/meta-data/iam/security-credentials/odd", 200, MinTTL, 0}, // not a credentials document
	} {
		t.Run(c.path+"/"+http.StatusText(c.status), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFake(map[string]fakeAnswer{c.path: {status: c.status, body: "v1"}})
				cache := newTestCache(t, f, testConfig())
				if _, _, o := get(t, cache, c.path); o != Miss {
					t.Fatalf("first read: %s, want miss", o)
				}
				first := c.fresh
				if c.refresh != 0 {
					first = c.refresh
				}
				time.Sleep(first - ms)
				if code, _, o := get(t, cache, c.path); o != Hit || code != c.status {
					t.Fatalf("at %v: %d %s, want %d hit", first-ms, code, o, c.status)
				}
				if c.refresh != 0 {
					time.Sleep(ms) // at the refresh point: still a hit, refreshed behind it
					if _, _, o := get(t, cache, c.path); o != Hit {
						t.Fatalf("past the refresh point: %s, want hit", o)
					}
					synctest.Wait()
					if n := f.count(c.path); n != 2 {
						t.Fatalf("background refresh: %d upstream reads, want 2", n)
					}
					if s := cache.Stats(); s.Refreshes != 1 {
						t.Fatalf("Stats.Refreshes = %d, want 1", s.Refreshes)
					}
				}
				if c.refresh != 0 {
					time.Sleep(c.fresh) // the refreshed answer's lifetime, from the refresh
				} else {
					time.Sleep(ms) // exactly the lifetime
				}
				if _, _, o := get(t, cache, c.path); o != Miss {
					t.Fatalf("after %v: %s, want miss", c.fresh, o)
				}
			})
		})
	}
}

// Errors are never kept: each read after one goes to IMDS again (after the
// back-off, for failures). Other answers that are not facts (403, 400) are
// passed on and not kept either.
func TestErrorsNotCached(t *testing.T) {
	for _, status := range []int{401, 403, 400, 429, 500, 502, 503, 504} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const p = "/latest/meta-data/instance-id"
				f := newFake(map[string]fakeAnswer{p: {status: status, body: "err"}})
				cache := newTestCache(t, f, testConfig())
				for i := 1; i <= 3; i++ {
					if code, _, o := get(t, cache, p); code != status || o != Miss {
						t.Fatalf("read %d: %d %s, want %d miss", i, code, o, status)
					}
					if n := f.count(p); n != i {
						t.Fatalf("read %d: %d upstream reads, want %d", i, n, i)
					}
				}
				if s := cache.Stats(); s.Bytes > slotOverhead+int64(len(p)) {
					t.Fatalf("an error answer is held: %d bytes", s.Bytes)
				}
			})
		})
	}
}

// An answer that IMDS replaces with one that is not kept (here 403) is no
// longer served.
func TestReplacedByUncacheable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const p = "/latest/meta-data/public-ipv4"
		f := newFake(map[string]fakeAnswer{p: {status: 200, body: "192.0.2.1"}})
		cache := newTestCache(t, f, testConfig())
		get(t, cache, p)
		f.set(p, fakeAnswer{status: 403, body: "forbidden"})
		time.Sleep(DynamicTTL + ms)
		if code, _, _ := get(t, cache, p); code != 403 {
			t.Fatalf("got %d, want 403", code)
		}
		if code, _, o := get(t, cache, p); code != 403 || o != Miss {
			t.Fatalf("after the 403: %d %s, want 403 miss", code, o)
		}
	})
}

// Callers see only the headers IMDS answers with that are theirs to see;
// each gets its own response over the same bytes and the same header map
// (read only: TestCachedHeaderUnchanged in package proxy holds the proxy to
// that); a HEAD is answered from the GET: its headers, Content-Length
// included, and no body.
func TestResponses(t *testing.T) {
	const p = "/latest/meta-data/placement"
	f := newFake(map[string]fakeAnswer{p: {status: 301, body: "<html>moved</html>", header: http.Header{
		"Location": {"/latest/meta-data/placement/"}, "Last-Modified": {"Mon, 01 Jan 2024 00:00:00 GMT"},
		"Etag": {`"abc"`}, "Connection": {"close"}, "Date": {"Mon, 01 Jan 2024 00:00:00 GMT"},
		"X-Aws-Ec2-Metadata-Token-Ttl-Seconds": {"21600"}, "Content-Length": {"999"}, "Set-Cookie": {"a=b"},
	}}})
	cache := newTestCache(t, f, testConfig())
	want := http.Header{
		"Server": {"EC2ws"}, "Content-Type": {"text/plain"}, "Location": {"/latest/meta-data/placement/"},
		"Last-Modified": {"Mon, 01 Jan 2024 00:00:00 GMT"}, "Etag": {`"abc"`}, "Content-Length": {"18"},
	}
	for i, method := range []string{"GET", "GET", "HEAD", "GET", "GET", "HEAD", "GET"} {
		resp, o, err := cache.FetchOutcome(context.Background(), method, p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 301 || resp.ContentLength != 18 || (i == 0) != (o == Miss) {
			t.Fatalf("%s #%d: %d len %d %s", method, i, resp.StatusCode, resp.ContentLength, o)
		}
		if method == "HEAD" && len(b) != 0 || method == "GET" && string(b) != "<html>moved</html>" {
			t.Fatalf("%s #%d: body %q", method, i, b)
		}
		if len(resp.Header) != len(want) {
			t.Errorf("%s #%d: headers %v, want %v", method, i, resp.Header, want)
		}
		for k, v := range want {
			if got := resp.Header[k]; len(got) != 1 || got[0] != v[0] {
				t.Errorf("%s #%d: %s = %q, want %q", method, i, k, got, v)
			}
		}
	}
	if len(f.methods) != 1 || f.methods[0] != "GET" {
		t.Fatalf("upstream requests %v, want one GET", f.methods)
	}
}

// Each hit is a whole answer of its own, whatever a caller read of the
// one before.
func TestHitsAreIndependent(t *testing.T) {
	const p = "/latest/meta-data/instance-id"
	f := newFake(map[string]fakeAnswer{p: {status: 200, body: "i-0123456789abcdef0"}})
	cache := newTestCache(t, f, testConfig())
	get(t, cache, p)
	ctx := context.Background()
	resp, _, _ := cache.FetchOutcome(ctx, "GET", p)
	resp.Body.Read(make([]byte, 5)) // a caller that read part of the body
	for _, method := range []string{"HEAD", "GET"} {
		resp, o, err := cache.FetchOutcome(ctx, method, p)
		if err != nil || o != Hit {
			t.Fatalf("%s: %v, %s", method, err, o)
		}
		b, _ := io.ReadAll(resp.Body)
		if want := map[string]string{"HEAD": "", "GET": "i-0123456789abcdef0"}[method]; string(b) != want || resp.ContentLength != 19 {
			t.Errorf("%s: body %q, length %d; want %q, 19", method, b, resp.ContentLength, want)
		}
	}
}

// A held body is read by many callers at once, each from the start.
func TestConcurrentBodies(t *testing.T) {
	const p = "/latest/user-data"
	body := strings.Repeat("0123456789", 1600)
	f := newFake(map[string]fakeAnswer{p: {status: 200, body: body}})
	cache := newTestCache(t, f, testConfig())
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := cache.Fetch(context.Background(), "GET", p)
			if err != nil {
				t.Error(err)
				return
			}
			var sb strings.Builder
			io.Copy(&sb, resp.Body)
			if sb.String() != body {
				t.Errorf("body of %d bytes differs", sb.Len())
			}
		}()
	}
	wg.Wait()
}

// Other methods, the token path and a disabled cache pass straight through.
func TestBypass(t *testing.T) {
	f := newFake(map[string]fakeAnswer{"/latest/api/token": {status: 200, body: "t"}, "/latest/meta-data/instance-id": {status: 200, body: "i"}})
	cache := newTestCache(t, f, testConfig())
	off := testConfig()
	off.Enabled = false
	disabled := newTestCache(t, f, off)
	for _, c := range []struct {
		c      *Cache
		method string
		path   string
	}{
		{cache, "PUT", "/latest/api/token"},
		{cache, "GET", "/latest/api/token"},
		{cache, "HEAD", "/latest/api/token"},
		{cache, "POST", "/latest/meta-data/instance-id"},
		{disabled, "GET", "/latest/meta-data/instance-id"},
	} {
		before := f.total.Load()
		for range 2 {
			resp, o, err := c.c.FetchOutcome(context.Background(), c.method, c.path)
			if err != nil || o != Bypass {
				t.Fatalf("%s %s: %v %s, want bypass", c.method, c.path, err, o)
			}
			resp.Body.Close()
		}
		if n := f.total.Load() - before; n != 2 {
			t.Errorf("%s %s: %d upstream requests, want 2", c.method, c.path, n)
		}
		if m := f.methods[len(f.methods)-1]; m != c.method {
			t.Errorf("%s %s went upstream as %s", c.method, c.path, m)
		}
	}
	if s := cache.Stats(); s.Entries != 0 || s.Bypass != 8 {
		t.Fatalf("Stats %+v: bypassed reads held or not counted", s)
	}
}
