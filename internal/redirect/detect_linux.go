package redirect

import (
	"fmt"
	"log/slog"
	"math/bits"
)

// detectBackend picks the iptables backend the way kube-proxy's
// iptables-wrapper does: the backend that already holds imdsguard's chains
// (so a restart never splits the rules between two backends); else the one
// with more rules (legacy only when it has more: on a host where docker or
// kubelet run iptables-legacy, rules of both kinds in one namespace would be
// evaluated both, in an order nobody chose); else nft, Debian's default.
// Only the save tools are run: they read, and create no table. A save tool
// that is there but fails (e.g. without CAP_NET_RAW) is an error, not an
// absent backend: guessing could put rules into a second backend beside the
// first one's.
func detectBackend(log *slog.Logger) (string, error) {
	if empty, err := legacyEmpty(); err == nil && empty {
		log.Info("iptables backend detected", "backend", "nft", "legacy_rules", 0)
		return "nft", nil
	}
	type count struct{ rules, ours int }
	counts := map[string]*count{}
	for name, fams := range backendTools {
		c := &count{rules: -1}
		for _, t := range fams {
			path, err := findTool(t.save)
			if err != nil {
				continue
			}
			out, err := run(path, nil)
			if err != nil {
				return "", fmt.Errorf("detect the iptables backend: %s: %w (needs CAP_NET_ADMIN and CAP_NET_RAW)", path, err)
			}
			r, o := countRules(out)
			c.rules, c.ours = max(c.rules, 0)+r, c.ours+o
		}
		counts[name] = c
	}
	nft, legacy := counts["nft"], counts["legacy"]
	pick := chooseBackend(nft.rules, nft.ours, legacy.rules, legacy.ours)
	log.Info("iptables backend detected", "backend", pick,
		"nft_rules", nft.rules, "legacy_rules", legacy.rules,
		"nft_imdsguard_chains", nft.ours, "legacy_imdsguard_chains", legacy.ours)
	if nft.ours > 0 && legacy.ours > 0 {
		log.Warn("imdsguard chains exist in both iptables backends; remove the stale ones with the other backend")
	}
	return pick, nil
}

// legacyEmpty reports whether no x_tables table of either family holds a
// rule or a user chain, read from the tables' headers alone (an empty
// table has one entry per built-in chain and a terminator): then the
// choice is nft whatever nf_tables holds, known without running either
// save tool, which on a node with tens of thousands of rules would cost
// most of a second at every start and every `rules status`.
func legacyEmpty() (bool, error) {
	for _, f := range []family{familyV4, familyV6} {
		names, err := legacyTables(f)
		if err != nil {
			return false, err
		}
		for name := range names {
			info, err := legacyTableInfo(f, name)
			if err != nil {
				return false, err
			}
			if info.NumEntries > uint32(bits.OnesCount32(info.ValidHooks))+1 {
				return false, nil
			}
		}
	}
	return true, nil
}
