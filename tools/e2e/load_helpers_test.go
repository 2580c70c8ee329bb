package e2e

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/internal/netnstest"
	"github.com/imdsguard/imdsguard/tools/fakeimds"
	"github.com/imdsguard/imdsguard/tools/testbed"
)

// The load tests run imdsguard (endpoint mode, its default policy and cache
// settings) in front of fakeimds in a network namespace of their own, so
// that thousands of sockets and their ports stay out of the machine's
// loopback, which other tests share. They need root.

const (
	loadGuardPort   = 8989
	loadGuardAddr   = "127.0.0.1:8989"
	loadFakeAddr    = "127.0.0.1:8990"
	loadMetricsAddr = "127.0.0.1:9989"
	// Growth allowed after a scenario, once settled: a few goroutines and
	// fds come and go on their own (the watchdog probe, a metrics scrape,
	// an idle upstream connection).
	slackGoroutines = 10
	slackFDs        = 5
	// How long counts may take to settle: idle upstream connections close
	// after the upstream transport's IdleConnTimeout (30 s).
	settleWithin = 35 * time.Second
)

// loadBed is imdsguard and fakeimds in a namespace, and what a test needs to
// ask them.
type loadBed struct {
	e       *testbed.Env
	ns      string
	fake    *testbed.FakeIMDS
	guard   *testbed.Guard
	token   string       // an imdsguard token for this test's process
	metrics *http.Client // in ns
}

// newLoadBed raises this process's open-files limit to files (the daemon,
// started afterwards, inherits the hard limit and, as any Go program, raises
// its soft limit to it), then starts fakeimds and imdsguard in a fresh
// namespace and fetches a token. extra is more of imdsguard's
// configuration ("" for none).
func newLoadBed(t *testing.T, files uint64, extra string) *loadBed {
	t.Helper()
	e := testbed.New(t)
	e.RequireBins("fakeimds", "imdsguard")
	netnstest.RequireRoot(t)
	lim := testbed.RaiseNOFILE(t, files)
	t.Logf("this test's open-files limit: %d (hard %d)", lim.Cur, lim.Max)
	b := &loadBed{e: e, ns: netnstest.New(t, "load")}
	b.metrics = testbed.ClientIn(b.ns, 2*time.Second)
	b.fake = e.StartFakeIMDSIn(b.ns, loadFakeAddr)
	b.guard = e.StartGuard(testbed.GuardConfig{
		Port: loadGuardPort, UpstreamURL: b.fake.URL, AuditSummary: "1m",
		Extra: "metrics: {listen: \"" + loadMetricsAddr + "\"}\n" + extra,
	}, testbed.GuardOptions{NS: b.ns})
	soft, hard, err := testbed.ProcNOFILE(b.guard.Pid())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("imdsguard's open-files limit: %d (hard %d)", soft, hard)
	r, err := testbed.RawRequestIn(b.ns, loadGuardAddr, "PUT", "/latest/api/token", []string{"X-aws-ec2-metadata-token-ttl-seconds: 21600"})
	if err != nil || r.Status != 200 || len(r.Body) == 0 {
		t.Fatalf("token PUT to imdsguard: %+v %v", r, err)
	}
	b.token = string(r.Body)
	return b
}

// daemonClosed counts the TCP connections on the daemon's port that the
// daemon closed first within the last minute: those in TIME_WAIT on its
// side. The clients' closes (TIME_WAIT on their side) are counted too, as
// the proof that the query sees closed connections at all: a load's
// clients close theirs when it ends.
func (b *loadBed) daemonClosed(t *testing.T) int {
	t.Helper()
	port := strconv.Itoa(loadGuardPort)
	count := func(filter string) int {
		out := netnstest.Run(t, "ip", "netns", "exec", b.ns, "ss", "-Htan", "state", "time-wait", filter)
		n := 0
		for _, l := range strings.Split(out, "\n") {
			if strings.TrimSpace(l) != "" {
				n++
			}
		}
		return n
	}
	byDaemon, byClients := count("( sport = :"+port+" )"), count("( dport = :"+port+" )")
	t.Logf("connections in TIME_WAIT: %d closed first by the daemon, %d by the clients", byDaemon, byClients)
	if byClients == 0 {
		t.Errorf("ss sees no TIME_WAIT from the clients' closes: the check of the daemon's closes sees nothing either")
	}
	return byDaemon
}

// counts reads the daemon's goroutines, fds and threads.
func (b *loadBed) counts(t *testing.T) testbed.DaemonCounts {
	t.Helper()
	c, err := testbed.ReadDaemonCounts(b.metrics, "http://"+loadMetricsAddr+"/metrics", b.guard.Pid())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// load is a v2 load of clients keep-alive clients for d on the instance id.
func (b *loadBed) load(clients int, d time.Duration) testbed.LoadSpec {
	return testbed.LoadSpec{
		Clients: clients, Duration: d, Timeout: 10 * time.Second,
		URL:    "http://" + loadGuardAddr + instanceIDPath,
		Header: http.Header{"X-Aws-Ec2-Metadata-Token": {b.token}},
		Want:   fakeimds.InstanceID,
		Dial:   testbed.DialerIn(b.ns, 5*time.Second),
	}
}

// maxPSS bounds the daemon's memory (PSS) under 1,000 open connections.
// It is generous on purpose: the figure itself is the benchmark's to
// report (`make bench`: 50 to 80 MB with net/http's server, against an
// envelope of 40 MB); this catches memory kept per connection far past
// what a Go HTTP server needs, 100 KB or more: netlink's 64 KB receive
// buffer on each connection's goroutine, say, which the daemon once had.
const maxPSS = 128 << 20

// memoryBounded logs the daemon's snapshots ss, taken under load, and
// fails t when one could not be read or when the smallest of their PSS
// readings is over maxPSS. The smallest counts: a GC returns what a moment
// of load took; memory kept per connection stays.
func memoryBounded(t *testing.T, ss []memSnapshot) {
	t.Helper()
	var least int64
	for i, s := range ss {
		t.Logf("imdsguard under load, reading %d: %s", i+1, s)
		if s.err != nil {
			t.Errorf("reading the daemon under load: %v", s.err)
			return
		}
		if i == 0 || s.pssKB < least {
			least = s.pssKB
		}
	}
	t.Logf("PSS: %.1f MB at the smallest reading", float64(least)/1024)
	if least<<10 > maxPSS {
		t.Errorf("the daemon's PSS is %.1f MB under 1,000 connections, want at most %d MB", float64(least)/1024, maxPSS>>20)
	}
}

// noGrowth waits until the daemon's goroutines and fds are back within
// slack of base, failing t if they do not come back within settleWithin.
func (b *loadBed) noGrowth(t *testing.T, scenario string, base testbed.DaemonCounts) {
	t.Helper()
	checkNoGrowth(t, scenario, base, func() (testbed.DaemonCounts, error) {
		return testbed.ReadDaemonCounts(b.metrics, "http://"+loadMetricsAddr+"/metrics", b.guard.Pid())
	})
}

// checkNoGrowth is noGrowth for any daemon: read gives its counts.
func checkNoGrowth(t *testing.T, scenario string, base testbed.DaemonCounts, read func() (testbed.DaemonCounts, error)) {
	t.Helper()
	start := time.Now()
	now, ok, err := testbed.WaitNoGrowth(read, base, slackGoroutines, slackFDs, settleWithin)
	if err != nil {
		t.Fatal(err)
	}
	g, f := testbed.Growth(base, now)
	t.Logf("after %s: %v (before: %v; %+d goroutines, %+d fds; settled in %v)",
		scenario, now, base, g, f, time.Since(start).Round(10*time.Millisecond))
	if !ok {
		t.Errorf("after %s the daemon kept %+d goroutines and %+d fds over %v after %v (slack %d and %d): a leak",
			scenario, g, f, base, settleWithin, slackGoroutines, slackFDs)
	}
}

// settle waits until the daemon's goroutines and fds stop moving (two reads
// 500 ms apart agree, for at most settleWithin) and returns them: the
// baseline of the next scenario.
func (b *loadBed) settle(t *testing.T) testbed.DaemonCounts {
	t.Helper()
	return settleCounts(t, func() (testbed.DaemonCounts, error) {
		return testbed.ReadDaemonCounts(b.metrics, "http://"+loadMetricsAddr+"/metrics", b.guard.Pid())
	})
}

func settleCounts(t *testing.T, read func() (testbed.DaemonCounts, error)) testbed.DaemonCounts {
	t.Helper()
	deadline := time.Now().Add(settleWithin)
	last, err := read()
	if err != nil {
		t.Fatal(err)
	}
	for time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
		now, err := read()
		if err != nil {
			t.Fatal(err)
		}
		if now.Goroutines == last.Goroutines && now.FDs == last.FDs {
			return now
		}
		last = now
	}
	return last
}
