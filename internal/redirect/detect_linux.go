package redirect

import (
	"fmt"
	"log/slog"
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
