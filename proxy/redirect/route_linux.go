package redirect

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// netlinkRoute names the interface the calling thread's namespace routes a
// through (ip route get a), "" for a local address.
func netlinkRoute(a netip.Addr) (string, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return "", fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	routes, err := h.RouteGet(a.Unmap().AsSlice())
	if err != nil {
		return "", fmt.Errorf("netlink: route to %s: %w", a, err)
	}
	if len(routes) == 0 || routes[0].LinkIndex == 0 {
		return "", nil
	}
	if routes[0].Type == unix.RTN_LOCAL {
		return "", nil
	}
	l, err := h.LinkByIndex(routes[0].LinkIndex)
	if err != nil {
		return "", fmt.Errorf("netlink: link %d: %w", routes[0].LinkIndex, err)
	}
	return l.Attrs().Name, nil
}
