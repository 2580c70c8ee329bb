// Package upstream is imdsguard's only client of the real metadata service.
// It keeps one IMDSv2 session for the whole host (session.go), sends each
// request with exactly the headers IMDS needs, on sockets that carry the
// daemon's firewall mark so the redirect rules let them through, and gives
// up quickly enough that a caller gets a 502/504 well inside an SDK's 1 s
// budget. IMDS throttles per instance and limits simultaneous connections,
// so at most MaxConns connections (token PUTs included) are open at once;
// the wait for one counts against the request's budget.
//
// Requests go through net/http's Transport: its DialContext sets the mark,
// MaxConnsPerHost is the bound, and every request is built here from
// nothing (method, canonical path, three headers), so nothing a caller sent
// can reach IMDS.
package upstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/imdsguard/imdsguard/internal/imds"
)

// Budget bounds the time one Fetch may take, token refresh and the wait
// for a connection slot included.
const (
	DialTimeout  = 200 * time.Millisecond
	FetchTimeout = 700 * time.Millisecond
)

// MaxConns is the number of requests open towards IMDS at once. IMDS closes
// every connection after one answer, so this is also the number of
// connections.
const MaxConns = 4

// Options configure a Client.
type Options struct {
	Config    Config
	Mark      uint32 // SO_MARK of upstream sockets; 0 = none (no redirect rules)
	UserAgent string
	Log       *slog.Logger
}

// Client fetches metadata paths from IMDS.
type Client struct {
	host    string // the URL's host[:port]: where requests go, and their Host header
	tr      *http.Transport
	ua      string
	session *session
}

// New returns a Client for o.
func New(o Options) (*Client, error) {
	base, err := parseBase(o.Config.URL)
	if err != nil {
		return nil, fmt.Errorf("upstream url %q: %w", o.Config.URL, err)
	}
	tr := NewTransport(o.Mark)
	tr.MaxConnsPerHost = MaxConns
	tr.MaxIdleConnsPerHost = MaxConns
	c := &Client{host: base.Host, tr: tr, ua: o.UserAgent}
	c.session = newSession(c.putToken, o.Config.TokenTTL.Duration, o.Log)
	return c, nil
}

// NewTransport is an http.Transport with the upstream's sockets: the
// firewall mark (0 for none), the dial and response budgets, no proxy from
// the environment, no compression, HTTP/1.1 only. The Client and `imdsguard
// check`'s probes use it.
func NewTransport(mark uint32) *http.Transport {
	d := Dialer(mark, DialTimeout)
	return &http.Transport{
		DialContext:           d.DialContext,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: FetchTimeout,
		DisableCompression:    true, // no Accept-Encoding: IMDS needs none
		Proxy:                 nil,  // never an HTTP_PROXY from the environment
	}
}

// Dialer is a dialer whose sockets carry the firewall mark (0 for none),
// as upstream sockets do, so that the redirect rules let them through:
// the STS client's too.
func Dialer(mark uint32, timeout time.Duration) *net.Dialer {
	return &net.Dialer{Timeout: timeout, Control: markControl(mark)}
}

// Fetch sends a GET or HEAD for path, which must be a canonical path
// (canon.Path.String()), with the session token, and returns IMDS's answer
// with its body read whole; the caller closes it. A 401 drops the session
// token and retries once with a new one, unless IMDS has just refused a new
// token as well (then the 401 is the answer; see minRefusedBackoff).
func (c *Client) Fetch(ctx context.Context, method, path string) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, FetchTimeout)
	defer cancel() // the answer's body is already read
	for attempt := 0; ; attempt++ {
		tok, err := c.session.token(ctx)
		if err != nil {
			return nil, err
		}
		resp, err := c.send(ctx, method, path, imds.HeaderToken, tok)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusUnauthorized {
			c.session.accepted()
		}
		if resp.StatusCode != http.StatusUnauthorized || attempt > 0 || !c.session.invalidate(tok) {
			return resp, nil
		}
	}
}

// send sends one request, built here from nothing: the method, path as it
// is on the request line, Host, User-Agent, Accept and the one header given
// (the session token, or the TTL of a token PUT). The answer's body is read
// whole, within imds.MaxAnswer, so that its connection is free again (or
// closed) when send returns. Redirects are never followed: IMDS's 301s go
// to the caller as they are.
func (c *Client) send(ctx context.Context, method, path, name, value string) (*http.Response, error) {
	if !strings.HasPrefix(path, "/") || strings.HasPrefix(path, "//") || strings.ContainsAny(path, " \r\n") {
		return nil, fmt.Errorf("upstream request path %q is not canonical", path)
	}
	req := (&http.Request{
		Method:     method,
		URL:        &url.URL{Scheme: "http", Host: c.host, Opaque: path}, // Opaque: the path goes out byte for byte
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     http.Header{"User-Agent": {c.ua}, "Accept": {"*/*"}, name: {value}},
		Host:       c.host,
	}).WithContext(ctx)
	resp, err := c.tr.RoundTrip(req)
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", method, err)
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

// Close closes the connections kept open to IMDS.
func (c *Client) Close() { c.tr.CloseIdleConnections() }

// IsTimeout reports whether err from Fetch means IMDS did not answer in
// time (504) rather than failed (502).
func IsTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
