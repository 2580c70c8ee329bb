package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"runtime"
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
	modes := map[string]func(net.Listener) error{
		"goroutine": func(ln net.Listener) error { go serveGoroutines(ln); return nil },
	}
	if runtime.GOOS == "linux" {
		modes["epoll"] = func(ln net.Listener) error { return serveEpoll(ln, 2) }
	}
	for name, serve := range modes {
		t.Run(name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			if err := serve(ln); err != nil {
				t.Fatal(err)
			}
			// The epoll loops run for the rest of the test binary: they
			// hold the listener's descriptor, so it stays open too.
			if name == "goroutine" {
				defer ln.Close()
			}
			url := "http://" + ln.Addr().String() + "/latest/meta-data/instance-id"
			client := &http.Client{Timeout: 5 * time.Second}
			for range 3 { // on one kept-alive connection
				resp, err := client.Get(url)
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
		})
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
