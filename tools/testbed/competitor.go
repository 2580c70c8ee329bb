package testbed

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/imdsguard/imdsguard/internal/netnstest"
)

// CompetitorVariant is what the chains a Competitor jumps to hold.
type CompetitorVariant int

const (
	// CompetitorHarmless: rules that provably cannot match metadata traffic
	// (tcp to 169.254.169.254:80, fd00:ec2::254:80): a jump to an empty
	// chain, rules for udp and for destinations in 10.96.0.0/12.
	CompetitorHarmless CompetitorVariant = iota
	// CompetitorMayMatch: an ACCEPT on a firewall mark (Calico's kind), in
	// nat PREROUTING and in filter FORWARD. No test packet carries the
	// mark, so in fact nothing matches, but nothing in the rules says so:
	// an ACCEPT there would let a marked packet past imdsguard's redirect
	// and its FORWARD reset.
	CompetitorMayMatch
)

func (v CompetitorVariant) String() string {
	if v == CompetitorMayMatch {
		return "may match metadata traffic"
	}
	return "harmless to metadata traffic"
}

// DefaultCompetitorEvery is how often a Competitor re-checks its jumps:
// Felix's default refresh is 90 s; a test wants more rounds.
const DefaultCompetitorEvery = 2 * time.Second

// CompetitorOptions shape a Competitor.
type CompetitorOptions struct {
	Variant CompetitorVariant
	Every   time.Duration // default DefaultCompetitorEvery
}

// competitorJump is one jump a Competitor keeps first in a built-in chain.
type competitorJump struct {
	Table, Hook, Chain string
}

// competitorJumps are the Competitor's jumps, Calico's names.
var competitorJumps = []competitorJump{
	{"nat", "PREROUTING", "cali-PREROUTING"},
	{"filter", "FORWARD", "cali-FORWARD"},
}

// spec is the jump's rule as iptables -S prints it (after "-A HOOK ").
func (j competitorJump) spec() string {
	return "-m comment --comment \"cali:competitor\" -j " + j.Chain
}

// Competitor is an agent that, like Calico's Felix with ChainInsertMode
// insert, keeps its own jumps the first rules of nat PREROUTING and filter
// FORWARD (IPv4) in a namespace: every Every it lists rule 1 of each and,
// when that is not its jump, deletes its jump and inserts it again at
// position 1 (one iptables-restore per refresh, as Felix writes), counting
// each such re-insert.
type Competitor struct {
	NS   string
	o    CompetitorOptions
	stop chan struct{}
	done chan struct{}

	mu        sync.Mutex
	refreshes int   // rounds done, the first install included
	reinserts int   // jumps (re-)inserted at position 1
	fights    int   // rounds that inserted at least one jump
	err       error // the first failed iptables command; the loop stops there
}

// StartCompetitor installs the Competitor's chains and jumps in ns (IPv4,
// the iptables on PATH) and starts its refresh loop; it is stopped when
// the test ends (its rules stay until the namespace goes).
func StartCompetitor(t TB, ns string, o CompetitorOptions) *Competitor {
	t.Helper()
	if o.Every == 0 {
		o.Every = DefaultCompetitorEvery
	}
	c := &Competitor{NS: ns, o: o, stop: make(chan struct{}), done: make(chan struct{})}
	if err := c.restore(competitorChains(o.Variant)); err != nil {
		t.Fatalf("competitor chains: %v", err)
	}
	if err := c.round(); err != nil {
		t.Fatalf("competitor jumps: %v", err)
	}
	go c.loop()
	t.Cleanup(c.Stop)
	return c
}

// competitorChains is iptables-restore input (--noflush) for the chains of
// variant v.
func competitorChains(v CompetitorVariant) string {
	nat := []string{"-A cali-PREROUTING -j cali-fip-dnat",
		"-A cali-PREROUTING -p udp -m udp --dport 4789 -j ACCEPT",
		"-A cali-PREROUTING -d 10.96.0.0/12 -p tcp -j ACCEPT"}
	filter := []string{"-A cali-FORWARD -p udp -m udp --dport 4789 -j ACCEPT",
		"-A cali-FORWARD -d 10.96.0.0/12 -p tcp -j ACCEPT"}
	if v == CompetitorMayMatch {
		nat = append(nat, "-A cali-PREROUTING -m mark --mark 0x10000/0x10000 -j ACCEPT")
		filter = append(filter, "-A cali-FORWARD -m mark --mark 0x10000/0x10000 -j ACCEPT")
	}
	return "*nat\n:cali-PREROUTING - [0:0]\n:cali-fip-dnat - [0:0]\n" + strings.Join(nat, "\n") +
		"\nCOMMIT\n*filter\n:cali-FORWARD - [0:0]\n" + strings.Join(filter, "\n") + "\nCOMMIT\n"
}

// loop refreshes every o.Every until Stop or an error.
func (c *Competitor) loop() {
	defer close(c.done)
	tick := time.NewTicker(c.o.Every)
	defer tick.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-tick.C:
		}
		if err := c.round(); err != nil {
			return
		}
	}
}

// round is one refresh, counted; an error is kept and returned.
func (c *Competitor) round() error {
	moved, err := c.refresh()
	c.mu.Lock()
	c.refreshes++
	c.reinserts += moved
	if moved > 0 {
		c.fights++
	}
	if err != nil {
		c.err = err
	}
	c.mu.Unlock()
	return err
}

// refresh puts each jump that is not rule 1 of its hook back there, in one
// iptables-restore, and returns how many it moved.
func (c *Competitor) refresh() (int, error) {
	tables := map[string][]string{}
	moved := 0
	for _, j := range competitorJumps {
		first, present, err := c.position(j)
		if err != nil {
			return 0, err
		}
		if first {
			continue
		}
		if present {
			tables[j.Table] = append(tables[j.Table], "-D "+j.Hook+" "+j.spec())
		}
		tables[j.Table] = append(tables[j.Table], "-I "+j.Hook+" 1 "+j.spec())
		moved++
	}
	if moved == 0 {
		return 0, nil
	}
	var in strings.Builder
	for _, table := range []string{"nat", "filter"} {
		if lines := tables[table]; len(lines) > 0 {
			fmt.Fprintf(&in, "*%s\n%s\nCOMMIT\n", table, strings.Join(lines, "\n"))
		}
	}
	return moved, c.restore(in.String())
}

// position reports whether j is rule 1 of its hook, and whether it is there
// at all.
func (c *Competitor) position(j competitorJump) (first, present bool, err error) {
	out, err := c.iptables("-t", j.Table, "-S", j.Hook, "1")
	if err != nil {
		return false, false, err
	}
	if strings.TrimSpace(out) == "-A "+j.Hook+" "+j.spec() {
		return true, true, nil
	}
	_, err = c.iptables("-t", j.Table, "-C", j.Hook, "-m", "comment", "--comment", "cali:competitor", "-j", j.Chain)
	return false, err == nil, nil
}

// iptables runs iptables in the namespace (-S of a rule number past the
// end prints nothing with iptables-nft, an "Index ... too big" error with
// legacy: both are no rule).
func (c *Competitor) iptables(args ...string) (string, error) {
	out, err := netnstest.Command(c.NS, "iptables", append([]string{"-w"}, args...)...).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "too big") {
			return "", nil
		}
		return "", fmt.Errorf("iptables %s in %s: %w: %s", strings.Join(args, " "), c.NS, err, out)
	}
	return string(out), nil
}

// restore feeds in to iptables-restore --noflush in the namespace.
func (c *Competitor) restore(in string) error {
	cmd := netnstest.Command(c.NS, "iptables-restore", "-w", "--noflush")
	cmd.Stdin = strings.NewReader(in)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("iptables-restore in %s: %w: %s\n%s", c.NS, err, out, in)
	}
	return nil
}

// Stop ends the refresh loop and waits for it; safe to call twice.
func (c *Competitor) Stop() {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	<-c.done
}

// CompetitorCounts is what a Competitor did so far.
type CompetitorCounts struct {
	Refreshes int // rounds, the first install included
	Reinserts int // jumps (re-)inserted at position 1 by them
	Fights    int // rounds that (re-)inserted at least one jump
}

// Counts returns the counts so far and the error that stopped the loop,
// if any.
func (c *Competitor) Counts() (CompetitorCounts, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return CompetitorCounts{Refreshes: c.refreshes, Reinserts: c.reinserts, Fights: c.fights}, c.err
}
