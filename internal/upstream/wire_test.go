package upstream

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/internal/imds"
)

// rawIMDS answers on raw TCP with what answer returns for each request
// head it reads, and records the heads and the connections it accepted.
type rawIMDS struct {
	ln     net.Listener
	conns  atomic.Int64
	mu     sync.Mutex
	heads  []string
	answer func(n int, head string) (reply string, closeAfter bool)
}

func newRawIMDS(t *testing.T, answer func(n int, head string) (string, bool)) *rawIMDS {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &rawIMDS{ln: ln, answer: answer}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.conns.Add(1)
			go f.serve(c)
		}
	}()
	return f
}

func (f *rawIMDS) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		var head strings.Builder
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return
			}
			head.WriteString(l)
			if l == "\r\n" {
				break
			}
		}
		f.mu.Lock()
		f.heads = append(f.heads, head.String())
		n := len(f.heads)
		f.mu.Unlock()
		reply, closeAfter := f.answer(n, head.String())
		io.WriteString(c, reply)
		if closeAfter {
			return
		}
	}
}

func (f *rawIMDS) wire() *wire {
	d := &net.Dialer{Timeout: time.Second}
	return &wire{addr: f.ln.Addr().String(), host: "169.254.169.254", dial: d.DialContext}
}

func ok(body string) string {
	return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}

// TestWireRequestAndReuse: the request is exactly what imdsguard means to
// send; a connection IMDS keeps is reused; one it closes is not.
func TestWireRequestAndReuse(t *testing.T) {
	f := newRawIMDS(t, func(n int, head string) (string, bool) { return ok("i-1234567890abcdef0"), false })
	w := f.wire()
	defer w.close()
	for range 3 {
		resp, err := w.roundTrip(context.Background(), "GET", "/latest/meta-data/instance-id", [][2]string{{"User-Agent", "imdsguard/test"}, {"X-aws-ec2-metadata-token", "tok"}})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(b) != "i-1234567890abcdef0" || resp.ContentLength != 19 {
			t.Errorf("answer %d %q length %d", resp.StatusCode, b, resp.ContentLength)
		}
	}
	want := "GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: 169.254.169.254\r\nUser-Agent: imdsguard/test\r\nX-aws-ec2-metadata-token: tok\r\n\r\n"
	if f.heads[0] != want {
		t.Errorf("request head:\n%q\nwant\n%q", f.heads[0], want)
	}
	if n := f.conns.Load(); n != 1 {
		t.Errorf("3 requests on %d connections, want 1 kept", n)
	}

	closing := newRawIMDS(t, func(int, string) (string, bool) {
		return "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", true
	})
	cw := closing.wire()
	for range 3 {
		if _, err := cw.roundTrip(context.Background(), "GET", "/latest/meta-data/", nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := closing.conns.Load(); n != 3 {
		t.Errorf("IMDS closing every connection: 3 requests on %d connections", n)
	}
}

// TestWireStaleConnection: a kept connection that IMDS closed while it was
// idle is noticed and the request goes out on a new one.
func TestWireStaleConnection(t *testing.T) {
	f := newRawIMDS(t, func(n int, head string) (string, bool) {
		return ok("x"), n == 1 // answers, then closes without saying so
	})
	w := f.wire()
	defer w.close()
	for i := range 2 {
		if _, err := w.roundTrip(context.Background(), "GET", "/latest/meta-data/", nil); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		time.Sleep(50 * time.Millisecond) // let the close arrive
	}
	if n := f.conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2 (the stale one replaced)", n)
	}
}

// TestWireLimitsAndHead: a HEAD answer keeps IMDS's length and has no
// body; an answer beyond imds.MaxAnswer is an error; a header value with a line
// break is never sent.
func TestWireLimitsAndHead(t *testing.T) {
	f := newRawIMDS(t, func(n int, head string) (string, bool) {
		if strings.HasPrefix(head, "HEAD") {
			return "HTTP/1.1 200 OK\r\nContent-Length: 19\r\n\r\n", false
		}
		return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", imds.MaxAnswer+1, strings.Repeat("a", imds.MaxAnswer+1)), false
	})
	w := f.wire()
	defer w.close()
	resp, err := w.roundTrip(context.Background(), "HEAD", "/latest/meta-data/instance-id", nil)
	if err != nil || resp.ContentLength != 19 {
		t.Errorf("HEAD: %v, length %v", err, resp)
	}
	if _, err := w.roundTrip(context.Background(), "GET", "/latest/user-data", nil); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized answer: %v", err)
	}
	if _, err := w.roundTrip(context.Background(), "GET", "/latest/meta-data/", [][2]string{{"X-aws-ec2-metadata-token", "a\r\nX-Forwarded-For: 1.2.3.4"}}); err == nil {
		t.Errorf("a header value with a line break was sent")
	}
	if _, err := w.roundTrip(context.Background(), "GET", "/latest/meta-data/ HTTP/1.1\r\nX: y", nil); err == nil {
		t.Errorf("a path with spaces and line breaks was sent")
	}
}

// TestWireDeadlineAndCancel: IMDS that does not answer is given up at the
// context's deadline (a timeout, for the 504), and a cancelled context
// aborts the exchange at once.
func TestWireDeadlineAndCancel(t *testing.T) {
	f := newRawIMDS(t, func(int, string) (string, bool) { time.Sleep(2 * time.Second); return ok("late"), false })
	w := f.wire()
	defer w.close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := w.roundTrip(ctx, "GET", "/latest/meta-data/", nil)
	if err == nil || !IsTimeout(err) {
		t.Errorf("slow IMDS: %v, want a timeout", err)
	}
	t.Logf("slow IMDS given up after %v: %v", time.Since(start).Round(time.Millisecond), err)

	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start = time.Now()
	if _, err := w.roundTrip(ctx, "GET", "/latest/meta-data/", nil); err == nil {
		t.Errorf("cancelled request answered")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("cancelled request took %v", d)
	}
}
