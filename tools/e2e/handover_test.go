package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/tools/testbed"
)

// TestTransparentHandover: a second imdsguard started beside the first on
// one host (what a DaemonSet's surge rollout does on a node) while the 16
// clients of the crash test read in a loop. The new daemon takes the
// listening sockets over and, once the old one lets go, the rules; the old
// one stops accepting, finishes, and waits to be stopped; stopped, it
// leaves everything to the new one. Not one read fails on the way, nothing
// reaches IMDS but the daemons, and the new daemon restores rules deleted
// from outside (it keeps them now).
func TestTransparentHandover(t *testing.T) {
	e, h, old := transparent(t, testbed.HostOptions{}, crashConfig)
	ps, stopAll := servedCrashProbes(t, h, "before the handover")
	time.Sleep(time.Second)

	surge := time.Now()
	succ := h.StartGuard(crashConfig)
	waitLog(t, old, "handed the listeners over", 5*time.Second)
	waitLog(t, succ, "took the rules over", 5*time.Second)
	took := time.Since(surge)
	time.Sleep(time.Second)
	waitServed(t, ps, time.Now(), "after the handover")

	stopped := time.Now()
	if err := old.Stop(); err != nil {
		t.Errorf("the old daemon, stopped after the handover: %v", err)
	}
	stopTook := time.Since(stopped)
	time.Sleep(time.Second)
	waitServed(t, ps, time.Now(), "after the old daemon stopped")

	// The new daemon keeps the rules: an outside flush is put back.
	h.Shell(h.HostNS, "iptables -t nat -F IMDSGUARD-OUT")
	waitLog(t, succ, "restored rules deleted from outside", 5*time.Second)
	time.Sleep(500 * time.Millisecond)
	stopAll()

	failed, total := 0, 0
	kinds := map[string]int{}
	for _, p := range ps {
		for _, o := range p.Outcomes() {
			total++
			if !good(o) {
				failed++
				kinds[testbed.ErrorKind(o.Err)]++
				if failed <= 5 {
					t.Errorf("%s: a failed read at %v: %d %q %v", p.name, o.End.Format(time.StampMicro), o.Status, o.Body, o.Err)
				}
			}
		}
	}
	t.Logf("surge: the new daemon had the sockets and the rules %v after its start; the old one stopped in %v; %d reads by %d clients, %d failed %v",
		took.Round(time.Millisecond), stopTook.Round(time.Millisecond), total, len(ps), failed, kinds)
	checkAEMMSawOnlyTheDaemon(t, h)
	if r := e.Run(h.Rules(succ, "status")); r.Err != nil {
		t.Errorf("rules status after the handover: %v", r)
	}
	// `rules install` (the DaemonSet's init container) leaves the rules to
	// the daemon that keeps them.
	if r := e.Run(h.Rules(succ, "install")); r.Err != nil || !strings.Contains(r.Stdout, fmt.Sprintf("kept by the running imdsguard (pid %d)", succ.Pid())) {
		t.Errorf("rules install beside the daemon: %v", r)
	}
}

// waitLog waits until g's log has a line containing msg.
func waitLog(t *testing.T, g *testbed.Guard, msg string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(g.Stderr(), msg) {
		if time.Now().After(deadline) {
			t.Fatalf("pid %d did not log %q within %v", g.Pid(), msg, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
