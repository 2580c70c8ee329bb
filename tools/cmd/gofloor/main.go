// Command gofloor is the floor a Go server reaches on this machine: it
// answers every HTTP/1.1 request with the same instance-id, reading
// nothing but the head, deciding nothing and asking no upstream. The
// benchmarks run it beside nginx and imdsguard (scripts/bench-floor.sh) to
// tell what a Go server's scheduling costs from what imdsguard's own work
// costs. Three ways of serving, -mode:
//
//   - goroutine: net's listener and one goroutine per connection, blocking
//     reads through the runtime's netpoller: how net/http and imdsguard
//     serve;
//   - epoll: one event loop per CPU on a locked OS thread, non-blocking
//     reads and writes on raw file descriptors, waiting in epoll_wait: how
//     nginx serves (Linux only);
//   - proxy: as goroutine, but each request goes to -upstream over at most
//     -conns kept connections (proxy.go): the floor of imdsguard's uncached
//     path, which is bounded the same way.
//
// -work makes the first two modes spend that much CPU on each request
// before answering it, busy on the goroutine or loop that serves it: a
// server of that way of serving doing as much work per request as
// imdsguard does, so that its latency tail can be set beside imdsguard's
// and nginx's.
//
// It serves loopback benchmarks only: heads of at most 8 KiB, no bodies,
// no deadlines.
//
//	gofloor -listen 127.0.0.1:8992 -mode epoll -body i-1234567890abcdef0
//	gofloor -listen 127.0.0.1:8994 -mode epoll -work 6us
//	gofloor -listen 127.0.0.1:8993 -mode proxy -upstream 127.0.0.1:8990 -conns 4
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

// answer is the answer to every request: by default IMDS's to GET
// /latest/meta-data/instance-id, as fakeimds gives it (-body changes it).
var answer = answerWith("i-1234567890abcdef0")

// answerWith is a 200 answer with body, headed as IMDS heads its answers.
func answerWith(body string) []byte {
	return answerTo(nil, http.StatusOK, "text/plain", []byte(body))
}

// answerTo appends an answer with status, ctype (none when empty) and
// body, headed as IMDS heads its answers.
func answerTo(b []byte, status int, ctype string, body []byte) []byte {
	b = fmt.Appendf(b, "HTTP/1.1 %d %s\r\n", status, http.StatusText(status))
	if ctype != "" {
		b = append(b, "Content-Type: "+ctype+"\r\n"...)
	}
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\nServer: EC2ws\r\n\r\n"...)
	return append(b, body...)
}

// maxHead bounds a request head; a longer one ends the connection.
const maxHead = 8 << 10

func main() {
	listen := flag.String("listen", "127.0.0.1:8992", "address to serve on")
	mode := flag.String("mode", "goroutine", "goroutine (one per connection, the netpoller), epoll (one event loop per CPU) or proxy (as goroutine, each request sent to -upstream)")
	loops := flag.Int("loops", runtime.GOMAXPROCS(0), "event loops in -mode epoll")
	body := flag.String("body", "i-1234567890abcdef0", "the body of every answer (the benchmark gives what fakeimds answers its path)")
	upstream := flag.String("upstream", "", "host:port each request goes to in -mode proxy")
	conns := flag.Int("conns", 4, "upstream connections at most in -mode proxy (imdsguard's bound)")
	work := flag.Duration("work", 0, "CPU time spent busy on each request before its answer in -mode goroutine and epoll (e.g. 6us)")
	flag.Parse()
	answer = answerWith(*body)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gofloor:", err)
		os.Exit(1)
	}
	switch *mode {
	case "goroutine", "epoll":
		switch {
		case *work < 0:
			err = errors.New("-work must not be negative")
		case *mode == "goroutine":
			go serveGoroutines(ln, constant(*work))
		case *loops < 1:
			err = errors.New("-loops must be at least 1")
		default:
			err = serveEpoll(ln, *loops, *work)
		}
	case "proxy":
		switch {
		case *work != 0:
			err = errors.New("-work is for -mode goroutine and epoll: the proxy's work is its upstream")
		case *upstream == "":
			err = errors.New("-mode proxy needs -upstream host:port")
		case *conns < 1:
			err = errors.New("-conns must be at least 1")
		default:
			go serveGoroutines(ln, newUpstreamPool(*upstream, *conns).serveConn)
		}
	default:
		err = fmt.Errorf("-mode %q: want goroutine, epoll or proxy", *mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gofloor:", err)
		os.Exit(2)
	}
	<-ctx.Done()
	ln.Close()
}

// serveGoroutines serves each connection ln accepts with serve, on a
// goroutine of its own, until ln is closed.
func serveGoroutines(ln net.Listener, serve func(net.Conn)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		go serve(c)
	}
}

// constant serves a connection: it answers each request head read from it,
// after spending work on it (burn), until the connection ends or sends
// something that is not one.
func constant(work time.Duration) func(net.Conn) {
	return func(c net.Conn) { serveConstant(c, work) }
}

func serveConstant(c net.Conn, work time.Duration) {
	defer c.Close()
	br := bufio.NewReaderSize(c, 4096)
	for {
		size := 0
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				return
			}
			if size += len(line); size > maxHead {
				return
			}
			if len(line) <= 2 && (len(line) == 1 || line[0] == '\r') {
				break
			}
		}
		burn(work)
		if _, err := c.Write(answer); err != nil {
			return
		}
	}
}

// burn keeps the CPU busy for d (on the monotonic clock) and returns: the
// stand-in for what a real server computes per request.
func burn(d time.Duration) {
	if d <= 0 {
		return
	}
	for start := time.Now(); time.Since(start) < d; {
	}
}

// heads counts the complete request heads at the start of b and returns
// the count and the length of b they take.
func heads(b []byte) (n, used int) {
	for {
		end := headEnd(b[used:])
		if end < 0 {
			return n, used
		}
		n, used = n+1, used+end
	}
}

// headEnd is the length of the head at the start of b, up to and with the
// empty line (CRLF or bare LF) that ends it, or -1 when b holds no whole
// head.
func headEnd(b []byte) int {
	start := 0 // of the current line
	for i, c := range b {
		if c != '\n' {
			continue
		}
		line := b[start:i]
		if len(line) == 0 || (len(line) == 1 && line[0] == '\r') {
			return i + 1
		}
		start = i + 1
	}
	return -1
}
