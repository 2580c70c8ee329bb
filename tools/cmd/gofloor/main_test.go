package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestHeads(t *testing.T) {
	for _, c := range []struct {
		in      string
		n, used int
	}{
		{"", 0, 0},
		{"GET / HTTP/1.1\r\nHost: a\r\n", 0, 0},
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 1, 27},
		{"GET / HTTP/1.1\nHost: a\n\n", 1, 24},
		{"GET / HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\nGET", 2, 37},
	} {
		if n, used := heads([]byte(c.in)); n != c.n || used != c.used {
			t.Errorf("heads(%q) = %d, %d; want %d, %d", c.in, n, used, c.n, c.used)
		}
	}
}

func TestServes(t *testing.T) {
	// With -work each answer comes no sooner than that after its request:
	// a bound from below, which no slow machine can break.
	const work = 2 * time.Millisecond
	modes := map[string]func(net.Listener, time.Duration) error{
		"goroutine": func(ln net.Listener, w time.Duration) error { go serveGoroutines(ln, constant(w)); return nil },
	}
	if runtime.GOOS == "linux" {
		modes["epoll"] = func(ln net.Listener, w time.Duration) error { return serveEpoll(ln, 2, w) }
	}
	for name, serve := range modes {
		for _, w := range []time.Duration{0, work} {
			t.Run(name+"/work="+w.String(), func(t *testing.T) {
				testServes(t, func(ln net.Listener) error { return serve(ln, w) }, w, name == "goroutine")
			})
		}
	}
}

// testServes checks a constant server: answers on one kept-alive
// connection, pipelined heads and a head in two writes, each answer at
// least work after its request.
func testServes(t *testing.T, serve func(net.Listener) error, work time.Duration, closes bool) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := serve(ln); err != nil {
		t.Fatal(err)
	}
	// The epoll loops run for the rest of the test binary: they
	// hold the listener's descriptor, so it stays open too.
	if closes {
		defer ln.Close()
	}
	url := "http://" + ln.Addr().String() + "/latest/meta-data/instance-id"
	client := &http.Client{Timeout: 5 * time.Second}
	for range 3 { // on one kept-alive connection
		start := time.Now()
		resp, err := client.Get(url)
		if took := time.Since(start); err == nil && took < work {
			t.Errorf("answered after %v, before the %v of work", took, work)
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || string(body) != "i-1234567890abcdef0" {
			t.Fatalf("GET: %d %q %v", resp.StatusCode, body, err)
		}
	}
	client.CloseIdleConnections()

	// Two heads in one write, then a third in two halves.
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	head := "GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: a\r\n\r\n"
	if _, err := io.WriteString(c, head+head+head[:20]); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for i := range 3 {
		if i == 2 {
			if _, err := io.WriteString(c, head[20:]); err != nil {
				t.Fatal(err)
			}
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("answer %d: %v", i+1, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if string(body) != "i-1234567890abcdef0" {
			t.Fatalf("answer %d: %q", i+1, body)
		}
	}
}

func TestAnswerWith(t *testing.T) {
	want := "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 19\r\nServer: EC2ws\r\n\r\ni-1234567890abcdef0"
	if got := string(answer); got != want {
		t.Errorf("default answer %q, want %q", got, want)
	}
	if got := string(answerWith("ami-0")); got != "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nServer: EC2ws\r\n\r\nami-0" {
		t.Errorf("answerWith: %q", got)
	}
}

func TestProxy(t *testing.T) {
	var mu sync.Mutex
	open, most, served := 0, 0, 0
	// A connection the upstream closes after its answer counts as closed
	// from that answer on: the pool may dial its successor before the
	// upstream's side has finished closing it.
	closing := map[net.Conn]bool{}
	type connKey struct{}
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		served++
		if served%7 == 0 {
			w.Header().Set("Connection", "close") // the pool dials again
			closing[r.Context().Value(connKey{}).(net.Conn)] = true
			open--
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
		if r.URL.Path == "/missing" {
			w.WriteHeader(http.StatusNotFound)
		}
		io.WriteString(w, r.URL.Path+" "+r.Header.Get("X-aws-ec2-metadata-token"))
	}))
	up.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		return context.WithValue(ctx, connKey{}, c)
	}
	up.Config.ConnState = func(c net.Conn, s http.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		switch s {
		case http.StateNew:
			open++
			most = max(most, open)
		case http.StateClosed, http.StateHijacked:
			if !closing[c] {
				open--
			}
		}
	}
	up.Start()
	defer up.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go serveGoroutines(ln, newUpstreamPool(up.Listener.Addr().String(), 2).serveConn)

	get := func(client *http.Client, path, token string) (int, string, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+ln.Addr().String()+path, nil)
		req.Header.Set("X-aws-ec2-metadata-token", token)
		resp, err := client.Do(req)
		if err != nil {
			t.Error(err)
			return 0, "", ""
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
	}
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
			defer client.CloseIdleConnections()
			for j := range 5 {
				path, token := "/latest/meta-data/p"+strconv.Itoa(j), "tok"+strconv.Itoa(i)
				if status, ctype, body := get(client, path, token); status != 200 || ctype != "text/plain" || body != path+" "+token {
					t.Errorf("GET %s: %d %q %q", path, status, ctype, body)
				}
			}
		})
	}
	wg.Wait()
	client := &http.Client{Timeout: 5 * time.Second}
	if status, _, body := get(client, "/missing", "x"); status != 404 || body != "/missing x" {
		t.Errorf("GET /missing: %d %q, want IMDS's 404 passed on", status, body)
	}
	mu.Lock()
	if most > 2 {
		t.Errorf("%d upstream connections open at once, want at most -conns 2", most)
	}
	if served != 51 {
		t.Errorf("upstream served %d requests, want 51", served)
	}
	mu.Unlock()

	up.Close() // an upstream that is gone: 502, and the proxy goes on
	if status, _, _ := get(client, "/latest/meta-data/p0", "x"); status != http.StatusBadGateway {
		t.Errorf("upstream gone: %d, want 502", status)
	}
}

func TestReadHead(t *testing.T) {
	for _, c := range []struct {
		in, target, token string
		ok                bool
	}{
		{"GET /a HTTP/1.1\r\nHost: x\r\nx-aws-ec2-metadata-token: T1 \r\n\r\n", "/a", "T1", true},
		{"GET /a HTTP/1.1\nHost: x\n\n", "/a", "", true},
		{"GET /a HTTP/1.1\r\nX-aws-ec2-metadata-token: a\rb\r\n\r\n", "", "", false},
		{"GET /a\r\n\r\n", "", "", false},
		{"GET /a HTTP/1.1\r\n", "", "", false},
	} {
		target, token, ok := readHead(bufio.NewReader(strings.NewReader(c.in)))
		if target != c.target || token != c.token || ok != c.ok {
			t.Errorf("readHead(%q) = %q, %q, %v; want %q, %q, %v", c.in, target, token, ok, c.target, c.token, c.ok)
		}
	}
}
