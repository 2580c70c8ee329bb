package testbed

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"
)

// ProbeSpec is one client asking URL again and again from network
// namespace NS ("" = this one) on a keep-alive connection of its own (a new
// one after a failure), each request bounded by Timeout, pausing Pause
// after a failure so that a refused port is not hammered.
type ProbeSpec struct {
	NS, URL        string
	Header         http.Header
	Timeout, Pause time.Duration
}

// Outcome is one request of a probe: an HTTP answer (Status, the start of
// Body) or an error.
type Outcome struct {
	Start, End time.Time
	Status     int // 0: no answer
	Body       string
	Err        error
}

// Prober is a running ProbeSpec.
type Prober struct {
	spec     ProbeSpec
	mu       sync.Mutex
	outcomes []Outcome
	cancel   context.CancelFunc
	done     chan struct{}
}

// StartProbe starts the client; Stop ends it.
func StartProbe(spec ProbeSpec) *Prober {
	ctx, cancel := context.WithCancel(context.Background())
	p := &Prober{spec: spec, cancel: cancel, done: make(chan struct{})}
	go p.run(ctx)
	return p
}

// Outcomes are the requests so far, in order.
func (p *Prober) Outcomes() []Outcome {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Outcome(nil), p.outcomes...)
}

// Stop ends the client (a request in flight is abandoned, not recorded)
// and returns every outcome.
func (p *Prober) Stop() []Outcome {
	p.cancel()
	<-p.done
	return p.Outcomes()
}

func (p *Prober) run(ctx context.Context) {
	defer close(p.done)
	tr := KeepAliveTransport(DialerIn(p.spec.NS, p.spec.Timeout))
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	for ctx.Err() == nil {
		o := p.once(ctx, hc)
		if ctx.Err() != nil {
			return
		}
		p.mu.Lock()
		p.outcomes = append(p.outcomes, o)
		p.mu.Unlock()
		if o.Err != nil || o.Status == 0 {
			select {
			case <-ctx.Done():
			case <-time.After(p.spec.Pause):
			}
		}
	}
}

func (p *Prober) once(ctx context.Context, hc *http.Client) Outcome {
	rctx, cancel := context.WithTimeout(ctx, p.spec.Timeout)
	defer cancel()
	o := Outcome{Start: time.Now()}
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, p.spec.URL, nil)
	if err != nil {
		o.Err, o.End = err, time.Now()
		return o
	}
	req.Header = p.spec.Header.Clone()
	resp, err := hc.Do(req)
	if err != nil {
		o.Err, o.End = err, time.Now()
		return o
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 200))
	o.Status, o.Body, o.Err, o.End = resp.StatusCode, string(body), err, time.Now()
	return o
}

// ErrorKind names what a failed request met: "refused" (nothing listens),
// "reset", "eof" (closed without an answer), "timeout", or "other".
func ErrorKind(err error) string {
	var te interface{ Timeout() bool }
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded), errors.As(err, &te) && te.Timeout():
		return "timeout"
	}
	return "other"
}
