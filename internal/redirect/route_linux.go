package redirect

import (
	"fmt"
	"net/netip"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/imdsguard/imdsguard/internal/offstack"
)

// netlinkRouter is the real router: one netlink socket, opened in the
// network namespace of the thread that opens the router, used by one
// lookup at a time (answers on a shared socket must not interleave).
type netlinkRouter struct {
	mu sync.Mutex
	h  *netlink.Handle
}

func openNetlinkRouter() (router, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	return &netlinkRouter{h: h}, nil
}

// RouteTo is ip route get a: the index of the interface it routes a
// through, 0 for a local address or none.
func (n *netlinkRouter) RouteTo(a netip.Addr) (int, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var routes []netlink.Route
	var err error
	offstack.Do(func() { routes, err = n.h.RouteGet(a.Unmap().AsSlice()) }) // netlink's 64 KB receive buffer
	if err != nil {
		return 0, fmt.Errorf("netlink: route to %s: %w", a, err)
	}
	if len(routes) == 0 || routes[0].Type == unix.RTN_LOCAL {
		return 0, nil
	}
	return routes[0].LinkIndex, nil
}

// LinkName names the interface with that index.
func (n *netlinkRouter) LinkName(index int) (string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var l netlink.Link
	var err error
	offstack.Do(func() { l, err = n.h.LinkByIndex(index) })
	if err != nil {
		return "", fmt.Errorf("netlink: link %d: %w", index, err)
	}
	return l.Attrs().Name, nil
}

func (n *netlinkRouter) Close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.h.Close()
}
