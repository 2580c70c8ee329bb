package redirect

import (
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
