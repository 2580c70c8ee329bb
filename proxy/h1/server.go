// Package h1 serves HTTP/1.x on the proxy's listeners: one goroutine per
// connection reading requests with net/http's own parser (http.ReadRequest)
// and the checks net/http's server adds to it, and writing each answer in
// one write. It exists for speed and memory, not for features: net/http's
// server starts a goroutine and a read per request to notice a client that
// went away, keeps a 4 KB writer per connection, and answers in pieces,
// which made it slower than the nginx a user would otherwise put in front of
// IMDS (docs/BENCHMARKS.md). Metadata requests are small GETs and PUTs with
// no body, so the loop can be simple:
//
//   - requests are parsed by http.ReadRequest, the parser net/http's server
//     uses, then held to the same rules it adds (HTTP/1.x only, a valid Host
//     header present in HTTP/1.1, valid header names and values, a bounded
//     header size): no parser differential with what ran before. The one
//     shape SDKs send, whole in the buffer, is parsed by parseCommon into
//     the request ReadRequest would make of it (fast.go; fuzzed against
//     ReadRequest), and held to the same rules; a connection parses each
//     such request into the same memory, so a handler must keep nothing of
//     a request (its Header, its URL) once it has returned;
//   - a request with a body (or an Expect) is answered and the connection
//     closed; the body is never read;
//   - the answer is built in memory and written at once, with Date, a
//     Content-Length and, when the connection ends, Connection: close;
//   - timeouts: idle between requests, reading a request's header, writing
//     an answer;
//   - http.ErrAbortHandler from a handler ends the connection without an
//     answer (as net/http does); a handler may hijack the connection
//     (goproxy does, to refuse CONNECT).
package h1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"
)

// Server serves Handler on listeners.
type Server struct {
	Handler http.Handler
	// ConnContext, when set, gives the context of every request of a
	// connection (the proxy keeps per-connection state in it).
	ConnContext func(ctx context.Context, c net.Conn) context.Context
	// ReadHeaderTimeout bounds reading one request's header once its first
	// byte has come; IdleTimeout the wait for the next request;
	// WriteTimeout writing an answer (from the end of the request).
	ReadHeaderTimeout, IdleTimeout, WriteTimeout time.Duration
	// MaxHeaderBytes bounds a request's header (431 beyond).
	MaxHeaderBytes int
	Log            *slog.Logger

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	closing   atomic.Bool
	done      chan struct{} // closed by Shutdown/Close
	wg        sync.WaitGroup
}

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = http.ErrServerClosed

func (s *Server) init() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listeners == nil {
		s.listeners = map[net.Listener]struct{}{}
		s.conns = map[*conn]struct{}{}
		s.done = make(chan struct{})
	}
}

func (s *Server) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

// Serve accepts connections on ln until it fails or the server closes.
func (s *Server) Serve(ln net.Listener) error {
	s.init()
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		ln.Close()
	}()
	base := context.Background()
	var tempDelay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return ErrServerClosed
			}
			if temporary(err) {
				tempDelay = min(max(2*tempDelay, 5*time.Millisecond), time.Second)
				s.log().Debug("accept failed; retrying", "err", err, "in", tempDelay)
				select {
				case <-time.After(tempDelay):
				case <-s.done:
				}
				continue
			}
			return err
		}
		tempDelay = 0
		cc := &conn{srv: s, rwc: c}
		cc.ctx = context.WithValue(base, connKey{}, cc)
		if s.ConnContext != nil {
			cc.ctx = s.ConnContext(cc.ctx, c)
		}
		if !s.track(cc) {
			c.Close()
			return ErrServerClosed
		}
		go cc.serve()
	}
}

// temporary reports whether an accept error is one to wait out, as
// net/http's server does: out of file descriptors or buffers, or a
// connection that went away before it was accepted.
func temporary(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.ECONNRESET} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// Shutdown stops accepting, closes idle connections, lets the requests in
// flight finish (their connections close after the answer) and waits for
// them until ctx ends; then it closes what is left and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.stop()
	all := make(chan struct{})
	go func() { s.wg.Wait(); close(all) }()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		s.closeIdle()
		select {
		case <-all:
			return nil
		case <-ctx.Done():
			s.closeAll()
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Close stops accepting and closes every connection at once.
func (s *Server) Close() error {
	s.init()
	s.stop()
	s.closeAll()
	return nil
}

func (s *Server) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Swap(true) {
		return
	}
	close(s.done)
	for ln := range s.listeners {
		ln.Close()
	}
}

func (s *Server) closeIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.idle.Load() {
			c.rwc.Close()
		}
	}
}

func (s *Server) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.rwc.Close()
	}
}

// connKey keys a request's connection in its context (WaitGone).
type connKey struct{}

// Context is the context of a request served by an h1 server: its
// connection's (ConnContext's), which the request itself does not carry.
// Outside an h1 server it is the request's.
func Context(w http.ResponseWriter, r *http.Request) context.Context {
	if rw, ok := w.(*response); ok {
		return rw.conn.ctx
	}
	return r.Context()
}

// WaitGone holds a request without answering it until its client closes
// the connection, d has passed, or the server shuts down, whichever comes
// first; the handler then aborts the connection (panic(http.ErrAbortHandler)).
// It reads the connection meanwhile, as net/http's server does to notice a
// client that left; what it reads is dropped. Outside an h1 server it waits
// for d or ctx.
func WaitGone(ctx context.Context, d time.Duration) {
	c, ok := ctx.Value(connKey{}).(*conn)
	if !ok {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		return
	}
	c.setReadDeadline(d)
	held := make(chan struct{})
	defer close(held)
	go func() {
		select {
		case <-c.srv.done:
			c.rwc.SetReadDeadline(time.Unix(1, 0))
		case <-held:
		}
	}()
	buf := make([]byte, 512)
	for {
		if _, err := c.rwc.Read(buf); err != nil {
			return
		}
	}
}

// conn is one client connection.
type conn struct {
	srv      *Server
	rwc      net.Conn
	ctx      context.Context
	idle     atomic.Bool // waiting for a request: Shutdown may close it
	hijacked bool
	// rd and wd are the read and write deadlines set on rwc. A deadline
	// that is already within deadlineSlack of the one wanted is left as it
	// is: setting one costs a timer update, twice a request otherwise.
	rd, wd time.Time
}

// deadlineSlack is how much earlier than wanted an idle or write deadline
// may fall when it is left as it is (60 s idle becomes 59 to 60 s).
const deadlineSlack = time.Second

// readerSize is a connection's request reader: an SDK's request (a GET or
// PUT, its token and user agent) is a few hundred bytes; a longer head is
// read in more pieces (net/textproto joins them), up to MaxHeaderBytes. A
// thousand keep-alive connections hold a thousand of these.
const readerSize = 1 << 10

// readerPool holds the request readers of connections.
var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readerSize) }}

// limitReader is the connection as the request reader sees it: at most n
// more bytes (the header budget of one request), then EOF. It keeps what
// it reads in rec: http.ReadRequest drops the Host header from the request
// it returns, and the server's checks need it (hostHeader).
type limitReader struct {
	c   net.Conn
	n   int64
	rec []byte
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.c.Read(p)
	l.n -= int64(n)
	l.rec = append(l.rec, p[:n]...)
	return n, err
}

// hostHeader counts the Host header lines of a request head (the request
// line and header lines as read, keys in any case) and, when asked,
// returns the first one's value. A continuation line (obs-fold) is part of
// the value before it, joined with a space, as net/textproto reads it. The
// head passed http.ReadRequest, so its lines are well-formed "Key: value"
// lines.
func hostHeader(head []byte, wantValue bool) (n int, value string) {
	first, inHost := true, false
	for len(head) > 0 {
		line := head
		if i := bytes.IndexByte(head, '\n'); i >= 0 {
			line, head = head[:i], head[i+1:]
		} else {
			head = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		switch {
		case first:
			first = false
		case len(line) == 0:
			return n, value
		case line[0] == ' ' || line[0] == '\t':
			if inHost && wantValue && n == 1 {
				value += " " + string(bytes.Trim(line, " \t"))
			}
		default:
			k, v, ok := bytes.Cut(line, []byte(":"))
			inHost = ok && bytes.EqualFold(k, []byte("Host"))
			if inHost {
				n++
				if wantValue && n == 1 {
					value = string(bytes.Trim(v, " \t"))
				}
			}
		}
	}
	return n, value
}

func (c *conn) serve() {
	defer c.srv.untrack(c)
	linger := false // unread input may be left: close the way net/http does
	defer func() {
		switch {
		case c.hijacked:
		case linger:
			c.closeAfterAnswer()
		default:
			c.rwc.Close()
		}
	}()
	lr := &limitReader{c: c.rwc}
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(lr)
	defer func() {
		if !c.hijacked {
			br.Reset(nil)
			readerPool.Put(br)
		}
	}()
	remote := c.rwc.RemoteAddr().String()
	w := &response{conn: c}
	// The connection's request of the common shape, parsed anew into the
	// same memory for each (parseCommon): the handler has returned by
	// then, and the Handler contract says it keeps nothing of a request.
	var cm *common
	for {
		// Idle: wait for the first byte of the next request.
		c.idle.Store(true)
		if c.srv.closing.Load() {
			return
		}
		lr.n = int64(c.srv.MaxHeaderBytes) + 4096 // as net/http: some slack for the request line
		lr.rec = lr.rec[:0]
		if n := br.Buffered(); n > 0 { // a pipelined request, read with the one before
			b, _ := br.Peek(n)
			lr.rec = append(lr.rec, b...)
		} else {
			c.idleDeadline()
			if _, err := br.Peek(1); err != nil {
				return
			}
		}
		c.idle.Store(false)
		// A head that came whole with its first bytes (an SDK's always
		// does) is parsed from the buffer: nothing more is read, so no
		// header deadline is needed, and one of the common shape needs no
		// line reader (parseCommon). Otherwise the rest must come within
		// ReadHeaderTimeout.
		var req *http.Request
		b, _ := br.Peek(br.Buffered())
		if n := headLen(b); n > 0 {
			if cm == nil {
				cm = new(common)
			}
			if req = parseCommon(b[:n], cm); req != nil {
				br.Discard(n)
			}
		} else {
			c.setReadDeadline(c.srv.ReadHeaderTimeout)
		}
		if req == nil {
			var err error
			if req, err = http.ReadRequest(br); err != nil {
				linger = c.refuse(err, lr.n <= 0)
				return
			}
		}
		head := lr.rec[:len(lr.rec)-br.Buffered()]
		if status, why := check(req, head); status != 0 {
			c.writeError(status, why)
			linger = true
			return
		}
		if cap(lr.rec) > 8<<10 {
			lr.rec = nil // an unusually large head: do not keep its buffer
		}
		req.RemoteAddr = remote
		// The request keeps net/http's background context: the handler
		// gets the connection's from Context(w, req), which spares a copy
		// of every request. The read deadline stays: nothing reads until
		// the next request (which sets its own) or WaitGone (likewise).
		lr.n = 1 << 62 // a body is never read; the budget is for headers
		c.writeDeadline()

		w.reset(req, br)
		if !c.run(w, req) || c.hijacked {
			return
		}
		keep := w.keepAlive()
		err := w.finish(keep)
		w.req = nil // an idle connection holds no request
		if err != nil {
			return
		}
		if !keep {
			linger = req.ContentLength != 0 || len(req.TransferEncoding) > 0 || br.Buffered() > 0
			return
		}
		// The write deadline stays too: nothing writes until the next
		// answer, whose request sets a new one.
	}
}

// run calls the handler; false means the connection must end without an
// answer (the handler aborted, or panicked).
func (c *conn) run(w *response, req *http.Request) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				buf := make([]byte, 16<<10)
				buf = buf[:runtime.Stack(buf, false)]
				c.srv.log().Error("panic serving a request", "remote", req.RemoteAddr, "panic", fmt.Sprint(v), "stack", string(buf))
			}
			ok = false
		}
	}()
	c.srv.Handler.ServeHTTP(w, req)
	return true
}

func (c *conn) setReadDeadline(d time.Duration) {
	c.rd = time.Time{}
	if d > 0 {
		c.rd = time.Now().Add(d)
	}
	c.rwc.SetReadDeadline(c.rd)
}

// idleDeadline bounds the wait for the next request by IdleTimeout,
// unless the deadline set already does, within deadlineSlack.
func (c *conn) idleDeadline() {
	c.rd = lazyDeadline(c.rwc.SetReadDeadline, c.rd, c.srv.IdleTimeout)
}

// writeDeadline bounds writing the answer by WriteTimeout, likewise.
func (c *conn) writeDeadline() {
	c.wd = lazyDeadline(c.rwc.SetWriteDeadline, c.wd, c.srv.WriteTimeout)
}

// lazyDeadline sets a deadline d from now with set, unless the one set
// (cur) is already between d-deadlineSlack and d from now; it returns the
// deadline in force. d <= 0 means none.
func lazyDeadline(set func(time.Time) error, cur time.Time, d time.Duration) time.Time {
	if d <= 0 {
		if !cur.IsZero() {
			set(time.Time{})
		}
		return time.Time{}
	}
	want := time.Now().Add(d)
	if !cur.IsZero() && !cur.After(want) && cur.After(want.Add(-deadlineSlack)) {
		return cur
	}
	set(want)
	return want
}

// headLen is the length of the request head at the start of b, its
// request line and header lines up to and with the empty line that ends
// them (CRLF or a bare LF, which net/textproto accepts too), or 0 when b
// does not hold all of it.
func headLen(b []byte) int {
	end := 0
	for {
		i := bytes.IndexByte(b[end:], '\n')
		if i < 0 {
			return 0
		}
		end += i + 1
		switch {
		case end < len(b) && b[end] == '\n':
			return end + 1
		case end+1 < len(b) && b[end] == '\r' && b[end+1] == '\n':
			return end + 2
		}
	}
}

// refuse answers a request that could not be read, as net/http's server
// does: 431 when the header was too large, 501 for a transfer coding it
// does not know, nothing when the connection ended cleanly (io.EOF before a
// request), timed out or failed to read, 400 for anything else (a request
// cut short included). It reports whether it answered.
func (c *conn) refuse(err error, tooLarge bool) bool {
	var ne net.Error
	var oe *net.OpError
	switch {
	case tooLarge:
		c.writeError(http.StatusRequestHeaderFieldsTooLarge, "")
	case err == io.EOF, errors.As(err, &ne) && ne.Timeout(), errors.As(err, &oe) && oe.Op == "read":
		return false
	case strings.Contains(err.Error(), "unsupported transfer encoding"):
		c.writeError(http.StatusNotImplemented, "unsupported transfer encoding")
	default:
		c.writeError(http.StatusBadRequest, "")
	}
	return true
}

// closeAfterAnswer ends a connection whose client may still be sending
// (a body never read, a refused request): closing with unread input makes
// the kernel reset the connection, which can destroy the answer before the
// client reads it. So, as net/http does, it shuts the sending side, reads
// and drops what comes for a moment (at most 256 KB), then closes.
func (c *conn) closeAfterAnswer() {
	if tc, ok := c.rwc.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite()
		c.rwc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		io.CopyN(io.Discard, c.rwc, 256<<10)
	}
	c.rwc.Close()
}

// check holds a parsed request (and its head, as read) to the rules
// net/http's server adds to its parser; it returns a status and reason to
// refuse it with, or 0.
func check(req *http.Request, head []byte) (int, string) {
	if req.ProtoMajor != 1 && !isH2Preface(req) {
		return http.StatusHTTPVersionNotSupported, "unsupported protocol version"
	}
	// http.ReadRequest dropped the Host header: count its lines in the
	// head. In origin-form the value net/textproto read is req.Host; in
	// absolute-form req.Host is the target's, so the header is read here.
	origin := req.URL.Host == ""
	n, host := hostHeader(head, !origin)
	if origin && n == 1 {
		host = req.Host
	}
	if req.ProtoAtLeast(1, 1) && n == 0 && req.Method != "CONNECT" && !isH2Preface(req) {
		return http.StatusBadRequest, "missing required Host header"
	}
	if n > 1 {
		return http.StatusBadRequest, "too many Host headers"
	}
	if n == 1 && !httpguts.ValidHostHeader(host) {
		return http.StatusBadRequest, "malformed Host header"
	}
	for k, vv := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return http.StatusBadRequest, "invalid header name"
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return http.StatusBadRequest, "invalid header value"
			}
		}
	}
	// As net/http: an Expect other than 100-continue is refused; with
	// 100-continue no 100 is ever sent (the body is never read).
	if e := req.Header.Get("Expect"); e != "" && !hasToken(e, "100-continue") {
		return http.StatusExpectationFailed, ""
	}
	return 0, ""
}

// isH2Preface reports whether req is the start of HTTP/2's connection
// preface ("PRI * HTTP/2.0"), which net/http's server hands to the handler
// (and answers with the connection closed after): so does h1.
func isH2Preface(req *http.Request) bool {
	return req.ProtoMajor == 2 && req.ProtoMinor == 0 && req.Method == "PRI" && req.RequestURI == "*"
}

// writeError writes net/http's own error answer and the connection ends.
func (c *conn) writeError(status int, why string) {
	text := strconv.Itoa(status) + " " + http.StatusText(status)
	body := text
	if why != "" {
		body += ": " + why
	}
	c.rwc.SetWriteDeadline(time.Now().Add(time.Second))
	io.WriteString(c.rwc, "HTTP/1.1 "+text+"\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"+body)
}

// response is the http.ResponseWriter of one request at a time on a
// connection: the header and the body are kept until the handler returns,
// then written at once.
type response struct {
	conn    *conn
	req     *http.Request
	br      *bufio.Reader
	header  http.Header // the answer's: own, or one a handler handed over (SetHeader)
	own     http.Header // the connection's, cleared for each request
	status  int
	body    []byte
	written bool // WriteHeader was called
	head    bool
}

func (w *response) reset(req *http.Request, br *bufio.Reader) {
	w.req, w.br = req, br
	if w.own == nil {
		w.own = make(http.Header, 8)
	} else {
		clear(w.own)
	}
	w.header = w.own
	w.status, w.written = 0, false
	w.body = w.body[:0]
	w.head = req.Method == http.MethodHead
}

func (w *response) Header() http.Header { return w.header }

// SetHeader makes h the header of the answer w writes, in place of the one
// Header returns, before WriteHeader. The server only reads h, so h may be
// shared with other answers (a cached one is); Header returns h from then
// on, and the handler must not change it through that either. It spares
// copying a header the handler has already built (the proxy's answers are
// http.Responses). It reports false, and does nothing, when w is not an h1
// server's or its header is written already.
func SetHeader(w http.ResponseWriter, h http.Header) bool {
	rw, ok := w.(*response)
	if !ok || rw.written || rw.conn.hijacked {
		return false
	}
	if h == nil {
		h = http.Header{}
	}
	rw.header = h
	return true
}

func (w *response) WriteHeader(status int) {
	if w.written {
		return
	}
	if status < 100 || status > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", status))
	}
	w.written, w.status = true, status
}

func (w *response) Write(p []byte) (int, error) {
	if w.conn.hijacked {
		return 0, http.ErrHijacked
	}
	if !w.written {
		w.WriteHeader(http.StatusOK)
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if !w.head {
		w.body = append(w.body, p...)
	}
	return len(p), nil
}

// Hijack hands the connection to the handler (goproxy refuses CONNECT
// that way); the server forgets it.
func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.conn.hijacked {
		return nil, nil, http.ErrHijacked
	}
	w.conn.hijacked = true
	w.conn.rwc.SetDeadline(time.Time{})
	return w.conn.rwc, bufio.NewReadWriter(w.br, bufio.NewWriter(w.conn.rwc)), nil
}

func bodyAllowed(status int) bool {
	return !(status >= 100 && status <= 199 || status == http.StatusNoContent || status == http.StatusNotModified)
}

// keepAlive decides whether the connection serves another request after
// this one: not when the client or the handler asked to close, when the
// request had a body (never read) or an Expect, or for HTTP/1.0 without
// keep-alive.
func (w *response) keepAlive() bool {
	req := w.req
	switch {
	case w.conn.srv.closing.Load():
		return false
	case req.Close, isH2Preface(req):
		return false
	case req.ContentLength != 0 || len(req.TransferEncoding) > 0:
		return false
	case hasToken(w.header.Get("Connection"), "close"):
		return false
	case req.ProtoMajor == 1 && req.ProtoMinor == 0:
		return httpguts.HeaderValuesContainsToken(req.Header["Connection"], "keep-alive")
	}
	return true
}

// hasToken is net/http's: whether token appears in v, ASCII
// case-insensitively, bounded by the start or end, a space, a comma or a
// tab.
func hasToken(v, token string) bool {
	if len(token) > len(v) || token == "" {
		return false
	}
	if v == token {
		return true
	}
	for sp := 0; sp <= len(v)-len(token); sp++ {
		if b := v[sp]; b != token[0] && b|0x20 != token[0] {
			continue
		}
		if sp > 0 && !isTokenBoundary(v[sp-1]) {
			continue
		}
		if end := sp + len(token); end != len(v) && !isTokenBoundary(v[end]) {
			continue
		}
		if strings.EqualFold(v[sp:sp+len(token)], token) {
			return true
		}
	}
	return false
}

func isTokenBoundary(b byte) bool { return b == ' ' || b == ',' || b == '\t' }

// bufPool holds the buffers answers are assembled in.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// finish writes the answer: status line, the handler's header (sorted, as
// net/http writes it) with Date and Content-Length, and the body.
func (w *response) finish(keep bool) error {
	if !w.written {
		w.WriteHeader(http.StatusOK)
	}
	bp := bufPool.Get().(*[]byte)
	b := (*bp)[:0]
	defer func() { *bp = b[:0]; bufPool.Put(bp) }()
	proto := "HTTP/1.1 "
	if !w.req.ProtoAtLeast(1, 1) {
		proto = "HTTP/1.0 "
	}
	b = append(b, proto...)
	b = strconv.AppendInt(b, int64(w.status), 10)
	b = append(b, ' ')
	if text := http.StatusText(w.status); text != "" {
		b = append(b, text...)
	} else {
		b = append(b, "status code "...)
		b = strconv.AppendInt(b, int64(w.status), 10)
	}
	b = append(b, "\r\n"...)
	// The handler's header, sorted, then what the server adds, in
	// net/http's order: Content-Type (sniffed), Connection, Date,
	// Content-Length. The added ones are written, not put in the map.
	// Headers the server replaces are skipped as the map is read, not
	// deleted from it: a delete costs a hash, a read of a small map not.
	h := w.header
	length := -1
	ownLength := true // the map's Content-Length is not written
	if bodyAllowed(w.status) && w.head && len(h["Content-Length"]) > 0 {
		ownLength = false // a HEAD's answer says the GET's length
	} else if bodyAllowed(w.status) {
		length = len(w.body)
	}
	ctype := ""
	if _, ok := h["Content-Type"]; !ok && len(w.body) > 0 {
		ctype = http.DetectContentType(w.body)
	}
	conn := ""
	switch {
	case !keep && !hasToken(h.Get("Connection"), "close"):
		conn = "close"
	case keep && !w.req.ProtoAtLeast(1, 1):
		conn = "keep-alive"
	}
	_, hasDate := h["Date"]
	var kbuf [16]string
	keys := kbuf[:0]
	for k := range h {
		switch {
		case k == "Transfer-Encoding": // the body is whole: a length, never chunks
		case k == "Content-Length" && ownLength:
		case k == "Connection" && conn != "":
		case httpguts.ValidHeaderFieldName(k): // as net/http: an invalid name is not written
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range h[k] {
			b = appendHeader(b, k, v)
		}
	}
	if ctype != "" {
		b = appendHeader(b, "Content-Type", ctype)
	}
	if conn != "" {
		b = appendHeader(b, "Connection", conn)
	}
	if !hasDate {
		b = appendHeader(b, "Date", httpDate())
	}
	if length >= 0 {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(length), 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	if bodyAllowed(w.status) && !w.head {
		b = append(b, w.body...)
	}
	_, err := w.conn.rwc.Write(b)
	if cap(w.body) > 64<<10 {
		w.body = nil // an unusually large answer: do not keep its buffer
	}
	return err
}

// appendHeader appends one header line.
func appendHeader(b []byte, k, v string) []byte {
	b = append(b, k...)
	b = append(b, ": "...)
	b = appendHeaderValue(b, v)
	return append(b, "\r\n"...)
}

// appendHeaderValue appends v with CR and LF replaced by spaces, as
// net/http's header writer does, so that no value can add a header line.
func appendHeaderValue(b []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		b = append(b, c)
	}
	return b
}

// httpDate is the Date header of answers, made once a second.
func httpDate() string {
	now := time.Now().Unix()
	if d := dateCache.Load(); d != nil && d.sec == now {
		return d.text
	}
	d := &cachedDate{sec: now, text: time.Unix(now, 0).UTC().Format(http.TimeFormat)}
	dateCache.Store(d)
	return d.text
}

type cachedDate struct {
	sec  int64
	text string
}

var dateCache atomic.Pointer[cachedDate]
