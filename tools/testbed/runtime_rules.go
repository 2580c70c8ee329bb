package testbed

import (
	"fmt"
	"strings"
)

// HookRules splits iptables-save output into the rules of each chain, in
// order, keyed "table/CHAIN" ("nat/PREROUTING", "filter/FORWARD"); each
// rule is its line without the leading "-A CHAIN ".
func HookRules(save string) map[string][]string {
	out := map[string][]string{}
	table := ""
	for _, line := range strings.Split(save, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "*"):
			table = line[1:]
		case strings.HasPrefix(line, "-A "):
			chain, rule, _ := strings.Cut(line[len("-A "):], " ")
			out[table+"/"+chain] = append(out[table+"/"+chain], rule)
		}
	}
	return out
}

// JumpPosition is the 1-based position, in the rules of one chain, of the
// first rule whose target is chain target ("-j TARGET"); 0 when none.
func JumpPosition(rules []string, target string) int {
	for i, r := range rules {
		if strings.HasSuffix(r, "-j "+target) || strings.Contains(r, "-j "+target+" ") {
			return i + 1
		}
	}
	return 0
}

// Jump is where imdsguard's jump sits in a built-in chain.
type Jump struct {
	Hook   string   // "nat/PREROUTING"
	Target string   // "IMDSGUARD-PRE"
	Pos    int      // 1-based; 0 = missing
	Before []string // the rules ahead of it
}

func (j Jump) String() string {
	if j.Pos == 0 {
		return fmt.Sprintf("%s: no jump to %s", j.Hook, j.Target)
	}
	return fmt.Sprintf("%s: -j %s is rule %d", j.Hook, j.Target, j.Pos)
}

// GuardJumps are imdsguard's jumps from the built-in chains that decide a
// container's metadata traffic (nat PREROUTING, filter FORWARD and INPUT)
// and a host process's (nat and filter OUTPUT), as found in save.
func GuardJumps(save string) []Jump {
	rules := HookRules(save)
	var out []Jump
	for _, h := range []struct{ hook, target string }{
		{"nat/PREROUTING", "IMDSGUARD-PRE"},
		{"filter/FORWARD", "IMDSGUARD-FWD"},
		{"filter/INPUT", "IMDSGUARD-IN"},
		{"nat/OUTPUT", "IMDSGUARD-OUT"},
		{"filter/OUTPUT", "IMDSGUARD-FENCE"},
	} {
		rs := rules[h.hook]
		j := Jump{Hook: h.hook, Target: h.target, Pos: JumpPosition(rs, h.target)}
		if j.Pos > 1 {
			j.Before = rs[:j.Pos-1]
		}
		out = append(out, j)
	}
	return out
}
