package redirect

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/imdsguard/imdsguard/internal/ifname"
	"github.com/imdsguard/imdsguard/internal/imds"
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
	// LandingV4 and LandingV6 are the DNAT targets of container traffic
	// (landing.go); invalid (zero) in a plan made only to remove.
	LandingV4, LandingV6 netip.Addr
	// LocalRedirectPort is the local redirect listener's port, 0 for none.
	LocalRedirectPort int
}

// withLocalRedirect returns p with the local redirect listener's port.
func (p params) withLocalRedirect(port int) params {
	p.LocalRedirectPort = port
	return p
}

// landing is p's landing address of family f.
func (p params) landing(f family) netip.Addr {
	if f == familyV6 {
		return p.LandingV6
	}
	return p.LandingV4
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
func (r rule) String() string { return render(r.Spec()) }

// render joins rule arguments the way iptables -S prints them and
// iptables-restore reads them: arguments with white space quoted.
func render(spec []string) string {
	out := make([]string, len(spec))
	for i, p := range spec {
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
// proxy, DNATed to the landing address (landing.go explains why not
// REDIRECT). Static -i wildcards cover an interface the instant it exists.
func preRules(f family, p params) []rule {
	out := make([]rule, 0, len(p.Interfaces))
	for _, in := range p.Interfaces {
		out = append(out, rule{
			Match:   append(ingress(in), imdsTCP(f)...),
			Comment: "redirect metadata traffic from " + ingressName(in),
			Target:  dnatTo(p.landing(f), p.Port),
		})
	}
	return out
}

// allButLo reports whether p is "+", which the redirect reads as every
// interface but lo: local traffic never passes PREROUTING's nat table, and
// lo is no container's.
func allButLo(p ifname.Pattern) bool { return p.String() == "+" }

// ingress is the -i match of a container interface pattern.
func ingress(p ifname.Pattern) []string {
	if allButLo(p) {
		return []string{"!", "-i", "lo"}
	}
	return []string{"-i", p.String()}
}

// ingressName names a pattern in a rule's comment.
func ingressName(p ifname.Pattern) string {
	if allButLo(p) {
		return "every interface but lo"
	}
	return p.String()
}

// dnatTo sends a connection to the landing address's proxy port.
func dnatTo(a netip.Addr, port int) []string {
	return []string{"-j", "DNAT", "--to-destination", netip.AddrPortFrom(a, uint16(port)).String()}
}

// inRules: the proxy port answers local callers and redirected metadata
// flows (conntrack's original destination is the metadata service); nothing
// from the network reaches it directly. No route_localnet is needed.
func inRules(f family, p params) []rule {
	port := []string{"-p", "tcp", "--dport", strconv.Itoa(p.Port)}
	rules := []rule{
		{Match: append([]string{"-i", "lo"}, port...), Comment: "local callers reach the proxy port", Target: []string{"-j", "RETURN"}},
		{
			Match:   append(port, "-m", "conntrack", "--ctstate", "DNAT", "--ctorigdst", f.IMDS.Addr().String()),
			Comment: "redirected metadata traffic reaches the proxy port",
			Target:  []string{"-j", "RETURN"},
		},
		{Match: port, Comment: "nothing else reaches the proxy port", Target: []string{"-j", "DROP"}},
	}
	return append(rules, localRedirectInRules(p)...)
}

// localRedirectInRules: the local redirect listener (a wildcard socket:
// the node address a Cilium Local Redirect Policy sends pods to is whatever
// address Kubernetes gave the node) is reached from the container
// interfaces only, where pods' packets enter the host, and by nothing
// else: not the network, not lo. Nothing NATs these connections, so there
// is no conntrack mark to go by; "+" cannot be used here (New refuses it),
// as it would take in the network interfaces. The proxy's admission
// (proxy.AdmitLocalRedirect) checks every caller again, in its own
// network namespace.
func localRedirectInRules(p params) []rule {
	if p.LocalRedirectPort == 0 {
		return nil
	}
	port := []string{"-p", "tcp", "--dport", strconv.Itoa(p.LocalRedirectPort)}
	out := make([]rule, 0, len(p.Interfaces)+1)
	for _, in := range p.Interfaces {
		if allButLo(in) {
			continue
		}
		out = append(out, rule{
			Match:   append(ingress(in), port...),
			Comment: "pods behind " + in.String() + " reach the local redirect port",
			Target:  []string{"-j", "RETURN"},
		})
	}
	return append(out, rule{Match: port, Comment: "nothing else reaches the local redirect port", Target: []string{"-j", "DROP"}})
}

// fwdRules: a backstop. Metadata traffic from an interface that is not in
// the list would be routed to the metadata service: refuse it instead. And
// redirected metadata traffic that would be routed (its landing address
// deleted from outside, until Keep puts it back) is refused too, rather
// than sent wherever the host's routes point.
func fwdRules(f family, _ params) []rule {
	reset := []string{"-j", "REJECT", "--reject-with", "tcp-reset"}
	return []rule{
		{Match: imdsTCP(f), Comment: "routed metadata traffic is refused", Target: reset},
		{
			Match:   []string{"-p", "tcp", "-m", "conntrack", "--ctstate", "DNAT", "--ctorigdst", f.IMDS.Addr().String(), "--ctorigdstport", strconv.Itoa(imds.Port)},
			Comment: "redirected metadata traffic is never routed",
			Target:  reset,
		},
	}
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
