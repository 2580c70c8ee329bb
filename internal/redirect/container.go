package redirect

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
)

// ContainerPath is what `imdsguard check` reports about the path of
// container metadata traffic: the pieces it needs, whether containers have
// used it, and the interfaces it covers.
type ContainerPath struct {
	Patterns []string         // redirect.container_interfaces
	Landing  []netip.AddrPort // where container connections land (the DNAT targets)
	// Missing are the pieces of that path not in place: IMDSGUARD-PRE and
	// its jump (first in nat PREROUTING), the landing addresses on lo,
	// IMDSGUARD-IN (lets redirected flows reach the port) and IMDSGUARD-FWD
	// with their jumps.
	Missing []Item
	// Connections counts the connections redirected from containers since
	// the rules went in: the packets of IMDSGUARD-PRE's rules (the nat
	// table sees only a connection's first packet). Counted is false when
	// the counters could not be read.
	Connections uint64
	Counted     bool
	Links       []Link // the container interfaces present now
	// Cilium is true when a cilium_host link exists: Cilium is this host's
	// CNI (whatever container_interfaces says).
	Cilium bool
}

// containerChains are the chains and hooks of the container path.
var containerChains = []string{ChainPre, "PREROUTING", ChainIn, "INPUT", ChainFwd, "FORWARD", "lo"}

// ContainerPath inspects the container path without changing anything.
func (r *Rules) ContainerPath(ctx context.Context) (ContainerPath, error) {
	cp := ContainerPath{}
	for _, p := range r.params.Interfaces {
		cp.Patterns = append(cp.Patterns, p.String())
	}
	for _, fr := range r.active {
		if r.params.wantsLanding() {
			cp.Landing = append(cp.Landing, netip.AddrPortFrom(r.params.landing(fr.fam), uint16(r.params.Port)))
		}
	}
	st, err := r.Status(ctx)
	if err != nil {
		return cp, err
	}
	for _, it := range st.Items {
		if !it.Present && slices.Contains(containerChains, it.Chain) {
			cp.Missing = append(cp.Missing, it)
		}
	}
	cp.Links = st.Links
	if !slices.ContainsFunc(cp.Missing, func(it Item) bool { return it.Chain == ChainPre }) {
		// Only then: listing a chain creates a missing legacy table.
		cp.Connections, cp.Counted = r.preCounters()
	}
	cp.Cilium = r.hasLink("cilium_host")
	return cp, nil
}

var packetsRE = regexp.MustCompile(` -c (\d+) \d+`)

// preCounters sums the packet counters of IMDSGUARD-PRE's rules over the
// configured families; ok is false when a family's could not be read.
func (r *Rules) preCounters() (packets uint64, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, fr := range r.active {
		lines, err := fr.ipt.ListWithCounters(tableNAT, ChainPre)
		if err != nil {
			r.log.Debug("cannot read counters", "family", fr.fam.Name, "err", err)
			return packets, false
		}
		for _, l := range ruleLines(lines) {
			if m := packetsRE.FindStringSubmatch(l); m != nil {
				n, _ := strconv.ParseUint(m[1], 10, 64)
				packets += n
			}
		}
	}
	return packets, true
}

// hasLink reports whether a link of that name exists now.
func (r *Rules) hasLink(name string) bool {
	w, err := r.openLinks(false)
	if err != nil {
		return false
	}
	defer w.Close()
	all, err := w.Links()
	return err == nil && slices.ContainsFunc(all, func(l Link) bool { return l.Name == name })
}

// LandingState is one family's landing address on lo, as imdsguard check
// reports it.
type LandingState struct {
	Family  string       // "ipv4" or "ipv6"
	Addr    netip.Prefix // the address Install puts on lo
	Present bool         // on lo, in any form (an admin's counts)
	// IPv6Off: lo has no IPv6 at all (net.ipv6.conf.lo.disable_ipv6=1):
	// no address can be there, and container IPv6 metadata traffic is
	// refused (IMDSGUARD-FWD), not served.
	IPv6Off bool
}

// Landing reports the landing address of each configured family, without
// changing anything; none when no container interface is redirected
// (nothing lands there).
func (r *Rules) Landing() ([]LandingState, error) {
	if !r.params.wantsLanding() {
		return nil, nil
	}
	have, err := r.lo.List()
	if err != nil {
		return nil, fmt.Errorf("landing: list addresses of lo: %w", err)
	}
	var out []LandingState
	for _, fr := range r.active {
		a := r.params.landing(fr.fam)
		out = append(out, LandingState{Family: fr.fam.Name, Addr: landingAddr(fr.fam, a).Prefix,
			Present: hasAddr(have, a), IPv6Off: ipv6Off(fr.fam, have)})
	}
	return out, nil
}
