package testbed

import (
	"io"
	"net"
	"testing"
	"time"
)

// TestRawRequestBytes checks that the request leaves byte for byte and the
// response is parsed, HEAD included.
func TestRawRequestBytes(t *testing.T) {
	cases := []struct {
		method, target string
		headers        []string
		wire           string
	}{
		{"GET", `/latest/meta-data\iam\`, nil,
			"GET /latest/meta-data\\iam\\ HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n"},
		{"get", "http://169.254.169.254/x?y", []string{"x-forwarded-for: ", "A: b"},
			"get http://169.254.169.254/x?y HTTP/1.1\r\nHost: 169.254.169.254\r\nx-forwarded-for: \r\nA: b\r\n\r\n"},
		{"HEAD", "/h", nil, "HEAD /h HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n"},
	}
	for _, c := range cases {
		t.Run(c.method+c.target, func(t *testing.T) {
			addr, got := oneShot(t, "HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\nServer: EC2ws\r\n\r\nno")
			r, err := RawRequest(addr, c.method, c.target, c.headers)
			if err != nil {
				t.Fatal(err)
			}
			if wire := <-got; wire != c.wire {
				t.Errorf("sent %q, want %q", wire, c.wire)
			}
			wantBody := "no"
			if c.method == "HEAD" {
				wantBody = ""
			}
			if r.Status != 403 || r.StatusLine != "HTTP/1.1 403 Forbidden" || r.Header.Get("Server") != "EC2ws" || string(r.Body) != wantBody {
				t.Errorf("response %+v", r)
			}
		})
	}
}

func TestRawRequestTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	start := time.Now()
	if _, err := RawRequest(ln.Addr().String(), "GET", "/", nil); err == nil {
		t.Fatal("no error from a server that never answers")
	}
	if d := time.Since(start); d > RawTimeout+time.Second {
		t.Fatalf("took %v", d)
	}
}

// oneShot serves one connection: it reads the request head (up to the blank
// line), sends it on the channel and answers resp.
func oneShot(t *testing.T, resp string) (string, <-chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(RawTimeout))
		got <- readHead(c)
		_, _ = io.WriteString(c, resp)
	}()
	return ln.Addr().String(), got
}

func readHead(c net.Conn) string {
	var head []byte
	b := make([]byte, 1)
	for len(head) < 4 || string(head[len(head)-4:]) != "\r\n\r\n" {
		if _, err := c.Read(b); err != nil {
			return string(head) + " <" + err.Error() + ">"
		}
		head = append(head, b[0])
	}
	return string(head)
}
