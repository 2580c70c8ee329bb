package e2e

import (
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/tools/testbed"
)

// The daemon SIGKILLed while 16 clients use it through the redirect rules
// (testbed.Host: AEMM as IMDS, tokens required).

const (
	crashClients  = 16
	crashUA       = "e2e-crash-client"
	crashMetrics  = "127.0.0.1:9989" // in the host namespace
	crashBudget   = time.Second      // an SDK's budget per request
	restartBudget = time.Second      // serving again within this of the new daemon's start
)

// crashConfig is the daemon's configuration in this test: the Host's, with
// metrics (goroutine counts) and routine IMDSv2 reads summarized (the load
// would otherwise fill the log with a line a request).
var crashConfig = testbed.HostGuardConfig{AuditSummary: "1m", Extra: "metrics: {listen: \"" + crashMetrics + "\"}"}

// crashProbe is one of the clients: where it runs and what it asks.
type crashProbe struct {
	name string
	*testbed.Prober
}

// startCrashProbes starts the 16 clients: half in the host, half in the
// container c1; IPv4 and IPv6; IMDSv1 and IMDSv2 (with a token imdsguard
// minted for that namespace through the redirect).
func startCrashProbes(t *testing.T, h *testbed.Host) []crashProbe {
	t.Helper()
	// A container's tokens are bound to its address: one per namespace and family.
	tokens := map[string]string{}
	for _, ns := range []string{h.HostNS, h.C1NS} {
		for _, v := range []int{4, 6} {
			r, err := testbed.RawRequestIn(ns, testbed.IMDSAddr(v), "PUT", "/latest/api/token", []string{"X-aws-ec2-metadata-token-ttl-seconds: 600"})
			if err != nil || r.Status != 200 || len(r.Body) == 0 {
				t.Fatalf("token PUT from %s over IPv%d: %+v %v", ns, v, r, err)
			}
			tokens[fmt.Sprint(ns, v)] = string(r.Body)
		}
	}
	var ps []crashProbe
	for i := range crashClients {
		ns, where := h.HostNS, "host"
		if i%2 == 1 {
			ns, where = h.C1NS, "c1"
		}
		v, version := 4+2*(i/2%2), "v1"
		hdr := http.Header{"User-Agent": {crashUA}}
		if i/4%2 == 1 {
			version = "v2"
			hdr.Set("X-aws-ec2-metadata-token", tokens[fmt.Sprint(ns, v)])
		}
		ps = append(ps, crashProbe{
			name: fmt.Sprintf("%s-v%d-%s-%d", where, v, version, i),
			Prober: testbed.StartProbe(testbed.ProbeSpec{NS: ns, URL: testbed.IMDSURL(v) + instanceIDPath,
				Header: hdr, Timeout: crashBudget, Pause: 20 * time.Millisecond}),
		})
	}
	return ps
}

// servedCrashProbes starts the clients and waits until each was served;
// stopAll stops them all, and runs again (a no-op then) when the test ends.
func servedCrashProbes(t *testing.T, h *testbed.Host, when string) (ps []crashProbe, stopAll func()) {
	t.Helper()
	ps = startCrashProbes(t, h)
	stopAll = func() {
		for _, p := range ps {
			p.Stop()
		}
	}
	t.Cleanup(stopAll)
	waitServed(t, ps, time.Now(), when)
	return ps, stopAll
}

// firstServed is the end of the first good answer among outs to a request
// sent at or after from (zero if none).
func firstServed(outs []testbed.Outcome, from time.Time) time.Time {
	for _, o := range outs {
		if !o.Start.Before(from) && good(o) {
			return o.End
		}
	}
	return time.Time{}
}

// good is a 200 with the instance id: only imdsguard answers so (AEMM
// requires tokens, and imdsguard's are not AEMM's).
func good(o testbed.Outcome) bool {
	return o.Err == nil && o.Status == 200 && o.Body == testbed.AEMMInstanceID
}

// TestTransparentKilledUnderLoad: imdsguard killed with SIGKILL while 16
// clients (host and container, IPv4 and IPv6, IMDSv1 and IMDSv2) ask through
// its rules. While it is dead, nothing reaches IMDS: every request of the
// clients fails without an answer (connection refused, or reset for those
// in flight at the kill), and AEMM logs no request but the daemon's own
// (its User-Agent, from the host's uplink address). Restarted, it serves
// every client again within 1 s of its start. And once it has served two
// rounds of the clients, its goroutines and fds are where they were after
// the first.
func TestTransparentKilledUnderLoad(t *testing.T) {
	_, h, g := transparent(t, testbed.HostOptions{}, crashConfig)
	ps, stopAll := servedCrashProbes(t, h, "before the kill")
	time.Sleep(time.Second)

	kill := time.Now()
	if err := g.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now() // reaped: its sockets are gone
	time.Sleep(2 * time.Second)
	restart := time.Now()
	g2 := h.StartGuard(crashConfig)
	listening := time.Now()
	waitServed(t, ps, restart, "after the restart")
	time.Sleep(time.Second)
	stopAll()

	checkDeadWindow(t, ps, kill, killed, restart)
	checkAnswers(t, ps)
	checkAEMMSawOnlyTheDaemon(t, h)
	checkRestart(t, ps, restart, listening)
	checkRestartedNoGrowth(t, h, g2)
}

// waitServed waits (15 s at most) until every client had a good answer to
// a request it sent after from; it fails t naming those that did not, with
// what they got last.
func waitServed(t *testing.T, ps []crashProbe, from time.Time, when string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var waiting []string
		for _, p := range ps {
			outs := p.Outcomes()
			if firstServed(outs, from).IsZero() {
				last := "nothing yet"
				if len(outs) > 0 {
					o := outs[len(outs)-1]
					last = fmt.Sprintf("%d %q %v", o.Status, o.Body, o.Err)
				}
				waiting = append(waiting, fmt.Sprintf("%s (%d requests, last: %s)", p.name, len(outs), last))
			}
		}
		if len(waiting) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s, not served within 15 s: %s", when, strings.Join(waiting, "; "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkDeadWindow: the requests sent once the killed daemon was reaped and
// done before the restart all failed without an answer; it logs how, and
// how the requests in flight at the kill ended.
func checkDeadWindow(t *testing.T, ps []crashProbe, kill, killed, restart time.Time) {
	t.Helper()
	kinds := map[string]int{}
	n, inFlight := 0, map[string]int{}
	for _, p := range ps {
		for _, o := range p.Outcomes() {
			switch {
			case o.Start.Before(kill) && !o.End.Before(kill) && o.Status == 0:
				inFlight[testbed.ErrorKind(o.Err)]++
			case !o.Start.Before(killed) && o.End.Before(restart):
				n++
				if o.Status != 0 {
					t.Errorf("%s: an answer while the daemon was dead: %d %q", p.name, o.Status, o.Body)
					continue
				}
				kinds[testbed.ErrorKind(o.Err)]++
			}
		}
	}
	t.Logf("daemon dead for %v: %d requests of the clients, none answered: %v; in flight at the kill, failed: %v",
		restart.Sub(killed).Round(time.Millisecond), n, kinds, inFlight)
	if n == 0 {
		t.Error("no request was sent while the daemon was dead")
	}
	if kinds["timeout"] > 0 {
		t.Errorf("%d requests timed out while the daemon was dead: the rules must refuse at once", kinds["timeout"])
	}
}

// checkAnswers: every answer any client got in the whole test was
// imdsguard's; an answer of AEMM (401 for these clients) would mean a
// request got around the daemon.
func checkAnswers(t *testing.T, ps []crashProbe) {
	t.Helper()
	total, served := 0, 0
	for _, p := range ps {
		for _, o := range p.Outcomes() {
			total++
			switch {
			case good(o):
				served++
			case o.Status != 0:
				t.Errorf("%s: answer %d %q at %v: not imdsguard's", p.name, o.Status, o.Body, o.End.Format(time.StampMicro))
			}
		}
	}
	t.Logf("%d clients, %d requests in all, %d answered by imdsguard, the rest failed without an answer", len(ps), total, served)
}

// checkAEMMSawOnlyTheDaemon: every request AEMM logged came from the
// daemon: its User-Agent, from the host's uplink address.
func checkAEMMSawOnlyTheDaemon(t *testing.T, h *testbed.Host) {
	t.Helper()
	reqs := bothAEMM(h)
	byUA := map[string]int{}
	for _, r := range reqs {
		byUA[r.UserAgent]++
		host, _, err := net.SplitHostPort(r.Remote)
		if !strings.HasPrefix(r.UserAgent, "imdsguard/") || err != nil || (host != testbed.HostUpV4 && host != testbed.HostUpV6) {
			t.Errorf("AEMM got a request that is not the daemon's: %+v", r)
		}
	}
	t.Logf("AEMM logged %d requests, by User-Agent: %v", len(reqs), byUA)
	if len(reqs) == 0 {
		t.Error("AEMM logged no request at all: the test proves nothing")
	}
}

// checkRestart: the new daemon served every client within restartBudget
// of its start.
func checkRestart(t *testing.T, ps []crashProbe, restart, listening time.Time) {
	t.Helper()
	var after []time.Duration
	for _, p := range ps {
		if f := firstServed(p.Outcomes(), restart); !f.IsZero() {
			after = append(after, f.Sub(restart))
		}
	}
	sort.Slice(after, func(i, j int) bool { return after[i] < after[j] })
	if len(after) != len(ps) {
		t.Fatalf("%d of %d clients served after the restart", len(after), len(ps))
	}
	t.Logf("restarted: listening %v after its start; first client served after %v, all %d after %v",
		listening.Sub(restart).Round(time.Millisecond), after[0].Round(time.Millisecond), len(ps), after[len(after)-1].Round(time.Millisecond))
	if last := after[len(after)-1]; last > restartBudget {
		t.Errorf("the last client was served %v after the daemon's start, want within %v", last.Round(time.Millisecond), restartBudget)
	}
}

// checkRestartedNoGrowth: a second round of the clients leaves the
// restarted daemon's goroutines and fds where the first round left them.
func checkRestartedNoGrowth(t *testing.T, h *testbed.Host, g *testbed.Guard) {
	t.Helper()
	client := testbed.ClientIn(h.HostNS, 2*time.Second)
	read := func() (testbed.DaemonCounts, error) {
		return testbed.ReadDaemonCounts(client, "http://"+crashMetrics+"/metrics", g.Pid())
	}
	base := settleCounts(t, read)
	ps := startCrashProbes(t, h)
	start := time.Now()
	time.Sleep(2 * time.Second)
	for _, p := range ps {
		if firstServed(p.Stop(), start).IsZero() {
			t.Errorf("second round: %s never served", p.name)
		}
	}
	checkNoGrowth(t, "a second round of the 16 clients", base, read)
}
