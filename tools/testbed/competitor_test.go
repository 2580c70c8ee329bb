package testbed

import (
	"strings"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/internal/netnstest"
)

// The competitor puts its jumps first, puts them back first when another
// rule is inserted above them (once per refresh, however many rules came),
// counts that, and leaves them alone while they are first.
func TestCompetitorKeepsItsJumpsFirst(t *testing.T) {
	RequireTools(t, "iptables", "iptables-restore")
	ns := netnstest.New(t, "cmp")
	c := StartCompetitor(t, ns, CompetitorOptions{Variant: CompetitorMayMatch, Every: 100 * time.Millisecond})
	first := func(table, hook string) string {
		return strings.TrimSpace(netnstest.Run(t, "ip", "netns", "exec", ns, "iptables", "-t", table, "-S", hook, "1"))
	}
	if got := first("nat", "PREROUTING"); !strings.HasSuffix(got, "-j cali-PREROUTING") {
		t.Fatalf("nat PREROUTING rule 1 = %q, want the competitor's jump", got)
	}
	time.Sleep(300 * time.Millisecond)
	quiet, _ := c.Counts()
	if quiet.Fights != 1 || quiet.Reinserts != 2 {
		t.Fatalf("counts with nobody else: %+v, want the first install only (1 round, 2 jumps)", quiet)
	}
	netnstest.Run(t, "ip", "netns", "exec", ns, "sh", "-ec",
		"iptables -t nat -I PREROUTING 1 -p tcp -j ACCEPT; iptables -I FORWARD 1 -p tcp -j ACCEPT")
	WaitFor(t, "the competitor's jumps first again", func() bool {
		return strings.HasSuffix(first("nat", "PREROUTING"), "-j cali-PREROUTING") &&
			strings.HasSuffix(first("filter", "FORWARD"), "-j cali-FORWARD")
	})
	c.Stop()
	got, err := c.Counts()
	// The two inserts are two commands: a refresh may fall between them.
	if err != nil || got.Fights < 2 || got.Fights > 3 || got.Reinserts != 4 {
		t.Errorf("counts: %+v, %v; want 2 (or 3) rounds that moved jumps, 4 jumps in all", got, err)
	}
	if n := strings.Count(netnstest.Run(t, "ip", "netns", "exec", ns, "iptables", "-t", "nat", "-S", "PREROUTING"), "cali-PREROUTING"); n != 1 {
		t.Errorf("%d competitor jumps in nat PREROUTING, want 1", n)
	}
}
