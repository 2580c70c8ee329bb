package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imdsguard/imdsguard/internal/imds"
)

// Back-off after a failed token PUT: the wait doubles from minBackoff up to
// maxBackoff, and each wait is drawn from [d/2, d] so that hosts (or
// daemons restarted together) do not retry in step. Callers that need a
// token during the wait are not failed at once: when the retry falls inside
// their budget they wait for it and for its PUT (one PUT, whoever triggers
// it); only a caller whose budget ends before the retry gets ErrBackoff.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// A token IMDS refuses (401) is replaced at once. If the replacement is
// refused as well, IMDS is refusing everything, not our token: the session
// keeps it, and replaces a refused token again only after a back-off from
// minRefusedBackoff doubling to maxRefusedBackoff (jittered the same way).
// The first answer that is not a 401 ends the back-off.
const (
	minRefusedBackoff = 2 * time.Second
	maxRefusedBackoff = time.Minute
)

// ErrBackoff is returned to a caller whose budget ends before the session's
// next token PUT may be sent.
var ErrBackoff = errors.New("upstream token unavailable (backing off after a failure)")

// session holds the host's one IMDSv2 token. At most one PUT is in flight;
// callers that need a token while it runs wait for it. The token is renewed
// in the background once less than a tenth of its life remains.
type session struct {
	put func(ctx context.Context, ttl time.Duration) (string, error)
	ttl time.Duration
	log *slog.Logger

	mu      sync.Mutex
	tok     string
	expires time.Time
	flight  *flight
	failed  int       // consecutive failed PUTs
	retryAt time.Time // no PUT before this after a failure
	lastErr error

	refused      int       // consecutive refused tokens replaced
	refusedUntil time.Time // no replacement of a refused token before this
	refusing     atomic.Bool

	puts     atomic.Uint64 // token PUTs sent, for metrics and tests
	putFails atomic.Uint64 // token PUTs that failed (error or not 200), for metrics
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
	return &session{put: put, ttl: ttl, log: log}
}

// token returns a valid session token, fetching one if needed. A failed
// PUT does not fail the callers still inside their budget: they wait for
// the back-off to pass and for the next PUT.
func (s *session) token(ctx context.Context) (string, error) {
	for {
		s.mu.Lock()
		now := time.Now()
		if s.tok != "" && now.Before(s.expires) {
			tok := s.tok
			if s.expires.Sub(now) < s.ttl/10 && s.flight == nil && !now.Before(s.retryAt) {
				s.start() // renew early; callers keep the current token meanwhile
			}
			s.mu.Unlock()
			return tok, nil
		}
		f := s.flight
		if f == nil {
			if wait := s.retryAt.Sub(now); wait > 0 {
				err := fmt.Errorf("%w: %v", ErrBackoff, s.lastErr)
				s.mu.Unlock()
				if !within(ctx, wait) {
					return "", err
				}
				if err := sleep(ctx, wait); err != nil {
					return "", err
				}
				continue
			}
			f = s.start()
		}
		s.mu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			return "", ctx.Err()
		}
		if f.err == nil {
			return f.tok, nil
		}
		if !within(ctx, 0) {
			return "", f.err
		}
		// The PUT failed and this caller has budget left: the next round
		// waits for the back-off and the retry, or gives up if they do not fit.
	}
}

// within reports whether ctx has a deadline later than wait from now.
// Without a deadline there is no budget to wait in.
func within(ctx context.Context, wait time.Duration) bool {
	deadline, ok := ctx.Deadline()
	return ok && time.Until(deadline) > wait
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
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
	sent := time.Now()
	tok, err := s.put(ctx, s.ttl)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flight = nil
	f.tok, f.err = tok, err
	close(f.done)
	if err != nil {
		s.putFails.Add(1)
		s.failed++
		s.lastErr = err
		wait := jitter(backoff(s.failed, minBackoff, maxBackoff))
		s.retryAt = time.Now().Add(wait)
		s.log.Warn("upstream token PUT failed", "err", err, "attempt", s.failed, "retry_in", wait)
		return
	}
	s.tok, s.expires, s.failed, s.retryAt = tok, sent.Add(s.ttl), 0, time.Time{}
	s.log.Debug("upstream token renewed", "ttl", s.ttl)
}

// backoff is lo doubled for each failure after the first, at most hi.
func backoff(failures int, lo, hi time.Duration) time.Duration {
	d := lo << min(failures-1, 20)
	return min(d, hi)
}

// jitter draws a wait from [d/2, d].
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

// invalidate drops tok after IMDS refused it and reports whether the caller
// should retry with a new token: yes when tok was already replaced, or when
// this refusal replaces it; no while the session is backing off from
// refused tokens, because IMDS then refuses whatever token it is given.
func (s *session) invalidate(tok string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok != tok {
		return true
	}
	now := time.Now()
	if now.Before(s.refusedUntil) {
		return false
	}
	s.tok = ""
	s.refused++
	s.refusing.Store(true)
	wait := jitter(backoff(s.refused, minRefusedBackoff, maxRefusedBackoff))
	s.refusedUntil = now.Add(wait)
	s.log.Warn("upstream refused the session token; replacing it", "refused", s.refused, "next_replacement_after", wait)
	return true
}

// accepted records an answer that was not a 401: IMDS takes our token, and
// the refused-token back-off, if any, ends.
func (s *session) accepted() {
	if !s.refusing.Load() {
		return
	}
	s.mu.Lock()
	s.refused, s.refusedUntil = 0, time.Time{}
	s.refusing.Store(false)
	s.mu.Unlock()
}

// maxToken bounds the session token IMDS may give (IMDS's are 56 bytes).
const maxToken = 1024

// putToken is the PUT /latest/api/token request.
func (c *Client) putToken(ctx context.Context, ttl time.Duration) (string, error) {
	resp, err := c.send(ctx, http.MethodPut, imds.TokenURLPath, imds.HeaderTokenTTL, strconv.Itoa(int(ttl/time.Second)))
	if err != nil {
		return "", fmt.Errorf("upstream token PUT: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("upstream token PUT: %s", resp.Status)
	}
	body, _ := io.ReadAll(resp.Body) // in memory already (send)
	tok := strings.TrimSpace(string(body))
	if tok == "" || len(body) >= maxToken {
		return "", errors.New("upstream token PUT: empty or oversized token")
	}
	return tok, nil
}

// TokenPuts is the number of token PUTs sent upstream so far.
func (c *Client) TokenPuts() uint64 { return c.session.puts.Load() }

// TokenPutFailures is the number of token PUTs that failed so far: no
// answer, a status other than 200, or no usable token.
func (c *Client) TokenPutFailures() uint64 { return c.session.putFails.Load() }
