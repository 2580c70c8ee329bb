package redirect

import (
	"fmt"
	"net/netip"

	"github.com/imdsguard/imdsguard/internal/config/field"
)

// The landing addresses: host-local addresses on lo that container metadata
// traffic is DNATed to (nat PREROUTING), and where the proxy also listens.
//
// Why not REDIRECT, as in OUTPUT: REDIRECT rewrites the destination to the
// ingress interface's primary address, and the host side of a pod's veth
// has none on most CNIs (AWS VPC CNI eni…, Calico cali…, Cilium lxc…): the
// SYN is matched and then dropped, and the pod hangs. DNAT to an address the
// host owns needs nothing on the ingress interface.
//
// IPv4: a /32 in 169.254.0.0/16, so nothing outside the host is ever
// shadowed, with scope host, so the kernel never picks it as the source of
// anything leaving the host. The default 169.254.254.169 is clear of the
// link-local addresses others use (see reservedV4).
//
// IPv6: a ULA /128 of imdsguard's own (fd69:6d64:7367::/48 spells "imdsg"
// in ASCII), outside fd00:ec2::/64. IPv6 ignores an address's scope, so it
// is added deprecated (preferred lifetime 0): the kernel still delivers to
// it but never picks it as a source address (RFC 6724 rule 3). Without
// that, a ULA on lo would win the source selection for fd00:ec2::254 (same
// label 13) and the daemon's own upstream traffic would leave with an
// address nothing can answer.
var (
	DefaultLandingIPv4 = netip.MustParseAddr("169.254.254.169")
	DefaultLandingIPv6 = netip.MustParseAddr("fd69:6d64:7367::254")
)

// landingLabel marks the IPv4 landing address as imdsguard's (ip addr shows
// it; Remove deletes only what carries it). IPv6 addresses have no label:
// there the mark is the address's shape (see ownLanding).
const landingLabel = "lo:imdsguard"

// reserved is an address range someone else relies on.
type reserved struct {
	prefix netip.Prefix
	who    string
}

// reservedV4 are the link-local addresses a landing address must not take:
// traffic to them must keep going where it goes.
var reservedV4 = []reserved{
	{netip.MustParsePrefix("169.254.0.0/24"), "reserved by RFC 3927"},
	{netip.MustParsePrefix("169.254.255.0/24"), "reserved by RFC 3927"},
	{netip.MustParsePrefix("169.254.1.1/32"), "the pods' gateway of the AWS VPC CNI and Calico"},
	{netip.MustParsePrefix("169.254.20.10/32"), "Kubernetes NodeLocal DNSCache"},
	{netip.MustParsePrefix("169.254.25.10/32"), "kubespray's nodelocaldns"},
	{netip.MustParsePrefix("169.254.169.0/24"), "AWS (169.254.169.123 NTP, .253 DNS, .254 IMDS; GKE .252)"},
	{netip.MustParsePrefix("169.254.170.0/24"), "ECS task metadata (169.254.170.2) and EKS Pod Identity (169.254.170.23)"},
	{netip.MustParsePrefix("169.254.172.0/22"), "the AWS VPC CNI's IPv4 egress range for IPv6 pods"},
}

// imdsV6Net is AWS's own fd00:ec2::/64 (IMDS ::254, DNS ::253, NTP ::123,
// EKS Pod Identity ::23).
var imdsV6Net = netip.MustParsePrefix("fd00:ec2::/64")

// ulaNet is fc00::/7, the unique local addresses.
var ulaNet = netip.MustParsePrefix("fc00::/7")

// linkLocalV4 is 169.254.0.0/16.
var linkLocalV4 = netip.MustParsePrefix("169.254.0.0/16")

// landing returns the configured landing address of family f. The
// configuration was validated (New refuses it otherwise); an empty field
// means the default.
func (c Config) landing(f family) netip.Addr {
	s, def := c.LandingIPv4, DefaultLandingIPv4
	if f == familyV6 {
		s, def = c.LandingIPv6, DefaultLandingIPv6
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a
	}
	return def
}

// params are the rule parameters of c for the proxy port and socket mark.
func (c Config) params(port int, mark uint32) params {
	return params{Port: port, Mark: mark, Interfaces: c.interfaces(),
		LandingV4: c.landing(familyV4), LandingV6: c.landing(familyV6)}
}

// LandingAddrs returns the landing addresses the proxy must listen on: one
// per redirected family, none when no container interface is redirected.
func (c Config) LandingAddrs() []netip.Addr {
	if len(c.ContainerInterfaces) == 0 {
		return nil
	}
	var out []netip.Addr
	for _, f := range c.families() {
		out = append(out, c.landing(f))
	}
	return out
}

// validateLanding checks landing_ipv4 and landing_ipv6 ("" = the default).
func (c Config) validateLanding() []error {
	var errs []error
	if c.LandingIPv4 != "" {
		if why := checkLandingV4(c.LandingIPv4); why != "" {
			errs = append(errs, field.Errorf("landing_ipv4", "%q: %s", c.LandingIPv4, why))
		}
	}
	if c.LandingIPv6 != "" {
		if why := checkLandingV6(c.LandingIPv6); why != "" {
			errs = append(errs, field.Errorf("landing_ipv6", "%q: %s", c.LandingIPv6, why))
		}
	}
	return errs
}

// checkLandingV4 says what is wrong with s as the IPv4 landing address.
func checkLandingV4(s string) string {
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil || !a.Is4():
		return "not an IPv4 address"
	case !linkLocalV4.Contains(a):
		return "must be in 169.254.0.0/16 (link-local: never routed, so it shadows nothing off the host)"
	}
	for _, r := range reservedV4 {
		if r.prefix.Contains(a) {
			return fmt.Sprintf("%s is taken: %s", r.prefix, r.who)
		}
	}
	return ""
}

// checkLandingV6 says what is wrong with s as the IPv6 landing address.
func checkLandingV6(s string) string {
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil || !a.Is6() || a.Is4In6() || a.Zone() != "":
		return "not an IPv6 address"
	case !ulaNet.Contains(a):
		return "must be a unique local address (fc00::/7), so it shadows nothing off the host"
	case imdsV6Net.Contains(a):
		return "fd00:ec2::/64 is AWS's (IMDS ::254, DNS ::253, NTP ::123, EKS Pod Identity ::23)"
	}
	return ""
}
