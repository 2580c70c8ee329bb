package redirect

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/imdsguard/imdsguard/internal/imds"
)

// Rules above a jump. imdsguard wants each jump first in its hook, but
// kube-proxy prepends its KUBE-SERVICES jump and Calico's Felix keeps its
// own jumps at the top and re-inserts them when something moves above:
// two agents that both insist on rule 1 re-insert above each other
// forever. So a jump may stand lower when every rule above it provably
// cannot touch metadata traffic (tcp to the metadata address, port 80):
// such a rule either cannot match it, or only counts, logs or jumps to a
// chain whose every rule provably cannot touch it in turn. Anything this
// cannot prove (an ACCEPT or a DNAT that could match, a RETURN from the
// built-in chain, a mark that could become the daemon's, a target or a
// chain it does not know) moves the jump back to the top.

// Limits of the proof: deeper or bigger is "cannot prove".
const (
	maxAboveDepth  = 8
	maxAboveChains = 256
)

// judge proves rules harmless in one table of one family.
type judge struct {
	ipt    runner
	table  string
	fam    family
	mark   uint32
	chains int // chains listed so far
	onPath map[string]bool
}

func newJudge(ipt runner, table string, f family, mark uint32) *judge {
	return &judge{ipt: ipt, table: table, fam: f, mark: mark, onPath: map[string]bool{}}
}

// harmless reports whether no rule of lines ("-A" lines of one chain) can
// touch metadata traffic; why names the first that could. top says the
// lines are a built-in chain's (where RETURN means the chain's policy).
func (j *judge) harmless(lines []string, top bool, depth int) (ok bool, why string) {
	for _, l := range lines {
		if ok, why := j.rule(l, top, depth); !ok {
			return false, why
		}
	}
	return true, ""
}

// rule judges one "-A CHAIN ..." line.
func (j *judge) rule(line string, top bool, depth int) (bool, string) {
	r := parseRule(line)
	if r.excludes(j.fam) {
		return true, ""
	}
	switch t := r.target; {
	case t == "" || t == "LOG" || t == "NFLOG" || t == "TRACE" || t == "AUDIT":
		return true, "" // counts or logs, and the packet goes on
	case t == "RETURN" && !top:
		return true, "" // back to the chain that jumped here
	case t == "MARK":
		if !r.canMark(j.mark) {
			return true, ""
		}
		return false, line + " (could set the daemon's mark " + markArg(j.mark) + ")"
	case knownTarget[t] || depth >= maxAboveDepth:
		return false, line
	}
	return j.chain(r, line, top, depth)
}

// chain judges a jump (or goto) to a user chain: harmless when all of its
// rules are. A goto's RETURN returns from the built-in chain, so what a
// goto reaches is judged as top level as the rule itself.
func (j *judge) chain(r parsedRule, line string, top bool, depth int) (bool, string) {
	if j.onPath[r.target] || j.chains >= maxAboveChains {
		return false, line + " (loop or too many chains to prove)"
	}
	j.chains++
	listing, err := j.ipt.List(j.table, r.target)
	if err != nil {
		return false, fmt.Sprintf("%s (cannot list %s: %v)", line, r.target, err)
	}
	j.onPath[r.target] = true
	defer delete(j.onPath, r.target)
	return j.harmless(ruleLines(listing), top && r.gotoChain, depth+1)
}

// knownTarget: targets that end a packet's way through the chain, or
// rewrite where it goes: never provably harmless when the rule can match.
var knownTarget = map[string]bool{
	"ACCEPT": true, "DROP": true, "REJECT": true, "RETURN": true, "QUEUE": true, "NFQUEUE": true,
	"DNAT": true, "SNAT": true, "MASQUERADE": true, "REDIRECT": true, "NETMAP": true,
	"TPROXY": true, "CONNMARK": true, "CT": true, "NOTRACK": true, "TEE": true, "CLASSIFY": true,
	"DSCP": true, "TOS": true, "TTL": true, "HL": true, "TCPMSS": true, "SET": true, "CHECKSUM": true,
}

// parsedRule is what the proof needs of a rule.
type parsedRule struct {
	dst       []negated[netip.Prefix]
	proto     []negated[string]
	dports    []negated[string] // --dport / --dports values as printed
	target    string
	gotoChain bool
	xmark     string // MARK's --set-xmark value/mask
}

type negated[T any] struct {
	not bool
	v   T
}

// parseRule reads the options of an iptables -S rule line that the proof
// uses; the others (interfaces, sources, states, marks matched) only
// narrow what the rule matches and are ignored, which errs on "can match".
func parseRule(line string) parsedRule {
	var r parsedRule
	args := splitArgs(line)
	not := false
	for i := 0; i < len(args); i++ {
		a, next := args[i], ""
		if i+1 < len(args) {
			next = args[i+1]
		}
		switch a {
		case "!":
			not = true
			continue
		case "-d", "--destination":
			if p, err := parsePrefix(next); err == nil {
				r.dst = append(r.dst, negated[netip.Prefix]{not, p})
			}
		case "-p", "--protocol":
			r.proto = append(r.proto, negated[string]{not, strings.ToLower(next)})
		case "--dport", "--destination-port", "--dports", "--destination-ports":
			r.dports = append(r.dports, negated[string]{not, next})
		case "-j", "--jump":
			r.target = next
		case "-g", "--goto":
			r.target, r.gotoChain = next, true
		case "--set-xmark":
			r.xmark = next
		}
		not = false
	}
	return r
}

// excludes reports whether some match of r rules out tcp to the metadata
// address of f, port 80.
func (r parsedRule) excludes(f family) bool {
	for _, d := range r.dst {
		if d.v.Contains(f.IMDS.Addr()) == d.not {
			return true
		}
	}
	for _, p := range r.proto {
		tcp := p.v == "tcp" || p.v == "6"
		if p.v != "all" && p.v != "0" && tcp == p.not {
			return true
		}
	}
	for _, d := range r.dports {
		if portIn(d.v, imds.Port) == d.not {
			return true
		}
	}
	return false
}

// canMark reports whether r's MARK --set-xmark could leave a packet with
// the daemon's mark (which the redirect lets pass): the bits it sets
// under its mask must agree with that mark's.
func (r parsedRule) canMark(mark uint32) bool {
	val, mask, ok := strings.Cut(r.xmark, "/")
	if !ok {
		mask = "0xffffffff"
	}
	v, err1 := strconv.ParseUint(val, 0, 32)
	m, err2 := strconv.ParseUint(mask, 0, 32)
	if err1 != nil || err2 != nil {
		return true // cannot tell
	}
	return uint32(v&m) == mark&uint32(m)
}

// portIn reports whether port is in list: "80", "1:1024", "80,443,8000:8080".
func portIn(list string, port int) bool {
	for _, item := range strings.Split(list, ",") {
		lo, hi, isRange := strings.Cut(item, ":")
		if !isRange {
			hi = lo
		}
		a, err1 := strconv.Atoi(lo)
		b, err2 := strconv.Atoi(hi)
		if err1 != nil || err2 != nil {
			return true // a service name: cannot tell
		}
		if a <= port && port <= b {
			return true
		}
	}
	return false
}

// parsePrefix reads -d's value: a prefix, or an address (a host).
func parsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// splitArgs splits an iptables -S line into arguments: white space
// separates, double quotes group (with backslash escapes), as iptables
// prints comments.
func splitArgs(line string) []string {
	var out []string
	var cur strings.Builder
	in, esc, have := false, false, false
	for _, c := range line {
		switch {
		case esc:
			cur.WriteRune(c)
			esc = false
		case c == '\\' && in:
			esc = true
		case c == '"':
			in, have = !in, true
		case (c == ' ' || c == '\t') && !in:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(c)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}

// placement is where c's jump stands in its hook and whether that is good
// enough: first, or below rules that provably cannot touch metadata traffic.
type placement struct {
	pos, of int    // from 1; pos 0: no jump
	ok      bool   // first, or every rule above harmless
	above   string // the rules above, joined, when pos > 1
	why     string // the first rule above that could touch metadata traffic
}

// first reports whether the jump is the hook's first rule.
func (p placement) first() bool { return p.pos == 1 }

// place judges c's jump in hook (the hook's "-A" lines).
func place(ipt runner, hook []string, c chainPlan, f family, mark uint32) placement {
	i := jumpIndex(hook, c)
	p := placement{pos: i + 1, of: len(hook), ok: i == 0}
	if i <= 0 {
		return p
	}
	p.above = strings.Join(hook[:i], "; ")
	p.ok, p.why = newJudge(ipt, c.Table, f, mark).harmless(hook[:i], true, 0)
	return p
}
