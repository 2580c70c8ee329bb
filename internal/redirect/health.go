package redirect

import (
	"strconv"
	"strings"
)

// Health is what the metrics say of one family's rules.
type Health struct {
	Family  string // "ipv4" or "ipv6"
	InPlace bool   // Keep's last look found every piece in place
	// FenceRejects counts the packets the fence refused: local metadata
	// traffic that went past the redirect (an outside nat flush, until
	// Keep restored it). FenceKnown is false when it could not be read.
	FenceRejects uint64
	FenceKnown   bool
}

// Health reads each configured family's state: InPlace from Keep's last
// look (no read), the fence's counter with one listing of that chain
// (iptables -S IMDSGUARD-FENCE -v), so a scrape costs two small
// processes, whatever else the node's rule set holds.
func (r *Rules) Health() []Health {
	in := r.InPlace()
	out := make([]Health, 0, len(r.active))
	for _, fr := range r.active {
		h := Health{Family: fr.fam.Name, InPlace: in[fr.fam.Name]}
		h.FenceRejects, h.FenceKnown = fenceRejects(fr.ipt, fr.fam, r.params)
		out = append(out, h)
	}
	return out
}

// fenceRejects reads the packet counter of the fence's refusing rule.
func fenceRejects(ipt runner, f family, p params) (uint64, bool) {
	rules := fenceRules(f, p)
	refuse := rules[len(rules)-1].quotedComment()
	lines, err := ipt.ListWithCounters(tableFilter, ChainFence)
	if err != nil {
		return 0, false
	}
	for _, l := range lines {
		if !strings.Contains(l, refuse) {
			continue
		}
		if m := packetsRE.FindStringSubmatch(l); m != nil {
			n, err := strconv.ParseUint(m[1], 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
