package redirect

import (
	"fmt"
	"net/netip"
	"slices"
)

// loAddr is an address on lo, as far as this package cares.
type loAddr struct {
	Prefix     netip.Prefix
	Label      string // IPv4 only: landingLabel marks ours
	HostScope  bool   // IPv4: scope host
	Deprecated bool   // IPv6: preferred lifetime 0
	NoDAD      bool   // IPv6: no duplicate address detection
}

func (a loAddr) String() string {
	s := a.Prefix.String()
	if a.HostScope {
		s += " scope host"
	}
	if a.Label != "" {
		s += " label " + a.Label
	}
	if a.NoDAD {
		s += " nodad"
	}
	if a.Deprecated {
		s += " preferred_lft 0"
	}
	return s
}

// loAddrs is what this package needs from netlink for the landing
// addresses: the addresses of lo, adding and deleting one. The real one
// (loaddr_linux.go) acts in the network namespace of the calling thread; a
// fake stands in for it in tests.
type loAddrs interface {
	List() ([]loAddr, error)
	Add(a loAddr) error
	Del(a loAddr) error
}

// landingAddr is the landing address a of family f as Install adds it.
func landingAddr(f family, a netip.Addr) loAddr {
	if f == familyV6 {
		return loAddr{Prefix: netip.PrefixFrom(a, 128), Deprecated: true, NoDAD: true}
	}
	return loAddr{Prefix: netip.PrefixFrom(a, 32), Label: landingLabel, HostScope: true}
}

// ownLanding reports whether an address on lo of family f is one Install
// added: IPv4 by its label; IPv6, which has no labels, by its shape (a
// deprecated nodad ULA /128 outside fd00:ec2::/64: nothing else makes one).
func ownLanding(f family, a loAddr) bool {
	ip := a.Prefix.Addr()
	if f == familyV4 {
		return ip.Is4() && a.Prefix.Bits() == 32 && a.Label == landingLabel
	}
	return ip.Is6() && a.Prefix.Bits() == 128 && a.Deprecated && a.NoDAD &&
		ulaNet.Contains(ip) && !imdsV6Net.Contains(ip)
}

// hasAddr reports whether addrs hold address a with any prefix length.
func hasAddr(addrs []loAddr, a netip.Addr) bool {
	for _, l := range addrs {
		if l.Prefix.Addr() == a {
			return true
		}
	}
	return false
}

// wantsLanding reports whether the plan of p needs a landing address: only
// when container interfaces are redirected.
func (p params) wantsLanding() bool { return len(p.Interfaces) > 0 }

// ipv6Off reports whether lo, holding have, has no IPv6 at all (::1 is
// there whenever IPv6 is on): a host with net.ipv6.conf.lo.disable_ipv6=1.
// There is no IPv6 landing address to add then (the kernel refuses it);
// container IPv6 metadata traffic is refused (IMDSGUARD-FWD), not served.
func ipv6Off(f family, have []loAddr) bool {
	if f != familyV6 {
		return false
	}
	return !slices.ContainsFunc(have, func(a loAddr) bool { return a.Prefix.Addr().Is6() })
}

// landingMissing reports whether family f's landing address is wanted and
// not on lo (holding have).
func landingMissing(f family, p params, have []loAddr) bool {
	return p.wantsLanding() && !ipv6Off(f, have) && !hasAddr(have, p.landing(f))
}

// ensureLanding adds family f's landing address to lo when it is missing
// and returns what it fixed. An address that is there in another form (an
// admin added it) counts as there: it is left alone, and Remove leaves it.
func ensureLanding(lo loAddrs, f family, p params) ([]string, error) {
	if !p.wantsLanding() {
		return nil, nil
	}
	want := landingAddr(f, p.landing(f))
	have, err := lo.List()
	if err != nil {
		return nil, fmt.Errorf("install %s: list addresses of lo: %w", f.Name, err)
	}
	if !landingMissing(f, p, have) {
		return nil, nil
	}
	if err := lo.Add(want); err != nil {
		return nil, fmt.Errorf("install %s: add %s to lo: %w", f.Name, want, err)
	}
	return []string{"lo address " + want.Prefix.String()}, nil
}

// removeLanding deletes every landing address of family f that Install
// added, whatever the configuration says now.
func removeLanding(lo loAddrs, f family) ([]string, error) {
	have, err := lo.List()
	if err != nil {
		return nil, fmt.Errorf("remove %s: list addresses of lo: %w", f.Name, err)
	}
	var removed []string
	for _, a := range have {
		if !ownLanding(f, a) {
			continue
		}
		if err := lo.Del(a); err != nil {
			return removed, fmt.Errorf("remove %s: delete %s from lo: %w", f.Name, a.Prefix, err)
		}
		removed = append(removed, "lo address "+a.Prefix.String())
	}
	return removed, nil
}

// landingItem is the status piece of family f's landing address.
func landingItem(lo loAddrs, f family, p params) (Item, error) {
	want := landingAddr(f, p.landing(f))
	it := Item{Family: f.Name, Chain: "lo", What: "address " + want.String() + " (where container metadata traffic lands)"}
	have, err := lo.List()
	if err != nil {
		return it, fmt.Errorf("status %s: list addresses of lo: %w", f.Name, err)
	}
	if ipv6Off(f, have) {
		it.What = "no address: IPv6 is off on lo (container IPv6 metadata traffic is refused, not served)"
	}
	it.Present = !landingMissing(f, p, have)
	return it, nil
}
