package policy

import (
	"errors"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/imdsguard/imdsguard/internal/config/field"
	"github.com/imdsguard/imdsguard/internal/ifname"
	"github.com/imdsguard/imdsguard/internal/roles"
)

// Validate checks every field and returns all problems at once, joined with
// errors.Join. Each is a *field.Error whose Path is relative to the policy
// section: "mode", "rules[2].allow[0]", "rules[1].match.sources[0]".
func (c Config) Validate() error {
	errs := []error{
		checkChoice("mode", c.Mode, modeEnforce, modeAudit),
		checkChoice("default", c.Default, defaultDeny, defaultAllow),
	}
	first := make(map[string]int) // rule name -> index of the rule that has it
	for i, r := range c.Rules {
		errs = append(errs, r.validate(field.Index("rules", i), i, first)...)
	}
	return errors.Join(errs...)
}

// validate checks rule i, found at path; first records the rule names seen.
func (r *RuleConfig) validate(path string, i int, first map[string]int) []error {
	var errs []error
	name := field.Join(path, "name")
	switch j, dup := first[r.Name]; {
	case r.Name == "":
		errs = append(errs, field.Errorf(name, "a rule needs a name (audit events and `policy explain` show it)"))
	case dup:
		errs = append(errs, field.Errorf(name, "duplicate rule name %q: %s has it already", r.Name, field.Index("rules", j)))
	default:
		first[r.Name] = i
	}
	if r.Match == nil {
		errs = append(errs, field.Errorf(field.Join(path, "match"),
			"a rule needs a match: list users, groups, sources, interfaces, containers or pods, or write `match: {}` to match every caller"))
	} else {
		errs = append(errs, r.Match.validate(field.Join(path, "match"))...)
	}
	errs = append(errs, checkPatterns(field.Join(path, "allow"), r.Allow)...)
	errs = append(errs, checkPatterns(field.Join(path, "deny"), r.Deny)...)
	if r.Role != "" {
		if err := roles.CheckRef(r.Role); err != nil {
			errs = append(errs, field.Errorf(field.Join(path, "role"), "%v (write a role ARN, or a short name under roles.base_arn)", err))
		}
	}
	return append(errs, checkChoice(field.Join(path, "imds_v1"), r.IMDSv1, v1Upgrade, v1Reject))
}

// validate checks every entry of the match found at path.
func (m *MatchConfig) validate(path string) []error {
	var errs []error
	lists := []struct {
		key   string
		items []string
		check func(string) error
	}{
		{"users", m.Users, checkID("user")},
		{"groups", m.Groups, checkID("group")},
		{"sources", m.Sources, checkSource},
		{"interfaces", m.Interfaces, checkInterface},
	}
	for _, l := range lists {
		p := field.Join(path, l.key)
		if l.items != nil && len(l.items) == 0 {
			errs = append(errs, field.Errorf(p, "empty list: it would match every caller; list at least one entry, or drop %s and write `match: {}` if every caller is meant", l.key))
		}
		for i, s := range l.items {
			if err := l.check(s); err != nil {
				errs = append(errs, field.Errorf(field.Index(p, i), "%v", err))
			}
		}
	}
	if m.Containers != nil {
		errs = append(errs, m.Containers.validate(field.Join(path, "containers"))...)
	}
	if m.Pods != nil {
		errs = append(errs, m.Pods.validate(field.Join(path, "pods"))...)
	}
	return errs
}

// checkChoice accepts "" (the default) or one of choices.
func checkChoice(path, value string, choices ...string) error {
	if value == "" || slices.Contains(choices, value) {
		return nil
	}
	return field.Errorf(path, "%q is not valid: write %s", value, strings.Join(choices, " or "))
}

// checkPatterns checks every pattern of the list at path.
func checkPatterns(path string, list []string) []error {
	var errs []error
	for i, raw := range list {
		if _, err := parsePattern(raw); err != nil {
			errs = append(errs, field.Errorf(field.Index(path, i), "%v", err))
		}
	}
	return errs
}

// checkID returns the check of a users or groups entry: a name, or a
// decimal id that fits in 32 bits.
func checkID(kind string) func(string) error {
	return func(s string) error {
		if s == "" {
			return errors.New("empty " + kind + ": write a name or a number")
		}
		if isNumber(s) {
			if _, err := strconv.ParseUint(s, 10, 32); err != nil {
				return errors.New(kind + " id " + s + " is out of range (0..4294967295)")
			}
			return nil
		}
		if strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == ':' || r == 0x7f }) {
			return errors.New(strconv.Quote(s) + " is not a " + kind + " name: names have no spaces, colons or control characters")
		}
		return nil
	}
}

// isNumber reports whether s is all decimal digits: such an entry is an id.
func isNumber(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// checkSource accepts a CIDR or a bare IP address, without a zone.
func checkSource(s string) error {
	if _, err := parseSource(s); err != nil {
		return errors.New(strconv.Quote(s) + " is not a CIDR or an IP address (write e.g. 172.17.0.0/16, 10.0.0.5 or fd00::/8)")
	}
	return nil
}

// checkInterface accepts an interface pattern (package ifname), as
// redirect.container_interfaces does.
func checkInterface(s string) error {
	_, err := ifname.Parse(s)
	return err
}

// parseSource parses a sources entry; a bare address is a /32 or /128.
func parseSource(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		return netip.ParsePrefix(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if a.Zone() != "" {
		return netip.Prefix{}, errors.New("zone not allowed")
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}
