package upstream

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/imdsguard/imdsguard/internal/imds"
)

// The upstream side of the wire. IMDS is one host, spoken to with a
// handful of small requests that imdsguard writes itself (nothing a caller
// sent is in them), so instead of net/http's Transport (two goroutines per
// connection and a handoff between them per request, some 150 µs of CPU a
// request here) a request is written and its answer read by one goroutine
// (Client.send starts it, so that the caller's stack stays small): one
// write, http.ReadResponse (net/http's own parser), the body read whole
// within imds.MaxAnswer. Connections IMDS keeps open are reused, at
// most MaxConns of them; IMDS itself closes every connection, so there each
// request dials, as it did before.

// wire sends requests to one address on connections it keeps.
type wire struct {
	addr string // host:port
	host string // the Host header
	dial func(ctx context.Context, network, addr string) (net.Conn, error)

	mu   sync.Mutex
	idle []*wireConn
}

type wireConn struct {
	c  net.Conn
	br *bufio.Reader
}

// errStale is a kept connection that IMDS closed meanwhile: the request
// is sent again on a new one.
var errStale = errors.New("kept connection closed by the server")

// roundTrip sends one request (method, path, the headers in order) and
// returns the answer with its body read whole. The context's deadline
// bounds everything; its cancellation aborts the exchange.
func (w *wire) roundTrip(ctx context.Context, method, path string, header [][2]string) (*http.Response, error) {
	head, err := w.request(method, path, header)
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		wc, reused, err := w.conn(ctx)
		if err != nil {
			return nil, err
		}
		resp, err := w.exchange(ctx, wc, head, method, reused)
		if errors.Is(err, errStale) && attempt == 0 {
			continue
		}
		return resp, err
	}
}

// request is the request head: only what IMDS needs, values checked.
func (w *wire) request(method, path string, header [][2]string) ([]byte, error) {
	if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \r\n") {
		return nil, fmt.Errorf("upstream request path %q is not canonical", path)
	}
	b := make([]byte, 0, 256)
	b = append(b, method...)
	b = append(b, ' ')
	b = append(b, path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, w.host...)
	b = append(b, "\r\n"...)
	for _, h := range header {
		if strings.ContainsAny(h[1], "\r\n") {
			return nil, fmt.Errorf("upstream request header %s carries a line break", h[0])
		}
		b = append(b, h[0]...)
		b = append(b, ": "...)
		b = append(b, h[1]...)
		b = append(b, "\r\n"...)
	}
	if method == http.MethodPut {
		b = append(b, "Content-Length: 0\r\n"...)
	}
	return append(b, "\r\n"...), nil
}

// conn returns a kept connection, or dials one.
func (w *wire) conn(ctx context.Context) (*wireConn, bool, error) {
	w.mu.Lock()
	if n := len(w.idle); n > 0 {
		wc := w.idle[n-1]
		w.idle = w.idle[:n-1]
		w.mu.Unlock()
		return wc, true, nil
	}
	w.mu.Unlock()
	c, err := w.dial(ctx, "tcp", w.addr)
	if err != nil {
		return nil, false, err
	}
	return &wireConn{c: c, br: bufio.NewReaderSize(c, 4<<10)}, false, nil
}

// keep puts a connection back for the next request, MaxConns at most.
func (w *wire) keep(wc *wireConn) {
	wc.c.SetDeadline(time.Time{})
	w.mu.Lock()
	if len(w.idle) < MaxConns {
		w.idle = append(w.idle, wc)
		wc = nil
	}
	w.mu.Unlock()
	if wc != nil {
		wc.c.Close()
	}
}

// close closes the kept connections.
func (w *wire) close() {
	w.mu.Lock()
	idle := w.idle
	w.idle = nil
	w.mu.Unlock()
	for _, wc := range idle {
		wc.c.Close()
	}
}

func (w *wire) exchange(ctx context.Context, wc *wireConn, head []byte, method string, reused bool) (*http.Response, error) {
	if d, ok := ctx.Deadline(); ok {
		wc.c.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { wc.c.SetDeadline(time.Unix(1, 0)) })
	resp, err := w.exchangeOn(wc, head, method, reused)
	if !stop() && err == nil {
		err = ctx.Err() // cancelled as the answer came: it may be cut short
	}
	if err != nil {
		wc.c.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("upstream %s: %w", method, ctx.Err())
		}
		return nil, err
	}
	if resp.Close {
		wc.c.Close()
	} else {
		w.keep(wc)
	}
	return resp, nil
}

func (w *wire) exchangeOn(wc *wireConn, head []byte, method string, reused bool) (*http.Response, error) {
	if _, err := wc.c.Write(head); err != nil {
		if reused {
			return nil, errStale
		}
		return nil, fmt.Errorf("upstream %s: write: %w", method, err)
	}
	resp, err := http.ReadResponse(wc.br, &http.Request{Method: method})
	if err != nil {
		if reused && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isReset(err)) && wc.br.Buffered() == 0 {
			return nil, errStale
		}
		return nil, fmt.Errorf("upstream %s: read answer: %w", method, err)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, imds.MaxAnswer+1))
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("upstream %s: read answer body: %w", method, err)
	}
	if len(body) > imds.MaxAnswer {
		return nil, fmt.Errorf("upstream %s: answer larger than %d bytes", method, imds.MaxAnswer)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if method != http.MethodHead { // a HEAD answer keeps the GET's length
		resp.ContentLength = int64(len(body))
	}
	return resp, nil
}

func isReset(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && strings.Contains(oe.Err.Error(), "reset")
}
