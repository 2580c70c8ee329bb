package redirect

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Targeted reads: Install, Keep and Status look only at imdsguard's own
// chains and at the built-in chains that jump to them (iptables -S CHAIN,
// which iptables-nft answers from that chain alone), never at the whole
// rule set: on a node where kube-proxy or Calico keep tens of thousands of
// rules in other chains, a read costs what it costs on an empty host.

// reading is one look at a family's chains: for every own chain and every
// hook, its "-A" lines as iptables -S prints them. A chain that does not
// exist has no entry.
type reading map[string][]string // "table/chain" → rule lines

// read lists every own chain of plans and every hook, table by table.
func read(ipt runner, plans []chainPlan) (reading, error) {
	rd := reading{}
	order, wanted := planChains(plans)
	for _, t := range order {
		lists, err := ipt.ListChains(t, wanted[t])
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", t, err)
		}
		for name, lines := range lists {
			rd[t+"/"+name] = lines
		}
	}
	return rd, nil
}

// digestOf fingerprints the chains read would list (runner.Digest), ""
// when the backend cannot or a read failed: then only read can tell.
func digestOf(ipt runner, plans []chainPlan) string {
	order, wanted := planChains(plans)
	var b strings.Builder
	for _, t := range order {
		d, err := ipt.Digest(t, wanted[t])
		if err != nil || d == "" {
			return ""
		}
		b.WriteString(t + ":" + d + " ")
	}
	return b.String()
}

// planChains lists, table by table (in plan order), every own chain and
// every hook of plans, each once.
func planChains(plans []chainPlan) (order []string, wanted map[string][]string) {
	wanted = map[string][]string{}
	for _, c := range plans {
		if _, ok := wanted[c.Table]; !ok {
			order = append(order, c.Table)
		}
		for _, name := range []string{c.Name, c.Hook} {
			if !slices.Contains(wanted[c.Table], name) {
				wanted[c.Table] = append(wanted[c.Table], name)
			}
		}
	}
	return order, wanted
}

// listEach lists each chain with its own iptables -S; chains that do not
// exist are left out.
func listEach(ipt runner, table string, chains []string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, name := range chains {
		listing, err := ipt.List(table, name)
		switch {
		case isNotExist(err):
			continue
		case err != nil:
			return nil, fmt.Errorf("%s/%s: %w", table, name, err)
		}
		out[name] = ruleLines(listing)
	}
	return out, nil
}

// chainsInSave picks chains out of iptables-save text of table: each
// declared one with its "-A" lines (the same lines iptables -S prints).
func chainsInSave(save, table string, chains []string) map[string][]string {
	out := map[string][]string{}
	sec, _ := tableSection(save, table)
	for _, name := range chains {
		if hasChain(sec, name) {
			out[name] = []string{}
		}
	}
	for _, l := range sec {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == "-A" {
			if lines, ok := out[f[1]]; ok {
				out[f[1]] = append(lines, l)
			}
		}
	}
	return out
}

// isNotExist reports whether err says that a chain (or table) is not
// there. iptables-nft 1.8.9 answers -S of a missing chain "chain `X' in
// table `nat' is incompatible, use 'nft' tool" with exit status 1, so, as
// go-iptables' ChainExists does, exit status 1 of a listing means absent.
func isNotExist(err error) bool {
	if err == nil {
		return false
	}
	var st interface{ ExitStatus() int }
	if errors.As(err, &st) && st.ExitStatus() == 1 {
		return true
	}
	var ne interface{ IsNotExist() bool }
	if errors.As(err, &ne) && ne.IsNotExist() {
		return true
	}
	return strings.Contains(err.Error(), "No chain/target/match by that name")
}

// lines is the reference form of a reading: each own chain's rules, and
// each jump to an own chain, prefixed with where they are. Positions are
// not in it: where the jumps stand is placed's question.
func (rd reading) lines(plans []chainPlan) []string {
	var out []string
	for _, c := range plans {
		where := c.Table + "/" + c.Name
		rules, ok := rd[where]
		if !ok {
			out = append(out, where+" absent")
		}
		for _, l := range rules {
			out = append(out, where+" "+l)
		}
		for _, l := range rd[c.Table+"/"+c.Hook] {
			if strings.HasSuffix(l, " -j "+c.Name) {
				out = append(out, c.Table+"/"+c.Hook+" "+l)
			}
		}
	}
	return out
}

// complete reports whether the reading shows every piece of plans: each
// chain there, holding one rule per planned rule with that rule's comment
// in its place, and jumped to from its hook (where, is placed's question).
func (rd reading) complete(plans []chainPlan) bool {
	for _, c := range plans {
		rules, ok := rd[c.Table+"/"+c.Name]
		if !ok || len(rules) != len(c.Rules) || jumpIndex(rd[c.Table+"/"+c.Hook], c) < 0 {
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

// jumpIndex is the index of c's jump among a hook's rule lines, -1 when
// it is not there.
func jumpIndex(hook []string, c chainPlan) int {
	for i, l := range hook {
		if isJump(l, c) {
			return i
		}
	}
	return -1
}
