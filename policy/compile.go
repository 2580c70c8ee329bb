package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/imdsguard/imdsguard/internal/config/field"
	"github.com/imdsguard/imdsguard/internal/ifname"
)

// Policy is a compiled Config. It is immutable and safe for concurrent use;
// a reload compiles a new one.
type Policy struct {
	mode         Mode
	defaultAllow bool
	rules        []rule
}

// GivesRoles reports whether some rule gives its callers a role of their
// own (`role:`).
func (p *Policy) GivesRoles() bool {
	if p == nil {
		return false
	}
	for _, r := range p.rules {
		if r.role != "" {
			return true
		}
	}
	return false
}

// rule is a compiled RuleConfig. Its reasons are built here, once, so that
// Decide allocates nothing for a caller some rule matches.
type rule struct {
	name     string
	match    callerMatch
	allow    []pattern
	deny     []pattern
	rejectV1 bool
	role     string

	noAllowReason  string
	rejectV1Reason string
	tokenReason    string
}

// Compile validates c (returning Validate's error unchanged) and compiles it.
// User and group names are resolved with names, now and never while
// deciding; a nil names resolves no name. The warnings are sentences that
// start with the field path relative to the policy section, like errors: a
// name that does not resolve (the entry matches nobody until a reload
// resolves it), a rule without allow patterns, a rule that can never apply,
// a pattern whose trailing "/" suggests a directory, a CIDR with host bits.
func Compile(c Config, names Names) (*Policy, []string, error) {
	if err := c.Validate(); err != nil {
		return nil, nil, err
	}
	if names == nil {
		names = noNames{}
	}
	p := &Policy{mode: Enforce, defaultAllow: c.Default == defaultAllow}
	if c.Mode == modeAudit {
		p.mode = Audit
	}
	var warns []string
	for i := range c.Rules {
		r, w := compileRule(field.Index("rules", i), &c.Rules[i], names)
		p.rules = append(p.rules, r)
		warns = append(warns, w...)
	}
	return p, append(warns, unreachable(c.Rules)...), nil
}

// compileRule compiles a validated rule found at path.
func compileRule(path string, rc *RuleConfig, names Names) (rule, []string) {
	r := rule{
		name:           rc.Name,
		rejectV1:       rc.IMDSv1 == v1Reject,
		role:           rc.Role,
		noAllowReason:  "denied by rule " + rc.Name + ": none of its allow patterns matches the path",
		rejectV1Reason: "rejected by rule " + rc.Name + ": it refuses IMDSv1 requests, those without a token (imds_v1: reject)",
		tokenReason:    "allowed by rule " + rc.Name + ": its callers may get a token, since no deny pattern of the rule matches " + tokenPath,
	}
	m, warns := compileMatch(field.Join(path, "match"), rc.Match, names)
	r.match = m
	r.allow = compilePatterns(rc.Allow, "allowed by rule "+rc.Name+": the path matches allow pattern %s and none of its deny patterns")
	r.deny = compilePatterns(rc.Deny, "denied by rule "+rc.Name+": the path matches deny pattern %s")
	if len(rc.Allow) == 0 {
		r.noAllowReason = "denied by rule " + rc.Name + ": it has no allow patterns"
		warns = append(warns, path+": rule "+rc.Name+" has no allow patterns: it denies every path (its callers can still get tokens)")
	}
	warns = append(warns, slashWarnings(field.Join(path, "allow"), rc.Allow)...)
	warns = append(warns, slashWarnings(field.Join(path, "deny"), rc.Deny)...)
	return r, append(warns, trustWarnings(path, rc, &r)...)
}

// compilePatterns compiles validated patterns; reason is a format with one %s
// for the pattern as written.
func compilePatterns(list []string, reason string) []pattern {
	out := make([]pattern, 0, len(list))
	for _, raw := range list {
		p, err := parsePattern(raw)
		if err != nil {
			panic("policy: pattern passed Validate but not parsePattern: " + err.Error())
		}
		p.reason = fmt.Sprintf(reason, raw)
		out = append(out, p)
	}
	return out
}

// compileMatch compiles a validated match found at path.
func compileMatch(path string, mc *MatchConfig, names Names) (callerMatch, []string) {
	m := callerMatch{all: mc.empty()}
	var warns, w []string
	m.users, warns = resolveIDs(field.Join(path, "users"), "user", mc.Users, names.LookupUser)
	m.groups, w = resolveIDs(field.Join(path, "groups"), "group", mc.Groups, names.LookupGroup)
	warns = append(warns, w...)
	m.sources, w = compileSources(field.Join(path, "sources"), mc.Sources)
	warns = append(warns, w...)
	m.ifaces = compileInterfaces(mc.Interfaces)
	m.workload = compileWorkloadMatch(mc)
	return m, warns
}

// compileInterfaces parses validated interfaces entries.
func compileInterfaces(list []string) []ifname.Pattern {
	out := make([]ifname.Pattern, 0, len(list))
	for _, s := range list {
		p, err := ifname.Parse(s)
		if err != nil {
			panic("policy: interface passed Validate but not ifname.Parse: " + err.Error())
		}
		out = append(out, p)
	}
	return out
}

// resolveIDs turns users or groups entries into ids. A name that does not
// resolve is left out (it matches nobody) with a warning.
func resolveIDs(path, kind string, list []string, lookup func(string) (uint32, error)) ([]uint32, []string) {
	var ids []uint32
	var warns []string
	for i, s := range list {
		if isNumber(s) {
			n, _ := strconv.ParseUint(s, 10, 32) // Validate checked the range
			ids = append(ids, uint32(n))
			continue
		}
		id, err := lookup(s)
		if err != nil {
			warns = append(warns, fmt.Sprintf("%s: %s %q does not resolve (%v): the entry matches nobody until it does; names are resolved again on reload",
				field.Index(path, i), kind, s, err))
			continue
		}
		ids = append(ids, id)
	}
	return ids, warns
}

// compileSources parses validated sources entries, masks host bits (with a
// warning) and turns IPv4-mapped IPv6 prefixes into IPv4 ones, since Decide
// unmaps the caller's address.
func compileSources(path string, list []string) ([]netip.Prefix, []string) {
	var out []netip.Prefix
	var warns []string
	for i, s := range list {
		p, _ := parseSource(s) // Validate checked it
		if m := p.Masked(); m != p {
			warns = append(warns, fmt.Sprintf("%s: %s has host bits set: it means %s", field.Index(path, i), s, m))
			p = m
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p)
	}
	return out, warns
}

// slashWarnings points at patterns such as "/meta-data/iam/", which read like
// a directory but match only the path itself.
func slashWarnings(path string, list []string) []string {
	var warns []string
	for i, raw := range list {
		if len(raw) > 1 && strings.HasSuffix(raw, "/") && !strings.HasSuffix(raw, "/**/") {
			warns = append(warns, fmt.Sprintf("%s: %q matches only %s itself (a trailing \"/\" is ignored); write %q to cover what is under it",
				field.Index(path, i), raw, strings.TrimSuffix(raw, "/"), raw+"**"))
		}
	}
	return warns
}

// unreachable warns about the rules after one that matches every caller.
func unreachable(rules []RuleConfig) []string {
	var warns []string
	all := -1
	for i, r := range rules {
		if all >= 0 {
			warns = append(warns, fmt.Sprintf("%s: rule %s never applies: rule %s before it has `match: {}` and matches every caller",
				field.Index("rules", i), r.Name, rules[all].Name))
		} else if r.Match.empty() {
			all = i
		}
	}
	return warns
}

// noNames is the Names of a nil resolver: no name resolves.
type noNames struct{}

func (noNames) LookupUser(string) (uint32, error)  { return 0, errors.New("no name resolver") }
func (noNames) LookupGroup(string) (uint32, error) { return 0, errors.New("no name resolver") }
