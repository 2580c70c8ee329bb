package redirect

import (
	"fmt"
	"math"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// netlinkLo is the real loAddrs: every call opens a netlink handle in the
// network namespace of the calling thread, as the iptables tools run there.
type netlinkLo struct{}

// lo opens a handle and finds lo in the calling thread's namespace.
func (netlinkLo) lo() (*netlink.Handle, netlink.Link, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, nil, fmt.Errorf("netlink: %w", err)
	}
	l, err := h.LinkByName("lo")
	if err != nil {
		h.Close()
		return nil, nil, fmt.Errorf("netlink: find lo: %w", err)
	}
	return h, l, nil
}

func (n netlinkLo) List() ([]loAddr, error) {
	h, l, err := n.lo()
	if err != nil {
		return nil, err
	}
	defer h.Close()
	nas, err := h.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return nil, err
	}
	out := make([]loAddr, 0, len(nas))
	for _, na := range nas {
		ip, ok := netip.AddrFromSlice(na.IP)
		if !ok {
			continue
		}
		ones, _ := na.Mask.Size()
		out = append(out, loAddr{
			Prefix:     netip.PrefixFrom(ip.Unmap(), ones),
			Label:      na.Label,
			HostScope:  ip.Unmap().Is4() && na.Scope == unix.RT_SCOPE_HOST,
			Deprecated: na.Flags&unix.IFA_F_DEPRECATED != 0,
			NoDAD:      na.Flags&unix.IFA_F_NODAD != 0,
		})
	}
	return out, nil
}

func (n netlinkLo) Add(a loAddr) error { return n.change(a, (*netlink.Handle).AddrAdd) }
func (n netlinkLo) Del(a loAddr) error { return n.change(a, (*netlink.Handle).AddrDel) }

func (n netlinkLo) change(a loAddr, op func(*netlink.Handle, netlink.Link, *netlink.Addr) error) error {
	h, l, err := n.lo()
	if err != nil {
		return err
	}
	defer h.Close()
	return op(h, l, toNetlink(a))
}

// toNetlink is a as netlink's request: IPv4 with its label and scope host;
// IPv6 nodad, valid forever and preferred never (deprecated: see landing.go).
func toNetlink(a loAddr) *netlink.Addr {
	ip := a.Prefix.Addr()
	bits := 32
	if ip.Is6() {
		bits = 128
	}
	na := &netlink.Addr{IPNet: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(a.Prefix.Bits(), bits)}, Label: a.Label}
	if a.HostScope {
		na.Scope = unix.RT_SCOPE_HOST
	}
	if a.NoDAD {
		na.Flags |= unix.IFA_F_NODAD
	}
	if a.Deprecated {
		na.ValidLft, na.PreferedLft = math.MaxUint32, 0
	}
	return na
}
