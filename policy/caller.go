package policy

import (
	"net/netip"
	"slices"

	"github.com/imdsguard/imdsguard/internal/ifname"
)

// callerMatch is a compiled MatchConfig. Names are already resolved: an entry
// whose name did not resolve is simply absent, so it matches nobody.
type callerMatch struct {
	all     bool // `match: {}`: no criterion was written
	users   []uint32
	groups  []uint32
	sources []netip.Prefix // masked, IPv4 prefixes unmapped
	ifaces  []ifname.Pattern
	// workload are the containers and pods selectors.
	workload workloadMatch
}

// fits reports whether the caller fits any criterion. Users and groups
// name host callers whose uid the kernel attested; sources and interfaces
// name container callers (traffic through PREROUTING). Each kind matches
// only its own: a host process can bind the host's bridge address, and a
// container's uid 0 is not the host's root. The containers and pods
// selectors name callers whose runtime answered: container callers, and
// host-network processes whose cgroup names a container.
func (m *callerMatch) fits(c *Caller) bool {
	if m.all || m.workload.fits(c.Workload) {
		return true
	}
	if c.Container {
		return m.fitsSource(c.Source) || m.fitsInterface(c.Interface)
	}
	return c.UIDKnown && (slices.Contains(m.users, c.UID) || m.fitsGroups(c.GIDs))
}

func (m *callerMatch) fitsGroups(gids []uint32) bool {
	for _, g := range gids {
		if slices.Contains(m.groups, g) {
			return true
		}
	}
	return false
}

// fitsSource matches addr, IPv4-mapped IPv6 addresses as IPv4 and zones dropped.
func (m *callerMatch) fitsSource(addr netip.Addr) bool {
	if !addr.IsValid() {
		return false
	}
	addr = addr.Unmap().WithZone("")
	for _, p := range m.sources {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// fitsInterface matches the ingress interface name; "" (none known) fits
// no pattern, not even "+".
func (m *callerMatch) fitsInterface(name string) bool {
	for _, p := range m.ifaces {
		if p.Match(name) {
			return true
		}
	}
	return false
}
