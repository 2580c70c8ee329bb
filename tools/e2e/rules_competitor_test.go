package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/tools/testbed"
)

// Issue 24, part 4: an agent that also wants rule 1. A Felix-like
// competitor (testbed.Competitor) keeps its own jumps first in nat
// PREROUTING and filter FORWARD, re-checking every 2 s, for an episode of
// competitorEpisode while clients on the host and in c1 read metadata
// without a pause. Whatever it jumps to, no read may be lost or answered by
// IMDS itself, and imdsguard must not storm: at most one restore per
// competitor refresh that moved its jumps, and at most one warning for the
// whole episode, not one per tick. When everything above imdsguard's jumps
// provably cannot match metadata traffic (CompetitorHarmless), imdsguard
// leaves it there: no restore, no warning, at most one line saying so.
const (
	competitorEpisode = 24 * time.Second
	competitorMetrics = "127.0.0.1:19924"
)

func TestRulesCompetitor(t *testing.T) {
	for _, v := range []testbed.CompetitorVariant{testbed.CompetitorHarmless, testbed.CompetitorMayMatch} {
		t.Run(v.String(), func(t *testing.T) { competitorEpisodeTest(t, v) })
	}
}

func competitorEpisodeTest(t *testing.T, v testbed.CompetitorVariant) {
	e, h, g := transparent(t, testbed.HostOptions{}, testbed.HostGuardConfig{
		Extra: "metrics: {listen: \"" + competitorMetrics + "\"}"})
	for _, ns := range []string{h.HostNS, h.C1NS} {
		testbed.WaitFor(t, "served from "+ns, func() bool { return servedByGuard(ns, 4) })
	}
	restores0, lines0, aemm0 := restoresMetric(t, e, h), len(g.Events()), len(bothAEMM(h))
	readers := startReaders(h.HostNS, h.C1NS)
	c := testbed.StartCompetitor(t, h.HostNS, testbed.CompetitorOptions{Variant: v})
	time.Sleep(competitorEpisode)
	c.Stop()
	reads := readers.stop()
	time.Sleep(time.Second) // a restore of the last refresh's change is counted

	counts, err := c.Counts()
	if err != nil {
		t.Fatalf("competitor: %v", err)
	}
	restores := restoresMetric(t, e, h) - restores0
	lines := g.Events()[lines0:]
	t.Logf("competitor (%s): %d refreshes, %d re-inserts in %d of them; imdsguard: %d restores (%.2f per refresh), log lines: %s",
		v, counts.Refreshes, counts.Reinserts, counts.Fights, restores, float64(restores)/float64(max(counts.Refreshes, 1)), lineSummary(lines))
	checkReads(t, reads, bothAEMM(h)[aemm0:])
	checkFight(t, v, restores, counts, lines)
}

// checkFight holds imdsguard's answer to the competitor to the issue's
// bounds.
func checkFight(t *testing.T, v testbed.CompetitorVariant, restores int, c testbed.CompetitorCounts, lines []map[string]any) {
	t.Helper()
	warns, infos := daemonLines(lines, "WARN"), daemonLines(lines, "INFO")
	if restores > c.Fights {
		t.Errorf("%d restores for %d competitor refreshes that moved its jumps: more than one restore per refresh", restores, c.Fights)
	}
	if v == testbed.CompetitorHarmless {
		// The first time the competitor's jumps go above imdsguard's, they
		// are moved back once (one restore, one warning); when they come
		// back, imdsguard's stay below them (nothing there can match
		// metadata traffic), said once per built-in chain the competitor
		// sits on top of (nat PREROUTING, filter FORWARD).
		below := 0
		for _, l := range infos {
			if strings.Contains(l, "leaving the jump below rules that cannot touch metadata traffic") {
				below++
			}
		}
		if restores > 1 || len(warns) > 1 || below == 0 || below > 2 {
			t.Errorf("harmless competitor: %d restores (want at most 1), %d warnings (want at most 1), %d lines leaving the jumps below (want 1 or 2): %v",
				restores, len(warns), below, append(warns, infos...))
		}
		return
	}
	if len(warns) != 1 {
		t.Errorf("log: want one warning for the episode (not one per tick), got %d: %v", len(warns), warns)
	}
}

// daemonLines are the lines of level among lines that are not audit
// events.
func daemonLines(lines []map[string]any, level string) []string {
	var out []string
	for _, ev := range lines {
		if ev["level"] == level && ev["msg"] != "imds request" {
			out = append(out, fmt.Sprint(ev["msg"]))
		}
	}
	return out
}

// lineSummary counts lines by level and message, audit events aside.
func lineSummary(lines []map[string]any) string {
	n := map[string]int{}
	for _, ev := range lines {
		if ev["msg"] != "imds request" {
			n[fmt.Sprintf("%v %q", ev["level"], ev["msg"])]++
		}
	}
	return fmt.Sprint(n)
}

// restoresMetric is imdsguard_rule_restores_total from the daemon's
// metrics endpoint in the host namespace.
func restoresMetric(t *testing.T, e *testbed.Env, h *testbed.Host) int {
	t.Helper()
	r := e.Run(h.InHost(e.Curl("http://" + competitorMetrics + "/metrics")))
	if r.Err != nil {
		t.Fatalf("metrics: %v", r)
	}
	n := metricValue(r.Stdout, "imdsguard_rule_restores_total")
	if n < 0 {
		t.Fatalf("no imdsguard_rule_restores_total in the scrape:\n%s", grepLines(r.Stdout, "imdsguard_"))
	}
	return n
}

// checkReads wants every read served by imdsguard and nothing at AEMM but
// imdsguard's own requests.
func checkReads(t *testing.T, reads map[string]map[string]int, atAEMM []aemmRequest) {
	t.Helper()
	for ns, got := range reads {
		t.Logf("reads from %s: %v", ns, got)
		if got["served"] == 0 {
			t.Errorf("no read from %s was served", ns)
		}
		for what, n := range got {
			if what != "served" {
				t.Errorf("%d reads from %s: %s (lost, or sent to IMDS directly)", n, ns, what)
			}
		}
	}
	for _, r := range atAEMM {
		if !strings.HasPrefix(r.UserAgent, "imdsguard/") {
			t.Errorf("AEMM got a request that did not come through imdsguard: %+v", r)
		}
	}
}

// readers read the instance id without a pause, one loop per namespace,
// and count the outcomes.
type readers struct {
	quit chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	got  map[string]map[string]int
}

func startReaders(nss ...string) *readers {
	r := &readers{quit: make(chan struct{}), got: map[string]map[string]int{}}
	for _, ns := range nss {
		r.got[ns] = map[string]int{}
		r.wg.Add(1)
		go r.loop(ns)
	}
	return r
}

func (r *readers) loop(ns string) {
	defer r.wg.Done()
	for {
		select {
		case <-r.quit:
			return
		default:
		}
		what := readOutcome(ns)
		r.mu.Lock()
		r.got[ns][what]++
		r.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
}

// readOutcome is one v1 GET from ns, classified.
func readOutcome(ns string) string {
	resp, err := rawGet(ns, 4)
	switch {
	case err != nil:
		return "error: " + errClass(err)
	case resp.Status == 200 && string(resp.Body) == testbed.AEMMInstanceID:
		return "served"
	case resp.Status == 401 && resp.Header.Get("Server") == "":
		return aemmDirect
	}
	return fmt.Sprintf("HTTP %d (server %q)", resp.Status, resp.Header.Get("Server"))
}

func (r *readers) stop() map[string]map[string]int {
	close(r.quit)
	r.wg.Wait()
	return r.got
}
