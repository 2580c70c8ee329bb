package redirect

import (
	"errors"
	"strings"

	"github.com/imdsguard/imdsguard/proxy/config/field"
)

// Config is the `redirect:` section of the configuration file.
type Config struct {
	IPv4 bool `yaml:"ipv4"` // redirect 169.254.169.254 (iptables)
	IPv6 bool `yaml:"ipv6"` // redirect fd00:ec2::254 (ip6tables)
	// ContainerInterfaces are iptables -i patterns ("veth+" is every name
	// starting with veth) whose metadata traffic is redirected in PREROUTING.
	ContainerInterfaces []string `yaml:"container_interfaces"`
	// KeepOnExit leaves the rules in place when the daemon stops, so that
	// callers get "connection refused" instead of the real IMDS (fail closed).
	KeepOnExit bool `yaml:"keep_on_exit"`
}

// DefaultConfig returns the safe defaults: both families, the usual Docker,
// bridge and CNI interface names, rules kept on exit.
func DefaultConfig() Config {
	return Config{
		IPv4:                true,
		IPv6:                true,
		ContainerInterfaces: []string{"docker0", "br-+", "cni+", "veth+"},
		KeepOnExit:          true,
	}
}

// maxIfName is IFNAMSIZ-1, the longest interface name (and -i pattern).
const maxIfName = 15

// Validate reports every problem of c as *field.Error values with paths
// relative to the section, joined with errors.Join.
func (c Config) Validate() error {
	var errs []error
	seen := map[string]int{}
	for i, name := range c.ContainerInterfaces {
		path := field.Index("container_interfaces", i)
		if err := checkIfPattern(name); err != "" {
			errs = append(errs, field.Errorf(path, "%q: %s", name, err))
			continue
		}
		if j, dup := seen[name]; dup {
			errs = append(errs, field.Errorf(path, "%q is listed twice (also at [%d])", name, j))
			continue
		}
		seen[name] = i
	}
	return errors.Join(errs...)
}

// checkIfPattern says what is wrong with an iptables -i pattern, "" if
// nothing: a name the kernel accepts, at most 15 characters, with an
// optional trailing "+" wildcard; no negation.
func checkIfPattern(p string) string {
	switch {
	case p == "":
		return "empty interface name"
	case len(p) > maxIfName:
		return "longer than 15 characters (IFNAMSIZ)"
	case p == "." || p == "..":
		return "not an interface name"
	case strings.HasPrefix(p, "!"):
		return "negation is not supported: list the interfaces to redirect"
	}
	body := strings.TrimSuffix(p, "+")
	for _, r := range body {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune(`/:+"'\!`, r) {
			return "only a trailing + may be a wildcard; no spaces, quotes, '/', ':' or '!'"
		}
	}
	return ""
}

// matchIf reports whether the interface name matches the iptables -i
// pattern: exact, or a prefix when the pattern ends in "+".
func matchIf(pattern, name string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "+"); ok {
		return strings.HasPrefix(name, prefix)
	}
	return pattern == name
}
