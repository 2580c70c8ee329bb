package testbed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// LoadSpec is a closed-loop load: Clients clients, each with one keep-alive
// connection of its own, each sending GET URL again as soon as the last
// answer is in, until Duration has passed.
type LoadSpec struct {
	Clients  int
	Duration time.Duration
	URL      string
	Header   http.Header
	Want     string        // the body of a good answer (status 200)
	Timeout  time.Duration // per request, connect included
	Dial     DialFunc      // nil: a plain net.Dialer
}

// LoadResult is what a load saw. A failure is an error, a status other than
// 200 or another body.
type LoadResult struct {
	Requests, Failures int64
	Failed             []string // the first few failures
	Conns              int64    // connections the clients opened
	Elapsed            time.Duration
	P50, P99, P999     time.Duration
	Max                time.Duration
}

func (r LoadResult) String() string {
	return fmt.Sprintf("%d requests in %v (%.0f/s), %d failed, %d connections opened; latency p50 %v p99 %v p99.9 %v max %v",
		r.Requests, r.Elapsed.Round(time.Millisecond), float64(r.Requests)/r.Elapsed.Seconds(), r.Failures, r.Conns,
		r.P50, r.P99, r.P999, r.Max)
}

// maxFailed bounds LoadResult.Failed.
const maxFailed = 10

// loadRun is the state the clients of one RunLoad share.
type loadRun struct {
	spec     LoadSpec
	conns    atomic.Int64
	failures atomic.Int64
	mu       sync.Mutex
	failed   []string
}

// RunLoad runs spec to its end (or ctx's) and returns what it saw; the
// clients' connections are closed when it returns.
func RunLoad(ctx context.Context, spec LoadSpec) LoadResult {
	if spec.Dial == nil {
		spec.Dial = (&net.Dialer{Timeout: spec.Timeout}).DialContext
	}
	lr := &loadRun{spec: spec}
	ctx, cancel := context.WithTimeout(ctx, spec.Duration)
	defer cancel()
	lat := make([][]time.Duration, spec.Clients)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range spec.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat[i] = lr.client(ctx)
		}()
	}
	wg.Wait()
	res := LoadResult{Elapsed: time.Since(start), Conns: lr.conns.Load(), Failures: lr.failures.Load(), Failed: lr.failed}
	all := slices.Concat(lat...)
	slices.Sort(all)
	res.Requests = int64(len(all)) + res.Failures
	if n := len(all); n > 0 {
		q := func(p float64) time.Duration { return all[min(n-1, int(p*float64(n)))] }
		res.P50, res.P99, res.P999, res.Max = q(0.50), q(0.99), q(0.999), all[n-1]
	}
	return res
}

// client sends requests until ctx ends and returns the latencies of the
// good answers.
func (lr *loadRun) client(ctx context.Context) []time.Duration {
	tr := KeepAliveTransport(func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := lr.spec.Dial(ctx, network, addr)
		if err == nil {
			lr.conns.Add(1)
		}
		return c, err
	})
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	var lat []time.Duration
	for ctx.Err() == nil {
		t0 := time.Now()
		err := lr.once(ctx, hc)
		switch {
		case err == nil:
			lat = append(lat, time.Since(t0))
		case ctx.Err() != nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)):
			// The load's end cut this request short: not the server's doing.
		default:
			lr.fail(err)
		}
	}
	return lat
}

// once sends one request and checks its answer.
func (lr *loadRun) once(ctx context.Context, hc *http.Client) error {
	rctx, cancel := context.WithTimeout(ctx, lr.spec.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, lr.spec.URL, nil)
	if err != nil {
		return err
	}
	for k, v := range lr.spec.Header {
		req.Header[k] = v
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	switch {
	case err != nil:
		return fmt.Errorf("read body: %w", err)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("status %d: %q", resp.StatusCode, clip(strings.TrimSpace(string(body)), 80))
	case string(body) != lr.spec.Want:
		return fmt.Errorf("body %q, want %q", body, lr.spec.Want)
	}
	return nil
}

func (lr *loadRun) fail(err error) {
	lr.failures.Add(1)
	lr.mu.Lock()
	defer lr.mu.Unlock()
	if len(lr.failed) < maxFailed {
		lr.failed = append(lr.failed, clip(err.Error(), 200))
	}
}

// clip cuts s to at most n bytes, marked when cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "[...]"
}
