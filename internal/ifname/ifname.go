// Package ifname is the interface pattern of the configuration: the one
// type, validator and matcher behind both `redirect.container_interfaces`
// (which becomes iptables -i arguments) and the policy's `match.interfaces`
// (which is matched against a container caller's ingress interface).
//
// The syntax is that of iptables -i: an interface name matches itself, a
// name followed by "+" matches every name with that prefix, and "+" alone
// matches every interface. There is no negation.
//
// A name is what the Linux kernel accepts (dev_valid_name: 1 to IFNAMSIZ-1
// bytes, not "." or "..", no '/', ':' or white space), narrowed to ASCII
// letters, digits, '_', '.' and '-'. Every name that Docker, Podman, the CNI
// plugins, Calico, Cilium, the AWS VPC CNI and systemd make fits (docker0,
// br-1a2b3c4d5e6f, veth1234abc, eni1a2b3c4d5e6, cali0123, lxc_health,
// cilium_host, flannel.1, eth0.100), and what is left out is what only
// mistakes write: quotes, backslashes, '!', shell and glob characters
// ("veth*"), and the '@' of `ip link` output ("veth1@if3" is veth1 whose
// peer is interface 3). A pattern is therefore safe as an iptables argument
// as it is.
package ifname

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxLen is the longest pattern in bytes, a trailing "+" included: IFNAMSIZ-1,
// as the kernel limits names and iptables limits -i arguments.
const MaxLen = 15

// Pattern is a parsed interface pattern. The zero Pattern matches nothing;
// Parse makes the others.
type Pattern struct {
	name   string // the name, or the prefix when prefix is set ("" for "+")
	prefix bool
}

// Parse parses an interface pattern: a name, a name followed by "+", or "+".
// The error says what is wrong and quotes s.
func Parse(s string) (Pattern, error) {
	if why := check(s); why != "" {
		return Pattern{}, errors.New(strconv.Quote(s) + " is not an interface name: " + why)
	}
	if name, ok := strings.CutSuffix(s, "+"); ok {
		return Pattern{name: name, prefix: true}, nil
	}
	return Pattern{name: s}, nil
}

// Match reports whether the interface called name matches p. An empty name
// (no interface known) matches no pattern, not even "+".
func (p Pattern) Match(name string) bool {
	if name == "" {
		return false
	}
	if p.prefix {
		return strings.HasPrefix(name, p.name)
	}
	return name == p.name
}

// String returns the pattern as written, which is its iptables -i form.
func (p Pattern) String() string {
	if p.prefix {
		return p.name + "+"
	}
	return p.name
}

// IsWildcard reports whether p ends in "+" and so matches by prefix; "+"
// alone matches every interface.
func (p Pattern) IsWildcard() bool { return p.prefix }

// check says what is wrong with s as a pattern, "" if nothing.
func check(s string) string {
	name, wild := strings.CutSuffix(s, "+")
	switch {
	case s == "":
		return `it is empty (write e.g. docker0, or veth+ for every name that starts with veth)`
	case len(s) > MaxLen:
		return tooLong(s)
	case !wild && (s == "." || s == ".."):
		return `the kernel refuses "." and ".." as names`
	case strings.HasPrefix(s, "!"):
		return "negation is not supported: list the interfaces to match"
	}
	for _, r := range name {
		if why := badChar(r); why != "" {
			return why
		}
	}
	return ""
}

// tooLong explains a pattern of more than MaxLen bytes. A name of MaxLen
// bytes with a "+" gets a hint: no longer name can start with it.
func tooLong(s string) string {
	msg := fmt.Sprintf(`%d bytes; a pattern has 1 to %d (IFNAMSIZ-1), a trailing "+" included`, len(s), MaxLen)
	name, ok := strings.CutSuffix(s, "+")
	if ok && len(name) == MaxLen && !strings.HasSuffix(name, "+") && check(name) == "" {
		msg += "; write " + name + ": no longer name can start with it"
	}
	return msg
}

// badChar says why r cannot be part of an interface name, "" if it can.
func badChar(r rune) string {
	switch {
	case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '_', r == '.', r == '-':
		return ""
	case r == '+':
		return `only a trailing "+" is a wildcard (veth+ is every name that starts with veth)`
	case r == '*':
		return `"*" is no wildcard here: write veth+ for every name that starts with veth`
	case r == '@':
		return `"@" is not part of a name: ip link shows the peer after it (veth1@if3 is veth1)`
	}
	return strconv.QuoteRuneToASCII(r) + ` is not allowed: a name has only letters, digits, "_", "." and "-"`
}
