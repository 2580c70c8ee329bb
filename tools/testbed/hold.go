package testbed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// HoldSpec is a crowd of connections that never complete a request: Idle
// send nothing at all, Slow send a request line and then one header byte a
// second. Whenever the server closes one, it is opened again after a random
// pause of up to Reopen, so that the crowd stays about Idle+Slow strong.
type HoldSpec struct {
	Addr       string
	Idle, Slow int
	Reopen     time.Duration
	Dial       DialFunc // nil: a plain net.Dialer
}

// slowStart is what a slow connection sends first: a request line and the
// start of its headers, never their end.
const slowStart = "GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: 169.254.169.254\r\nX-Slow: "

// Holder is a running HoldSpec.
type Holder struct {
	spec                             HoldSpec
	open                             atomic.Int64
	opened, closedByPeer, dialFailed atomic.Int64
	cancel                           context.CancelFunc
	wg                               sync.WaitGroup
}

// HoldStats is what a Holder did.
type HoldStats struct {
	Open, Opened, ClosedByPeer, DialFailed int64
}

func (s HoldStats) String() string {
	return fmt.Sprintf("%d open, %d opened in all, %d closed by the server, %d dials failed",
		s.Open, s.Opened, s.ClosedByPeer, s.DialFailed)
}

// StartHold starts the crowd; Stop ends it.
func StartHold(spec HoldSpec) *Holder {
	if spec.Dial == nil {
		spec.Dial = (&net.Dialer{Timeout: 5 * time.Second}).DialContext
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &Holder{spec: spec, cancel: cancel}
	for i := range spec.Idle + spec.Slow {
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			h.keep(ctx, i >= spec.Idle)
		}()
	}
	return h
}

// Stats are the counts so far.
func (h *Holder) Stats() HoldStats {
	return HoldStats{Open: h.open.Load(), Opened: h.opened.Load(), ClosedByPeer: h.closedByPeer.Load(), DialFailed: h.dialFailed.Load()}
}

// Stop closes every connection, waits for the keepers and returns the
// counts.
func (h *Holder) Stop() HoldStats {
	h.cancel()
	h.wg.Wait()
	return h.Stats()
}

// keep holds one connection open (again and again) until ctx ends.
func (h *Holder) keep(ctx context.Context, slow bool) {
	for ctx.Err() == nil {
		c, err := h.spec.Dial(ctx, "tcp", h.spec.Addr)
		if err != nil {
			if ctx.Err() == nil {
				h.dialFailed.Add(1)
			}
		} else {
			h.opened.Add(1)
			h.open.Add(1)
			if h.hold(ctx, c, slow) {
				h.closedByPeer.Add(1)
			}
			h.open.Add(-1)
			c.Close()
		}
		select {
		case <-ctx.Done():
		case <-time.After(rand.N(h.spec.Reopen + 1)):
		}
	}
}

// hold keeps c open, dripping bytes when slow, until ctx ends (false) or
// the server closes it or answers (true).
func (h *Holder) hold(ctx context.Context, c net.Conn, slow bool) bool {
	if slow {
		if _, err := io.WriteString(c, slowStart); err != nil {
			return true
		}
	}
	buf := make([]byte, 512)
	for ctx.Err() == nil {
		if err := c.SetReadDeadline(time.Now().Add(time.Second)); err != nil {
			return true
		}
		_, err := c.Read(buf)
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return true // closed, reset or answered: the server is done with it
		}
		if slow {
			if _, err := c.Write([]byte{'a'}); err != nil {
				return true
			}
		}
	}
	return false
}
