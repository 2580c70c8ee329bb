package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/tools/fakeimds"
	"github.com/imdsguard/imdsguard/tools/testbed"
)

// TestLoadThousandKeepAliveClients: 1,000 clients, each on one keep-alive
// connection of its own, ask imdsguard for the instance id (IMDSv2) one
// request after the other for 60 s (10 s with -short): not one request may
// fail (an error, another answer than 200 with the instance id, or no
// answer within 10 s), and no client may need a second connection. The count and the
// latency percentiles go to the log (performance is reported, not
// asserted), with the daemon's memory and counts halfway through, where
// its memory must stay bounded (memoryBounded); after the load its
// goroutines and fds must come back to where they were.
func TestLoadThousandKeepAliveClients(t *testing.T) {
	const clients = 1000
	d := 60 * time.Second
	if testing.Short() {
		d = 10 * time.Second
	}
	b := newLoadBed(t, 4*clients+1024, "")
	warm := testbed.RunLoad(context.Background(), b.load(clients, 2*time.Second))
	t.Logf("warm-up, %d clients for 2 s: %v", clients, warm)
	if warm.Failures != 0 {
		t.Fatalf("warm-up: %d requests failed: %q", warm.Failures, warm.Failed)
	}
	base := b.settle(t)
	before, err := b.fake.Stats()
	if err != nil {
		t.Fatal(err)
	}
	reads := b.readDuring(d/2-time.Second, 3) // halfway through, and a second either side
	res := testbed.RunLoad(context.Background(), b.load(clients, d))
	t.Logf("%d keep-alive clients for %v: %v", clients, d, res)
	memoryBounded(t, <-reads)
	if after, err := b.fake.Stats(); err == nil {
		t.Logf("fakeimds received %d GETs for the %d requests answered (imdsguard's cache answers the rest)", after.Gets-before.Gets, res.Requests-res.Failures)
	}
	if res.Failures != 0 {
		t.Errorf("%d of %d requests failed, the first: %q", res.Failures, res.Requests, res.Failed)
	}
	// The daemon must not close keep-alive connections under load. The
	// side that closes a TCP connection first keeps it in TIME_WAIT (60 s,
	// as long as the run): a TIME_WAIT socket on the daemon's port at the
	// end is a connection the daemon closed during the run. (The clients'
	// own count of connections also moves when a client's transport
	// replaces a connection for reasons of its own; it is logged above.)
	if n := b.daemonClosed(t); n > 0 {
		t.Errorf("the daemon closed %d keep-alive connections under load (TIME_WAIT on its port)", n)
	}
	b.noGrowth(t, fmt.Sprintf("%d keep-alive clients for %v", clients, d), base)
}

// memSnapshot is the daemon's memory and counts at one moment.
type memSnapshot struct {
	pssKB  int64
	counts testbed.DaemonCounts
	err    error
}

func (s memSnapshot) String() string {
	if s.err != nil {
		return s.err.Error()
	}
	return fmt.Sprintf("PSS %.1f MB, %v", float64(s.pssKB)/1024, s.counts)
}

// readDuring takes n snapshots of the daemon a second apart, the first
// after first, and sends them once it has them all.
func (b *loadBed) readDuring(first time.Duration, n int) <-chan []memSnapshot {
	reads := make(chan []memSnapshot, 1)
	go func() {
		time.Sleep(first)
		ss := []memSnapshot{b.snapshot()}
		for len(ss) < n {
			time.Sleep(time.Second)
			ss = append(ss, b.snapshot())
		}
		reads <- ss
	}()
	return reads
}

// snapshot reads the daemon's memory and counts.
func (b *loadBed) snapshot() memSnapshot {
	var s memSnapshot
	if s.pssKB, s.err = testbed.PSSKB(b.guard.Pid()); s.err == nil {
		s.counts, s.err = testbed.ReadDaemonCounts(b.metrics, "http://"+loadMetricsAddr+"/metrics", b.guard.Pid())
	}
	return s
}

// TestLoadUncachedMemoryBounded: without the cache every read of 1,000
// keep-alive clients waits for one of the daemon's few connections to
// IMDS; no request may fail, and the daemon's memory, with 1,000 requests
// waiting at once, must stay bounded (memoryBounded).
func TestLoadUncachedMemoryBounded(t *testing.T) {
	const clients = 1000
	b := newLoadBed(t, 4*clients+1024, "cache: {enabled: false}")
	warm := testbed.RunLoad(context.Background(), b.load(clients, 2*time.Second))
	t.Logf("warm-up, %d clients for 2 s: %v", clients, warm)
	reads := b.readDuring(time.Second, 3)
	res := testbed.RunLoad(context.Background(), b.load(clients, 5*time.Second))
	t.Logf("%d keep-alive clients for 5 s, without the cache: %v", clients, res)
	if warm.Failures+res.Failures != 0 {
		t.Errorf("%d requests failed, the first: %q %q", warm.Failures+res.Failures, warm.Failed, res.Failed)
	}
	memoryBounded(t, <-reads)
}

// TestLoadIdleAndSlowHeaders: 5,000 connections that never finish a
// request (2,500 send nothing, 2,500 a request line and then a header byte
// a second; each opened again, after a pause of up to 500 ms, whenever the
// daemon closes it) do not keep a well-behaved client from being served:
// for 15 s (three of the daemon's 5 s header timeouts), a request on a new
// connection and one on a kept-alive connection every 200 ms must each be
// answered within 1 s, an SDK's budget (the clients' own timeout). The
// daemon must close the crowd's connections itself (its header timeout)
// and, once the crowd is gone, come back to its goroutines and fds.
func TestLoadIdleAndSlowHeaders(t *testing.T) {
	const idle, slow = 2500, 2500
	const window, every, budget = 15 * time.Second, 200 * time.Millisecond, time.Second
	b := newLoadBed(t, 2*(idle+slow)+1024, "")
	if soft, _, err := testbed.ProcNOFILE(b.guard.Pid()); err != nil || soft < idle+slow+256 {
		t.Fatalf("imdsguard may open %d files (%v): too few for %d connections", soft, err, idle+slow)
	}
	fresh, kept := b.wellBehaved(budget)
	for _, c := range []*http.Client{fresh, kept} {
		if _, err := b.get(c); err != nil {
			t.Fatalf("before the crowd: %v", err)
		}
	}
	base := b.settle(t)

	h := testbed.StartHold(testbed.HoldSpec{Addr: loadGuardAddr, Idle: idle, Slow: slow,
		Reopen: 500 * time.Millisecond, Dial: testbed.DialerIn(b.ns, 5*time.Second)})
	stopped := false
	defer func() {
		if !stopped {
			h.Stop()
		}
	}()
	start := time.Now()
	testbed.WaitFor(t, fmt.Sprintf("%d connections open", idle+slow), func() bool { return h.Stats().Open >= idle+slow })
	t.Logf("%d connections open after %v; imdsguard: %s", idle+slow, time.Since(start).Round(time.Millisecond), b.snapshot())

	lat, failed, open := b.serveThrough(h, fresh, kept, window, every)
	mid := b.snapshot()
	stats := h.Stop()
	stopped = true
	t.Logf("the crowd: %v; imdsguard at the end of the window: %s", stats, mid)
	slices.Sort(open)
	t.Logf("well-behaved client: %s; crowd connections open at its requests: median %d, fewest %d (the daemon closes them all %v after they open, and they come back)",
		lat, open[len(open)/2], open[0], 5*time.Second)
	if len(failed) > 0 {
		t.Errorf("%d well-behaved requests not answered within %v: %q", len(failed), budget, failed)
	}
	if stats.ClosedByPeer < idle+slow {
		t.Errorf("the daemon closed %d crowd connections in %v, want every one of the %d at least once (header timeout %v)",
			stats.ClosedByPeer, window, idle+slow, 5*time.Second)
	}
	b.noGrowth(t, fmt.Sprintf("%d idle and slow-header connections", idle+slow), base)
}

// wellBehaved are two clients with a budget each request: one that opens a
// new connection for every request, one that keeps its connection. Each
// dials through a dialer of its own, never queued behind the crowd's.
func (b *loadBed) wellBehaved(budget time.Duration) (fresh, kept *http.Client) {
	fresh = &http.Client{Timeout: budget, Transport: &http.Transport{DialContext: testbed.DialerIn(b.ns, budget), DisableKeepAlives: true}}
	kept = &http.Client{Timeout: budget, Transport: testbed.KeepAliveTransport(testbed.DialerIn(b.ns, budget))}
	return fresh, kept
}

// get asks for the instance id with the token and checks the answer.
func (b *loadBed) get(c *http.Client) (time.Duration, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+loadGuardAddr+instanceIDPath, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("X-aws-ec2-metadata-token", b.token)
	t0 := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return time.Since(t0), err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	took := time.Since(t0)
	if err != nil || resp.StatusCode != 200 || string(body) != fakeimds.InstanceID {
		return took, fmt.Errorf("status %d, body %q, %v", resp.StatusCode, body, err)
	}
	return took, nil
}

// latencies summarizes the well-behaved requests.
type latencies struct{ fresh, kept []time.Duration }

func (l latencies) String() string {
	var parts []string
	for _, s := range []struct {
		name string
		d    []time.Duration
	}{{"new connection", l.fresh}, {"kept-alive", l.kept}} {
		d := slices.Sorted(slices.Values(s.d))
		if len(d) == 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s: %d answered, median %v, max %v", s.name, len(d),
			d[len(d)/2].Round(10*time.Microsecond), d[len(d)-1].Round(10*time.Microsecond)))
	}
	return strings.Join(parts, "; ")
}

// serveThrough sends the well-behaved requests every `every` for window
// while the crowd holds on; it returns the answered ones' latencies, the
// failures, and the crowd connections open at each round.
func (b *loadBed) serveThrough(h *testbed.Holder, fresh, kept *http.Client, window, every time.Duration) (latencies, []string, []int64) {
	var lat latencies
	var failed []string
	var open []int64
	end := time.Now().Add(window)
	for time.Now().Before(end) {
		open = append(open, h.Stats().Open)
		for _, c := range []struct {
			name   string
			client *http.Client
			into   *[]time.Duration
		}{{"new connection", fresh, &lat.fresh}, {"kept-alive", kept, &lat.kept}} {
			took, err := b.get(c.client)
			if err != nil {
				failed = append(failed, fmt.Sprintf("%s after %v: %v", c.name, took.Round(time.Millisecond), err))
				continue
			}
			*c.into = append(*c.into, took)
		}
		time.Sleep(every)
	}
	return lat, failed, open
}
