// Package upstream is imdsguard's only client of the real metadata service.
// It keeps one IMDSv2 session for the whole host (session.go), sends each
// request with exactly the headers IMDS needs, on sockets that carry the
// daemon's firewall mark so the redirect rules let them through, and gives
// up quickly enough that a caller gets a 502/504 well inside an SDK's 1 s
// budget. IMDS throttles per instance and limits simultaneous connections,
// so at most MaxConns requests (token PUTs included) are open at once; the
// wait for one counts against the request's budget.
//
// Client is the seam where a response cache and request coalescing go: the
// proxy asks Fetch for a canonical path and does not care where the answer
// comes from.
package upstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/imdsguard/imdsguard/internal/imds"
	"github.com/imdsguard/imdsguard/internal/offstack"
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
	base    *url.URL
	wire    *wire
	ua      string
	session *session
	slots   chan struct{} // one per open upstream request, MaxConns
	// exchangers run the exchanges with IMDS, one per slot, so a slot's
	// holder never waits for one. Handing an exchange to a goroutine that
	// is already there costs less than starting one for each: about 5% less
	// CPU per uncached read (wrk -c16, tools/cmd/bench's setup).
	exchangers *offstack.Pool
}

// New returns a Client for o.
func New(o Options) (*Client, error) {
	base, err := parseBase(o.Config.URL)
	if err != nil {
		return nil, fmt.Errorf("upstream url %q: %w", o.Config.URL, err)
	}
	addr := base.Host
	if base.Port() == "" {
		addr = net.JoinHostPort(base.Hostname(), "80")
	}
	d := &net.Dialer{Timeout: DialTimeout, Control: markControl(o.Mark)}
	// Redirects (IMDS's 301s) are never followed: they go to the caller as
	// they are.
	c := &Client{base: base, ua: o.UserAgent, slots: make(chan struct{}, MaxConns),
		exchangers: offstack.NewPool(MaxConns),
		wire:       &wire{addr: addr, host: base.Host, dial: d.DialContext}}
	c.session = newSession(c.putToken, o.Config.TokenTTL.Duration, o.Log)
	return c, nil
}

// NewTransport is an http.Transport with the upstream's sockets: the
// firewall mark (0 for none), the dial and response budgets, no proxy from
// the environment, no compression. `imdsguard check` probes with it; the
// daemon's own requests go through wire.go.
func NewTransport(mark uint32) *http.Transport {
	d := &net.Dialer{Timeout: DialTimeout, Control: markControl(mark)}
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

// Fetch sends a GET or HEAD for path, which must be a canonical path
// (canon.Path.String()), with the session token, and returns IMDS's answer;
// the caller closes its body. A 401 drops the session token and retries
// once with a new one, unless IMDS has just refused a new token as well
// (then the 401 is the answer; see minRefusedBackoff).
func (c *Client) Fetch(ctx context.Context, method, path string) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, FetchTimeout)
	defer cancel() // the answer's body is already read
	for attempt := 0; ; attempt++ {
		tok, err := c.session.token(ctx)
		if err != nil {
			return nil, err
		}
		resp, err := c.do(ctx, method, path, tok)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusUnauthorized {
			c.session.accepted()
		}
		if resp.StatusCode != http.StatusUnauthorized || attempt > 0 || !c.session.invalidate(tok) {
			return resp, nil
		}
		resp.Body.Close() // read whole already: nothing to drain
	}
}

func (c *Client) do(ctx context.Context, method, path, tok string) (*http.Response, error) {
	return c.send(ctx, method, path, imds.HeaderToken, tok)
}

// send sends one request once a connection slot is free, with only the
// headers IMDS needs (nothing a caller sent is copied into it) and the one
// given (the session token, or the TTL of a token PUT); the answer's body
// is read whole, and the slot given back, before it returns. The exchange
// runs on one of the exchangers: writing the request and parsing the
// answer go 2 KB deeper than the caller's 4 KB stack has room for, and a
// thousand callers waiting for IMDS would each keep a doubled stack.
func (c *Client) send(ctx context.Context, method, path, name, value string) (resp *http.Response, err error) {
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for one of %d upstream connections: %w", MaxConns, ctx.Err())
	}
	defer func() { <-c.slots }()
	c.exchangers.Do(func() {
		resp, err = c.wire.roundTrip(ctx, method, path, [][2]string{{"User-Agent", c.ua}, {"Accept", "*/*"}, {name, value}})
	})
	return resp, err
}

// Close closes the connections kept open to IMDS.
// An exchange still running finishes, and one that starts after still runs.
func (c *Client) Close() {
	c.exchangers.Close()
	c.wire.close()
}

// IsTimeout reports whether err from Fetch means IMDS did not answer in
// time (504) rather than failed (502).
func IsTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
