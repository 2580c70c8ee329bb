package redirect

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/imdsguard/imdsguard/proxy/ifname"
	"github.com/imdsguard/imdsguard/proxy/imds"
)

// family is one address family with its metadata address.
type family struct {
	Name string       // "ipv4" or "ipv6"
	IMDS netip.Prefix // the metadata service as a host prefix
}

var (
	familyV4 = family{Name: "ipv4", IMDS: netip.PrefixFrom(imds.IPv4, 32)}
	familyV6 = family{Name: "ipv6", IMDS: netip.PrefixFrom(imds.IPv6, 128)}
)

// families returns the families the configuration redirects.
func (c Config) families() []family {
	var out []family
	if c.IPv4 {
		out = append(out, familyV4)
	}
	if c.IPv6 {
		out = append(out, familyV6)
	}
	return out
}

// params are the values the rules are built from.
type params struct {
	Port       int              // the proxy's listen port
	Mark       uint32           // the daemon's socket mark
	Interfaces []ifname.Pattern // container interface patterns
}

// rule is one iptables rule: matches, the comment every rule carries, target.
type rule struct {
	Match   []string
	Comment string // without commentPrefix; unique within its chain
	Target  []string
}

// commentPrefix starts the comment of every rule imdsguard writes.
const commentPrefix = "imdsguard: "

// Spec returns the rule as iptables arguments after -A/-I/-D/-C CHAIN.
func (r rule) Spec() []string {
	s := make([]string, 0, len(r.Match)+4+len(r.Target))
	s = append(s, r.Match...)
	s = append(s, "-m", "comment", "--comment", commentPrefix+r.Comment)
	return append(s, r.Target...)
}

// quotedComment is the comment as iptables -S and iptables-save print it.
func (r rule) quotedComment() string { return `"` + commentPrefix + r.Comment + `"` }

// String renders the rule as a shell would need it quoted (and as
// iptables -S prints comments): for logs, status and golden tests.
func (r rule) String() string {
	parts := r.Spec()
	out := make([]string, len(parts))
	for i, p := range parts {
		if strings.ContainsAny(p, " \t") {
			p = strconv.Quote(p)
		}
		out[i] = p
	}
	return strings.Join(out, " ")
}

// chainPlan is an own chain with the rules it must hold and its jump.
type chainPlan struct {
	chain
	Rules []rule
	Jump  rule
}

// plan returns every chain of one family with its rules: the single source
// of truth for Install, Remove, Status and Keep.
func plan(f family, p params) []chainPlan {
	out := make([]chainPlan, len(chains))
	for i, c := range chains {
		out[i] = chainPlan{chain: c, Rules: c.rules(f, p), Jump: jumpRule(c)}
	}
	return out
}

// jumpRule is the single rule that hooks c into its built-in chain.
func jumpRule(c chain) rule {
	return rule{Comment: "jump to " + c.Name, Target: []string{"-j", c.Name}}
}

// imdsTCP matches tcp to the metadata service's port 80.
func imdsTCP(f family) []string {
	return []string{"-d", f.IMDS.String(), "-p", "tcp", "--dport", strconv.Itoa(imds.Port)}
}

func redirectTo(port int) []string {
	return []string{"-j", "REDIRECT", "--to-ports", strconv.Itoa(port)}
}

func markArg(m uint32) string { return fmt.Sprintf("0x%x", m) }

// outRules: local metadata traffic goes to the proxy, except the daemon's own
// (marked) upstream traffic. A mark, not -m owner: owner matches are refused
// in chains that PREROUTING can reach.
func outRules(f family, p params) []rule {
	return []rule{
		{
			Match:   append(imdsTCP(f), "-m", "mark", "--mark", markArg(p.Mark)),
			Comment: "daemon upstream traffic skips the redirect",
			Target:  []string{"-j", "RETURN"},
		},
		{Match: imdsTCP(f), Comment: "redirect local metadata traffic to the proxy", Target: redirectTo(p.Port)},
	}
}

// preRules: metadata traffic arriving on a container interface goes to the
// proxy. Static -i wildcards cover an interface the instant it exists.
func preRules(f family, p params) []rule {
	out := make([]rule, 0, len(p.Interfaces))
	for _, in := range p.Interfaces {
		out = append(out, rule{
			Match:   append([]string{"-i", in.String()}, imdsTCP(f)...),
			Comment: "redirect metadata traffic from " + in.String(),
			Target:  redirectTo(p.Port),
		})
	}
	return out
}

// inRules: the proxy port answers local callers and redirected metadata
// flows (conntrack's original destination is the metadata service); nothing
// from the network reaches it directly. No route_localnet is needed.
func inRules(f family, p params) []rule {
	port := []string{"-p", "tcp", "--dport", strconv.Itoa(p.Port)}
	return []rule{
		{Match: append([]string{"-i", "lo"}, port...), Comment: "local callers reach the proxy port", Target: []string{"-j", "RETURN"}},
		{
			Match:   append(port, "-m", "conntrack", "--ctstate", "DNAT", "--ctorigdst", f.IMDS.Addr().String()),
			Comment: "redirected metadata traffic reaches the proxy port",
			Target:  []string{"-j", "RETURN"},
		},
		{Match: port, Comment: "nothing else reaches the proxy port", Target: []string{"-j", "DROP"}},
	}
}

// fwdRules: a backstop. Metadata traffic from an interface that is not in
// the list would be routed to the metadata service: refuse it instead.
func fwdRules(f family, _ params) []rule {
	return []rule{{
		Match:   imdsTCP(f),
		Comment: "routed metadata traffic is refused",
		Target:  []string{"-j", "REJECT", "--reject-with", "tcp-reset"},
	}}
}

// fenceRules: a backstop for local traffic. nat OUTPUT runs before filter
// OUTPUT, so a redirected packet's destination is loopback by now; what still
// goes to the metadata service is the daemon's marked upstream traffic, or
// traffic whose redirect someone deleted (an outside `iptables -t nat -F`):
// that is refused until Keep restores the redirect, never sent to IMDS.
func fenceRules(f family, p params) []rule {
	return []rule{
		{
			Match:   append(imdsTCP(f), "-m", "mark", "--mark", markArg(p.Mark)),
			Comment: "daemon upstream traffic passes",
			Target:  []string{"-j", "RETURN"},
		},
		{
			Match:   imdsTCP(f),
			Comment: "metadata traffic that escaped the redirect is refused",
			Target:  []string{"-j", "REJECT", "--reject-with", "tcp-reset"},
		},
	}
}
