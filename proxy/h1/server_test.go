package h1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

// echo answers with what the handler saw of the request: method, target,
// host, protocol and the header keys, so that two servers parsing the same
// bytes can be compared.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	keys := make([]string, 0, len(r.Header))
	for k, v := range r.Header {
		keys = append(keys, fmt.Sprintf("%s=%q", k, v))
	}
	slices.Sort(keys)
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprintf(w, "%s %s host=%q %s cl=%d te=%q %s", r.Method, r.RequestURI, r.Host, r.Proto, r.ContentLength, r.TransferEncoding, strings.Join(keys, ","))
})

// serveH1 runs an h1.Server with h on a loopback port.
func serveH1(t testing.TB, h http.Handler, tune func(*Server)) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Handler: h, MaxHeaderBytes: 8 << 10, ReadHeaderTimeout: 2 * time.Second, IdleTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}
	if tune != nil {
		tune(s)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, ln.Addr().String()
}

// serveStd runs net/http's server with h, as the proxy did before h1.
func serveStd(t testing.TB, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &http.Server{Handler: h, MaxHeaderBytes: 8 << 10, ReadHeaderTimeout: 2 * time.Second, ErrorLog: nil}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return ln.Addr().String()
}

// exchange sends raw on a new connection, closes its sending side, and
// reads one answer; status 0 when the connection ended without one.
func exchange(t testing.TB, addr, raw string) (status int, body string, resp *http.Response) {
	t.Helper()
	c := dialH1(t, addr)
	defer c.Close()
	if _, err := io.WriteString(c, raw); err != nil {
		return 0, "", nil
	}
	c.(*net.TCPConn).CloseWrite() // all sent: an incomplete request ends here, not at a timeout
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, "", nil
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp
}

// long makes targets and headers beyond MaxHeaderBytes.
var long = strings.Repeat("a", 9<<10)

// sameCases are the requests where parsers disagree in the wild:
// smuggling shapes, folding, odd targets, versions and sizes.
var sameCases = []string{
	"GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n",
	"GET /latest/meta-data/ HTTP/1.1\r\nHost: 169.254.169.254\r\nX-aws-ec2-metadata-token: abc\r\n\r\n",
	"GET /latest/meta-data/ HTTP/1.1\r\nhost: 169.254.169.254\r\n\r\n",
	"GET /latest/meta-data/ HTTP/1.1\r\nHOST: 169.254.169.254\r\n\r\n",
	"GET /latest/meta-data/ HTTP/1.1\r\n\r\n",
	"GET /latest/meta-data/ HTTP/1.1\r\nHost:\r\n\r\n",
	"GET /latest/meta-data/ HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
	"GET /latest/meta-data/ HTTP/1.1\r\nHost: a b\r\n\r\n",
	"GET /latest/meta-data/ HTTP/1.1\r\nHost: a/b\r\n\r\n",
	"GET /latest/meta-data/ HTTP/1.0\r\n\r\n",
	"GET /latest/meta-data/ HTTP/2.0\r\nHost: a\r\n\r\n",
	"GET /latest/meta-data/ HTTP/1.2\r\nHost: a\r\n\r\n",
	"GET /latest/meta-data/ HTTP/0.9\r\nHost: a\r\n\r\n",
	"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	"GET /latest/meta-data/\r\n\r\n",
	"GET  /latest/meta-data/ HTTP/1.1\r\nHost: a\r\n\r\n",
	"get /latest/meta-data/ HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET http://169.254.169.254/latest/meta-data/ HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n",
	"GET http://169.254.169.254/latest/meta-data/ HTTP/1.1\r\n\r\n",
	"GET http://169.254.169.254/latest/meta-data/ HTTP/1.1\r\nHost: a b\r\n\r\n",
	"GET http://169.254.169.254/latest/meta-data/ HTTP/1.1\r\nHost: other.example\r\n\r\n",
	"CONNECT 169.254.169.254:80 HTTP/1.1\r\n\r\n",
	"GET * HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET latest/meta-data/ HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /latest/meta-data/%2e%2e/ HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /latest/meta-data/\x00 HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /latest/meta-data/ HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n",
	"GET /latest/meta-data/ HTTP/1.1\r\nHost: a\r\nX Forwarded For: 1.2.3.4\r\n\r\n",
	"GET /latest/meta-data/ HTTP/1.1\r\nHost: a\r\nX-Forwarded-For : 1.2.3.4\r\n\r\n",
	"GET /latest/meta-data/ HTTP/1.1\r\nHost: a\r\n X-Forwarded-For: 1.2.3.4\r\n\r\n",
	"GET /latest/meta-data/ HTTP/1.1\r\nHost: a\r\n\t\r\n\r\n",
	"GET /latest/meta-data/ HTTP/1.1\r\nHost:\r\n a\r\n\r\n",
	"GET /latest/meta-data/ HTTP/1.1\r\nX-A: b\r\n Host: a\r\n\r\n",
	"GET http://169.254.169.254/latest/meta-data/ HTTP/1.1\r\nHost: a\r\n b\r\n\r\n",
	"GET /latest/meta-data/ HTTP/1.1\r\nHost: a\r\nX-Test: one\r\n two\r\n\r\n",
	"GET /latest/meta-data/ HTTP/1.1\r\nHost: a\r\nX-Test: a\x00b\r\n\r\n",
	"GET /latest/meta-data/ HTTP/1.1\r\nHost: a\r\nX-Test: a\x7fb\r\n\r\n",
	"GET /latest/meta-data/ HTTP/1.1\r\nHost: a\r\nX-Tést: a\r\n\r\n",
	"GET /latest/meta-data/ HTTP/1.1\r\nHost: a\r\n: empty\r\n\r\n",
	"GET /latest/meta-data/ HTTP/1.1\nHost: a\n\n",
	"GET /latest/meta-data/ HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
	"GET /latest/meta-data/ HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
	"GET /latest/meta-data/ HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
	"GET /latest/meta-data/ HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
	"GET /latest/meta-data/ HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc",
	"GET /latest/meta-data/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"GET /latest/meta-data/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
	"GET /latest/meta-data/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
	"GET /latest/meta-data/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
	"GET /latest/meta-data/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n",
	"PUT /latest/api/token HTTP/1.1\r\nHost: a\r\nX-aws-ec2-metadata-token-ttl-seconds: 60\r\n\r\n",
	"PUT /latest/api/token HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
	"PUT /latest/api/token HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n",
	"PUT /latest/api/token HTTP/1.1\r\nHost: a\r\nExpect: something\r\n\r\n",
	"GET /" + long + " HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX-Long: " + long + "\r\n\r\n",
}

// TestSameAsNetHTTP sends the same bytes to net/http's server and to h1's
// with the same handler: the status and what the handler saw must agree
// (the error texts of refused requests may differ). These are the requests
// where parsers disagree in the wild: smuggling shapes, folding, odd
// targets and versions.
func TestSameAsNetHTTP(t *testing.T) {
	std, h1 := serveStd(t, echo), ""
	_, h1 = serveH1(t, echo, nil)
	for _, raw := range sameCases {
		ss, sb, _ := exchange(t, std, raw)
		hs, hb, _ := exchange(t, h1, raw)
		name := raw
		if len(name) > 90 {
			name = name[:90] + "..."
		}
		if why := differ(ss, sb, hs, hb); why != "" {
			t.Errorf("%q: %s", name, why)
		}
	}
}

// differ says how two servers' answers to the same bytes disagree: the
// status, or what the handler saw; "" when they agree.
func differ(ss int, sb string, hs int, hb string) string {
	switch {
	case ss != hs:
		return fmt.Sprintf("net/http %d %q, h1 %d %q", ss, sb, hs, hb)
	case ss == http.StatusOK && sb != hb:
		return fmt.Sprintf("the handler saw\n net/http: %s\n h1:       %s", sb, hb)
	}
	return ""
}

// FuzzSameAsNetHTTP: any bytes, sent to both servers, get the same status
// and the same request seen (make fuzz runs it longer).
func FuzzSameAsNetHTTP(f *testing.F) {
	for _, raw := range sameCases {
		f.Add(raw)
	}
	std := serveStd(f, echo)
	_, h1 := serveH1(f, echo, nil)
	f.Fuzz(func(t *testing.T, raw string) {
		ss, sb, _ := exchange(t, std, raw)
		hs, hb, _ := exchange(t, h1, raw)
		if why := differ(ss, sb, hs, hb); why != "" {
			t.Errorf("%q: %s", raw, why)
		}
	})
}

// TestKeepAlive: several requests on one connection, pipelined too; the
// answer's head is net/http's shape (status line, sorted headers with Date
// and Content-Length); HTTP/1.0 closes unless it asked for keep-alive.
func TestKeepAlive(t *testing.T) {
	_, addr := serveH1(t, echo, nil)
	c := dialH1(t, addr)
	defer c.Close()
	br := bufio.NewReader(c)
	io.WriteString(c, "GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n")
	for _, want := range []string{"GET /a", "GET /b"} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if !strings.HasPrefix(string(b), want) || resp.Close || resp.Header.Get("Date") == "" || resp.ContentLength != int64(len(b)) {
			t.Errorf("pipelined %s: %q close=%v date=%q length=%d", want, b, resp.Close, resp.Header.Get("Date"), resp.ContentLength)
		}
	}
	io.WriteString(c, "GET /c HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || !resp.Close {
		t.Fatalf("Connection: close: %v, close=%v", err, resp != nil && resp.Close)
	}
	io.ReadAll(resp.Body)
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("after Connection: close, the connection is still open: %v", err)
	}

	for _, tc := range []struct {
		raw       string
		keep      bool
		connValue string
	}{
		{"GET / HTTP/1.0\r\n\r\n", false, "close"},
		{"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true, "keep-alive"},
	} {
		_, _, resp := exchange(t, addr, tc.raw)
		if resp == nil || resp.Close == tc.keep || resp.Header.Get("Connection") != tc.connValue || resp.Proto != "HTTP/1.0" {
			t.Errorf("%q: %+v", tc.raw, resp)
		}
	}
}

// TestHeadAndStatuses: HEAD keeps the handler's Content-Length and sends no
// body; 204 and 304 have neither.
func TestHeadAndStatuses(t *testing.T) {
	_, addr := serveH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/599":
			w.WriteHeader(599)
		default:
			w.Header().Set("Content-Length", "19")
			w.WriteHeader(http.StatusOK)
			if r.Method != http.MethodHead {
				io.WriteString(w, "i-1234567890abcdef0")
			}
		}
	}), nil)
	c := dialH1(t, addr)
	defer c.Close()
	io.WriteString(c, "HEAD /x HTTP/1.1\r\nHost: a\r\n\r\nGET /204 HTTP/1.1\r\nHost: a\r\n\r\nGET /599 HTTP/1.1\r\nHost: a\r\n\r\n")
	raw := make([]byte, 4096)
	var got []byte
	for !strings.Contains(string(got), "599 status code 599") || !strings.HasSuffix(string(got), "\r\n\r\n") {
		n, err := c.Read(raw)
		if err != nil {
			t.Fatalf("read: %v; so far %q", err, got)
		}
		got = append(got, raw[:n]...)
	}
	s := string(got)
	head, rest, _ := strings.Cut(s, "\r\n\r\n")
	if !strings.Contains(head, "Content-Length: 19") || !strings.HasPrefix(rest, "HTTP/1.1 204 No Content\r\n") {
		t.Errorf("HEAD answer:\n%s", s)
	}
	noContent, _, _ := strings.Cut(rest, "\r\n\r\n")
	if strings.Contains(noContent, "Content-Length") {
		t.Errorf("204 with a length:\n%s", noContent)
	}
}

// TestBodyClosesConnection: a request with a body is answered, its body
// never read, and the connection ends (the answer is not lost to a reset).
func TestBodyClosesConnection(t *testing.T) {
	_, addr := serveH1(t, echo, nil)
	body := strings.Repeat("x", 100<<10)
	status, got, resp := exchange(t, addr, "PUT /latest/api/token HTTP/1.1\r\nHost: a\r\nContent-Length: "+fmt.Sprint(len(body))+"\r\n\r\n"+body)
	if status != http.StatusOK || !strings.HasPrefix(got, "PUT /latest/api/token") || !resp.Close {
		t.Errorf("status %d %q close=%v", status, got, resp != nil && resp.Close)
	}
}

// TestLimits: an oversized header gets 431; a client that stops sending
// its header is cut off after ReadHeaderTimeout; an idle connection after
// IdleTimeout.
func TestLimits(t *testing.T) {
	_, addr := serveH1(t, echo, func(s *Server) {
		s.ReadHeaderTimeout, s.IdleTimeout = 300*time.Millisecond, 300*time.Millisecond
	})
	status, _, _ := exchange(t, addr, "GET / HTTP/1.1\r\nHost: a\r\n"+strings.Repeat("X-A: "+strings.Repeat("b", 100)+"\r\n", 200)+"\r\n")
	if status != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("oversized header: %d, want 431", status)
	}
	for _, part := range []string{"GET / HTTP/1.1\r\nHost: a\r\n", ""} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, part)
		start := time.Now()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := c.Read(make([]byte, 64))
		if n != 0 || err == nil {
			t.Errorf("%q then silence: read %d, %v; want the connection closed", part, n, err)
		}
		t.Logf("%q then silence: closed after %v", part, time.Since(start).Round(time.Millisecond))
		c.Close()
	}
}

// TestHeaderTimeoutAfterKeepAlive: on a connection that has been served
// (its idle deadline is long), a head that stops coming is cut off after
// ReadHeaderTimeout, not IdleTimeout: the idle deadline kept between
// requests never stands in for the header's.
func TestHeaderTimeoutAfterKeepAlive(t *testing.T) {
	_, addr := serveH1(t, echo, func(s *Server) {
		s.ReadHeaderTimeout, s.IdleTimeout = 300*time.Millisecond, 20*time.Second
	})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for i := range 3 {
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n")
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := br.Read(make([]byte, 64))
	waited := time.Since(start)
	if n != 0 || err == nil || waited > 5*time.Second {
		t.Errorf("head cut short after 3 requests: read %d, %v after %v; want the connection closed after ReadHeaderTimeout (300ms)", n, err, waited)
	}
	t.Logf("closed %v after the partial head", waited.Round(time.Millisecond))
}

// TestSetHeader: a header handed over with SetHeader is the answer's (the
// server adds what it always adds); the connection's next answer starts
// from an empty header again, and a handler's own map is not cleared.
func TestSetHeader(t *testing.T) {
	var handed http.Header
	_, addr := serveH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/handed" {
			handed = http.Header{"X-Handed": {"1"}, "Content-Type": {"text/plain"}}
			if !SetHeader(w, handed) {
				t.Error("SetHeader refused before WriteHeader")
			}
			io.WriteString(w, "body")
			if SetHeader(w, http.Header{}) {
				t.Error("SetHeader accepted after the header was written")
			}
			return
		}
		w.Header().Set("X-Own", "1")
	}), nil)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for _, path := range []string{"/handed", "/own", "/handed", "/own"} {
		io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: a\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		got := fmt.Sprintf("%s %s own=%q content-length=%q", resp.Header.Get("X-Handed"), body, resp.Header.Get("X-Own"), resp.Header.Get("Content-Length"))
		want := map[string]string{"/handed": `1 body own="" content-length="4"`, "/own": `  own="1" content-length="0"`}[path]
		if got != want {
			t.Errorf("%s: %s, want %s", path, got, want)
		}
	}
	if handed.Get("X-Handed") != "1" {
		t.Errorf("the handed-over header was cleared: %v", handed)
	}
}

func TestHeadLen(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int
	}{
		{"", 0},
		{"GET / HTTP/1.1\r\n", 0},
		{"GET / HTTP/1.1\r\nHost: a\r\n", 0},
		{"GET / HTTP/1.1\r\nHost: a\r\n\r", 0},
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27},
		{"GET / HTTP/1.1\nHost: a\n\n", 24},
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /next", 27},
		{"GET / HTTP/1.1\r\nX: a\r\n b\r\n", 0},
		{"\r\n\r\n", 4}, // no request line: ReadRequest refuses it from the buffer
	} {
		if got := headLen([]byte(c.in)); got != c.want {
			t.Errorf("headLen(%q) = %d, want %d", c.in, got, c.want)
		}
	}
}

// TestLazyDeadline: a deadline is set when none is, when the one set is
// later than wanted (a shorter timeout), or earlier by more than the
// slack; otherwise it is left as it is.
func TestLazyDeadline(t *testing.T) {
	var set []time.Time
	record := func(d time.Time) error { set = append(set, d); return nil }
	now := time.Now()
	cur := lazyDeadline(record, time.Time{}, time.Minute)
	if len(set) != 1 || cur.Sub(now) < time.Minute-time.Second {
		t.Fatalf("first: set %v, in force %v", set, cur)
	}
	if got := lazyDeadline(record, cur, time.Minute); len(set) != 1 || !got.Equal(cur) {
		t.Errorf("again at once: set %v, in force %v; want it left", set, got)
	}
	if got := lazyDeadline(record, cur, time.Second); len(set) != 2 || !got.Before(cur) {
		t.Errorf("a shorter timeout: set %v, in force %v; want a new, earlier one", set, got)
	}
	old := time.Now().Add(time.Minute - 2*deadlineSlack)
	if got := lazyDeadline(record, old, time.Minute); len(set) != 3 || !got.After(old) {
		t.Errorf("an older one: set %v, in force %v; want a new one", set, got)
	}
	if got := lazyDeadline(record, cur, 0); len(set) != 4 || !got.IsZero() || !set[3].IsZero() {
		t.Errorf("no timeout: set %v, in force %v; want the deadline cleared", set, got)
	}
	if lazyDeadline(record, time.Time{}, 0); len(set) != 4 {
		t.Errorf("no timeout and none set: set %v; want nothing done", set)
	}
}

// TestAbortAndPanic: http.ErrAbortHandler ends the connection without an
// answer; so does a panic, which is logged, and the server goes on.
func TestAbortAndPanic(t *testing.T) {
	_, addr := serveH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/abort":
			panic(http.ErrAbortHandler)
		case "/panic":
			panic("boom")
		}
		io.WriteString(w, "ok")
	}), nil)
	for _, p := range []string{"/abort", "/panic"} {
		if status, _, _ := exchange(t, addr, "GET "+p+" HTTP/1.1\r\nHost: a\r\n\r\n"); status != 0 {
			t.Errorf("%s: answered %d, want no answer", p, status)
		}
	}
	if status, body, _ := exchange(t, addr, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"); status != 200 || body != "ok" {
		t.Errorf("after the panics: %d %q", status, body)
	}
}

// TestHijack: a handler that hijacks (goproxy refusing CONNECT) owns the
// connection and what the server had buffered.
func TestHijack(t *testing.T) {
	_, addr := serveH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, rw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		rest, _ := rw.Reader.Peek(rw.Reader.Buffered())
		fmt.Fprintf(rw, "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(rest), rest)
		rw.Flush()
	}), nil)
	status, body, _ := exchange(t, addr, "CONNECT a:80 HTTP/1.1\r\n\r\nextra")
	if status != http.StatusMethodNotAllowed || body != "extra" {
		t.Errorf("hijacked: %d %q", status, body)
	}
}

// TestShutdown: idle connections close at once, a request in flight
// finishes with Connection: close, and Serve returns ErrServerClosed.
func TestShutdown(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	s, addr := serveH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			started <- struct{}{}
			<-release
		}
		io.WriteString(w, "ok")
	}), nil)
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	io.WriteString(idle, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	ibr := bufio.NewReader(idle)
	resp, err := http.ReadResponse(ibr, nil)
	if err != nil || resp.Close {
		t.Fatalf("idle connection's first answer: %v", err)
	}
	io.ReadAll(resp.Body)
	busy := make(chan *http.Response, 1)
	go func() {
		_, _, resp := exchange(t, addr, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
		busy <- resp
	}()
	<-started
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := ibr.ReadByte(); err != io.EOF {
		t.Errorf("idle connection during shutdown: %v, want EOF", err)
	}
	close(release)
	if resp := <-busy; resp == nil || !resp.Close {
		t.Errorf("request in flight: %+v, want an answer with Connection: close", resp)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Errorf("still accepting after Shutdown")
	}
}

// TestHeaderInjection: a header value with a line break, or a name that is
// not a token, never adds a line to the answer (as net/http).
func TestHeaderInjection(t *testing.T) {
	_, addr := serveH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["X-Value"] = []string{"a\r\nX-Injected: 1"}
		w.Header()["X-Bad\r\nX-Injected"] = []string{"2"}
		io.WriteString(w, "ok")
	}), nil)
	status, _, resp := exchange(t, addr, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	if status != 200 || resp.Header.Get("X-Injected") != "" || resp.Header.Get("X-Value") != "a  X-Injected: 1" {
		t.Errorf("status %d, header %v", status, resp.Header)
	}
}

type stateKey struct{}

// TestWaitGone: a held request ends when its client closes, or when the
// server shuts down, long before the hold.
func TestWaitGone(t *testing.T) {
	ended := make(chan time.Duration, 4)
	s, addr := serveH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx := Context(w, r)
		if ctx.Value(stateKey{}) != "state" {
			t.Error("Context(w, r) lacks the connection's state")
		}
		WaitGone(ctx, 20*time.Second)
		ended <- time.Since(start)
		panic(http.ErrAbortHandler)
	}), func(s *Server) {
		// as the proxy does: its own state in the connection's context
		s.ConnContext = func(ctx context.Context, _ net.Conn) context.Context {
			return context.WithValue(ctx, stateKey{}, "state")
		}
	})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "PUT /latest/api/token HTTP/1.1\r\nHost: a\r\n\r\n")
	time.Sleep(100 * time.Millisecond)
	c.Close()
	select {
	case d := <-ended:
		t.Logf("client closed: hold ended after %v", d.Round(time.Millisecond))
	case <-time.After(5 * time.Second):
		t.Fatal("the hold went on after the client closed")
	}

	c2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	io.WriteString(c2, "PUT /latest/api/token HTTP/1.1\r\nHost: a\r\n\r\n")
	time.Sleep(100 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown with a held request: %v", err)
	}
	select {
	case d := <-ended:
		t.Logf("shutdown: hold ended after %v", d.Round(time.Millisecond))
	default:
		t.Error("the held request outlived Shutdown")
	}
	c2.SetReadDeadline(time.Now().Add(time.Second))
	if n, err := c2.Read(make([]byte, 16)); n != 0 || err == nil {
		t.Errorf("the held client got %d bytes, %v; want the connection closed without an answer", n, err)
	}
}

// TestServerHeadersReplaceHandlers: the framing headers a handler sets are
// replaced by the server's: the body's own length, no chunking (net/http
// would chunk; an h1 answer is always whole), and "Connection: close" on
// the last answer.
func TestServerHeadersReplaceHandlers(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Transfer-Encoding", "chunked")
		w.Header().Set("Content-Length", "999")
		w.Header().Set("Connection", "keep-alive")
		w.Header().Set("X-Kept", "yes")
		io.WriteString(w, "i-1234567890abcdef0")
	})
	_, addr := serveH1(t, h, nil)
	c := dialH1(t, addr)
	defer c.Close()
	io.WriteString(c, "GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	head, body, _ := strings.Cut(string(got), "\r\n\r\n")
	var lines []string
	for _, l := range strings.Split(head, "\r\n")[1:] {
		if !strings.HasPrefix(l, "Date: ") {
			lines = append(lines, l)
		}
	}
	want := []string{"X-Kept: yes", "Content-Type: text/plain; charset=utf-8", "Connection: close", "Content-Length: 19"}
	if !slices.Equal(lines, want) || body != "i-1234567890abcdef0" {
		t.Errorf("answered %q, body %q; want %q", lines, body, want)
	}
}

// dialH1 connects to a test server at addr, with 5 s to do all the test
// does on the connection; the caller closes it.
func dialH1(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	return c
}

// A connection parses each request of the common shape into the same
// memory (parseCommon): requests one after another on a connection, each
// with other headers than the one before, reach the handler as
// http.ReadRequest reads each on its own.
func TestCommonRequestsInTurn(t *testing.T) {
	_, addr := serveH1(t, echo, nil)
	c := dialH1(t, addr)
	defer c.Close()
	br := bufio.NewReader(c)
	heads := []string{
		"GET /latest/meta-data/a HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\nF: 6\r\nG: 7\r\nH: 8\r\nI: 9\r\nX-Aws-Ec2-Metadata-Token: t1\r\n\r\n",
		"GET /latest/%6deta-data/b HTTP/1.1\r\nHost: b\r\nUser-Agent: u\r\n\r\n",
		"PUT /latest/api/token HTTP/1.1\r\nHost: c\r\nX-Aws-Ec2-Metadata-Token-Ttl-Seconds: 60\r\n\r\n",
		"GET /c HTTP/1.1\r\nHost: d\r\n\r\n",
	}
	for round := range 2 { // one at a time, then all in one write
		if round == 1 {
			io.WriteString(c, strings.Join(heads, ""))
		}
		for _, head := range heads {
			if round == 0 {
				io.WriteString(c, head)
			}
			req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head)))
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			echo(rec, req)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			if string(b) != rec.Body.String() {
				t.Errorf("round %d: %q reached the handler as\n%s\nwant\n%s", round, head, b, rec.Body)
			}
		}
	}
}
