package redirect

import (
	"fmt"
	"strings"
)

// Readers of iptables-save text the tests compare whole rule sets with.

// ourLines returns, table by table, every line of save that names an
// imdsguard chain (declarations, our rules, the jumps to them), each
// prefixed with its table; a rule in another chain (a jump) ends with its
// position there ("@1"). Keep compares it tick by tick with what Install
// left: a flush, a deleted chain or jump, a foreign rule in our chain, or a
// rule put before a jump changes it. Without -v nothing in it moves on its
// own (no counters).
func ourLines(save string) []string {
	var out []string
	table := ""
	pos := map[string]int{} // chain → rules seen so far in this table
	for _, l := range strings.Split(save, "\n") {
		l = strings.TrimRight(l, "\r")
		chain := ""
		if strings.HasPrefix(l, "-A ") {
			chain = strings.Fields(l)[1]
			pos[chain]++
		}
		switch {
		case strings.HasPrefix(l, "*"):
			table, pos = l[1:], map[string]int{}
		case strings.HasPrefix(l, "#") || l == "COMMIT":
		case chain != "" && !strings.HasPrefix(chain, "IMDSGUARD-") && strings.Contains(l, "IMDSGUARD-"):
			out = append(out, fmt.Sprintf("%s %s @%d", table, l, pos[chain]))
		case strings.Contains(l, "IMDSGUARD-"):
			out = append(out, table+" "+stripCounters(l))
		}
	}
	return out
}

// stripCounters drops the "[packets:bytes]" of a chain declaration.
func stripCounters(l string) string {
	if strings.HasPrefix(l, ":") {
		if i := strings.LastIndex(l, " ["); i > 0 {
			return l[:i]
		}
	}
	return l
}

// inSave reports whether save shows every piece of plans: each chain
// declared, holding one rule per planned rule with that rule's comment in
// its place, and jumped to by the first rule of its hook. It reads one
// consistent snapshot of the rule set, so it cannot race with outside
// changes.
func inSave(save string, plans []chainPlan) bool {
	for _, c := range plans {
		sec, ok := tableSection(save, c.Table)
		if !ok || !hasChain(sec, c.Name) {
			return false
		}
		var rules, hook []string
		for _, l := range sec {
			switch {
			case strings.HasPrefix(l, "-A "+c.Name+" "):
				rules = append(rules, l)
			case strings.HasPrefix(l, "-A "+c.Hook+" "):
				hook = append(hook, l)
			}
		}
		if len(hook) == 0 || !isJump(hook[0], c) || len(rules) != len(c.Rules) {
			return false
		}
		for i, rl := range c.Rules {
			if !strings.Contains(rules[i], rl.quotedComment()) {
				return false
			}
		}
	}
	return true
}
