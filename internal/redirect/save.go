package redirect

import (
	"fmt"
	"slices"
	"strings"
)

// Pure readers of iptables-save text. Both backends print a table as
//
//	*nat
//	:PREROUTING ACCEPT [0:0]
//	:IMDSGUARD-OUT - [0:0]
//	-A OUTPUT -m comment --comment "imdsguard: jump to IMDSGUARD-OUT" -j IMDSGUARD-OUT
//	COMMIT
//
// with "#" comment lines around (and nft's "# Warning: ..." lines).

// savedTables returns the names of the tables present in save.
func savedTables(save string) map[string]bool {
	out := map[string]bool{}
	for _, l := range strings.Split(save, "\n") {
		if name, ok := strings.CutPrefix(l, "*"); ok {
			out[strings.TrimSpace(name)] = true
		}
	}
	return out
}

// tableSection returns the lines of table's section between "*table" and
// COMMIT, comments left out; ok is false when the table is not there.
func tableSection(save, table string) (lines []string, ok bool) {
	in := false
	for _, l := range strings.Split(save, "\n") {
		l = strings.TrimRight(l, "\r")
		switch {
		case l == "*"+table:
			in, ok = true, true
		case in && l == "COMMIT":
			in = false
		case in && l != "" && !strings.HasPrefix(l, "#"):
			lines = append(lines, l)
		}
	}
	return lines, ok
}

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

// onlyMarker reports whether a table section holds nothing but built-in
// chains with policy ACCEPT and the ChainMadeTable marker: a table
// imdsguard made and nobody else has used, which Remove may delete.
func onlyMarker(section []string) bool {
	marker := false
	for _, l := range section {
		f := strings.Fields(l)
		switch {
		case len(f) >= 2 && f[0] == ":"+ChainMadeTable:
			marker = true
		case len(f) >= 2 && strings.HasPrefix(f[0], ":") && f[1] == "ACCEPT":
			// a built-in chain with the default policy
		default:
			return false // a rule, a user chain or a policy other than ACCEPT
		}
	}
	return marker
}

// hasChain reports whether a table section declares chain.
func hasChain(section []string, chain string) bool {
	return slices.ContainsFunc(section, func(l string) bool {
		return strings.HasPrefix(l, ":"+chain+" ")
	})
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

// ruleLines returns the "-A" lines of an iptables -S listing.
func ruleLines(listing []string) []string {
	var out []string
	for _, l := range listing {
		if strings.HasPrefix(l, "-A ") {
			out = append(out, l)
		}
	}
	return out
}
