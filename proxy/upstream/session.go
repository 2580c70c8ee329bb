package upstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Backoff after a failed token PUT: callers fail fast instead of each
// hammering IMDS, and the wait doubles up to maxBackoff.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// ErrBackoff is returned while the session waits before its next token PUT.
var ErrBackoff = errors.New("upstream token unavailable (backing off after a failure)")

// session holds the host's one IMDSv2 token. At most one PUT is in flight;
// callers that need a token while it runs wait for it. The token is renewed
// in the background once less than a tenth of its life remains.
type session struct {
	put func(ctx context.Context, ttl time.Duration) (string, error)
	ttl time.Duration
	log *slog.Logger
	now func() time.Time

	mu      sync.Mutex
	tok     string
	expires time.Time
	flight  *flight
	failed  int       // consecutive failed PUTs
	retryAt time.Time // no PUT before this after a failure
	lastErr error

	puts atomic.Uint64 // token PUTs sent, for metrics and tests
}

type flight struct {
	done chan struct{}
	tok  string
	err  error
}

func newSession(put func(context.Context, time.Duration) (string, error), ttl time.Duration, log *slog.Logger) *session {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &session{put: put, ttl: ttl, log: log, now: time.Now}
}

// token returns a valid session token, fetching one if needed.
func (s *session) token(ctx context.Context) (string, error) {
	s.mu.Lock()
	now := s.now()
	if s.tok != "" && now.Before(s.expires) {
		tok := s.tok
		if s.expires.Sub(now) < s.ttl/10 && s.flight == nil && !now.Before(s.retryAt) {
			s.start() // renew early; callers keep the current token meanwhile
		}
		s.mu.Unlock()
		return tok, nil
	}
	if now.Before(s.retryAt) {
		err := fmt.Errorf("%w: %v", ErrBackoff, s.lastErr)
		s.mu.Unlock()
		return "", err
	}
	f := s.flight
	if f == nil {
		f = s.start()
	}
	s.mu.Unlock()
	select {
	case <-f.done:
		return f.tok, f.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// start begins a token PUT; s.mu is held.
func (s *session) start() *flight {
	f := &flight{done: make(chan struct{})}
	s.flight = f
	go s.run(f)
	return f
}

func (s *session) run(f *flight) {
	ctx, cancel := context.WithTimeout(context.Background(), FetchTimeout)
	defer cancel()
	s.puts.Add(1)
	sent := s.now()
	tok, err := s.put(ctx, s.ttl)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flight = nil
	f.tok, f.err = tok, err
	close(f.done)
	if err != nil {
		s.failed++
		s.lastErr = err
		s.retryAt = s.now().Add(backoff(s.failed))
		s.log.Warn("upstream token PUT failed", "err", err, "attempt", s.failed, "retry_in", backoff(s.failed))
		return
	}
	s.tok, s.expires, s.failed, s.retryAt = tok, sent.Add(s.ttl), 0, time.Time{}
	s.log.Debug("upstream token renewed", "ttl", s.ttl)
}

func backoff(failed int) time.Duration {
	d := minBackoff << min(failed-1, 10)
	return min(d, maxBackoff)
}

// invalidate drops tok after IMDS refused it, unless a newer one replaced it.
func (s *session) invalidate(tok string) {
	s.mu.Lock()
	if s.tok == tok {
		s.tok = ""
	}
	s.mu.Unlock()
}

// putToken is the PUT /latest/api/token request.
func (c *Client) putToken(ctx context.Context, ttl time.Duration) (string, error) {
	req := c.newRequest(ctx, http.MethodPut, "/latest/api/token")
	req.Header["X-Aws-Ec2-Metadata-Token-Ttl-Seconds"] = []string{strconv.Itoa(int(ttl / time.Second))}
	resp, err := c.send(ctx, req)
	if err != nil {
		return "", fmt.Errorf("upstream token PUT: %w", err)
	}
	defer resp.Body.Close()
	body := make([]byte, 1024)
	n, _ := readFull(resp.Body, body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("upstream token PUT: %s", resp.Status)
	}
	tok := strings.TrimSpace(string(body[:n]))
	if tok == "" || n == len(body) {
		return "", errors.New("upstream token PUT: empty or oversized token")
	}
	return tok, nil
}

// TokenPuts is the number of token PUTs sent upstream so far.
func (c *Client) TokenPuts() uint64 { return c.session.puts.Load() }
