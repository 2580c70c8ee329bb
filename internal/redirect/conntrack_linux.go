package redirect

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/imdsguard/imdsguard/internal/imds"
)

// netlinkConntrack deletes, in the calling thread's namespace, the
// conntrack entries of family f's metadata flows that no rule rewrote.
func netlinkConntrack(f family) (uint, error) {
	h, err := netlink.NewHandle(unix.NETLINK_NETFILTER)
	if err != nil {
		return 0, fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	fam := netlink.InetFamily(unix.AF_INET)
	if f == familyV6 {
		fam = unix.AF_INET6
	}
	n, err := h.ConntrackDeleteFilters(netlink.ConntrackTable, fam, unredirected{f.IMDS.Addr()})
	if err != nil {
		return n, fmt.Errorf("conntrack: delete %s metadata flows: %w", f.Name, err)
	}
	return n, nil
}

// unredirected matches the flows of tcp connections to the metadata
// service's port that go to the metadata service itself: the reply comes
// from the address the client dialled, so no NAT rule rewrote them.
// Redirected flows (their reply comes from the proxy) are left alone.
type unredirected struct{ imds netip.Addr }

func (u unredirected) MatchConntrackFlow(fl *netlink.ConntrackFlow) bool {
	dst, _ := netip.AddrFromSlice(fl.Forward.DstIP)
	rsrc, _ := netip.AddrFromSlice(fl.Reverse.SrcIP)
	return fl.Forward.Protocol == unix.IPPROTO_TCP && fl.Forward.DstPort == imds.Port &&
		dst.Unmap() == u.imds && rsrc.Unmap() == u.imds && fl.Reverse.SrcPort == imds.Port
}
