package redirect

import (
	"errors"

	"github.com/imdsguard/imdsguard/internal/config/field"
	"github.com/imdsguard/imdsguard/internal/ifname"
)

// Config is the `redirect:` section of the configuration file.
type Config struct {
	IPv4 bool `yaml:"ipv4"` // redirect 169.254.169.254 (iptables)
	IPv6 bool `yaml:"ipv6"` // redirect fd00:ec2::254 (ip6tables)
	// ContainerInterfaces are interface patterns in iptables -i syntax
	// (package ifname: "veth+" is every name starting with veth) whose
	// metadata traffic is redirected in PREROUTING; "+" is every interface
	// but lo there (see ingress in rules.go).
	ContainerInterfaces []string `yaml:"container_interfaces"`
	// KeepOnExit leaves the rules in place when the daemon stops, so that
	// callers get "connection refused" instead of the real IMDS (fail closed).
	KeepOnExit bool `yaml:"keep_on_exit"`
	// LandingIPv4 and LandingIPv6 are the host-local addresses on lo that
	// container metadata traffic is DNATed to (landing.go); "" = default.
	LandingIPv4 string `yaml:"landing_ipv4"`
	LandingIPv6 string `yaml:"landing_ipv6"`
}

// DefaultConfig returns the safe defaults: both families, every interface
// but lo ("+": metadata traffic that arrives on an interface comes from a
// container, a pod or a VM on this host), rules kept on exit.
func DefaultConfig() Config {
	return Config{
		IPv4:                true,
		IPv6:                true,
		ContainerInterfaces: []string{"+"},
		KeepOnExit:          true,
		LandingIPv4:         DefaultLandingIPv4.String(),
		LandingIPv6:         DefaultLandingIPv6.String(),
	}
}

// Validate reports every problem of c as *field.Error values with paths
// relative to the section, joined with errors.Join.
func (c Config) Validate() error {
	_, err := c.parseInterfaces()
	return errors.Join(append(field.Split(err), c.validateLanding()...)...)
}

// parseInterfaces parses container_interfaces; a pattern that does not
// parse or is listed twice is a *field.Error.
func (c Config) parseInterfaces() ([]ifname.Pattern, error) {
	var errs []error
	out := make([]ifname.Pattern, 0, len(c.ContainerInterfaces))
	seen := map[ifname.Pattern]int{}
	for i, s := range c.ContainerInterfaces {
		path := field.Index("container_interfaces", i)
		p, err := ifname.Parse(s)
		if err != nil {
			errs = append(errs, field.Errorf(path, "%v", err))
			continue
		}
		if j, dup := seen[p]; dup {
			errs = append(errs, field.Errorf(path, "%q is listed twice (also at [%d])", s, j))
			continue
		}
		seen[p] = i
		out = append(out, p)
	}
	return out, errors.Join(errs...)
}

// interfaces returns the container_interfaces of a validated c.
func (c Config) interfaces() []ifname.Pattern {
	ps, err := c.parseInterfaces()
	if err != nil {
		panic("redirect: container_interfaces passed Validate but do not parse: " + err.Error())
	}
	return ps
}
