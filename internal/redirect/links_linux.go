package redirect

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// netlinkWatch reads links and addresses through a netlink handle and, when
// watching, subscribes to link and address changes. Its sockets are made in
// the network namespace of the thread that opens it and stay there.
type netlinkWatch struct {
	h       *netlink.Handle
	done    chan struct{}
	changed chan struct{}
	links   chan netlink.LinkUpdate
	addrs   chan netlink.AddrUpdate
}

// netlinkLinks is the real openLinks.
func netlinkLinks(watch bool) (linkWatch, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	w := &netlinkWatch{h: h}
	if !watch {
		return w, nil
	}
	if err := w.subscribe(); err != nil {
		w.Close()
		return nil, err
	}
	return w, nil
}

// subscribe joins the link and address groups and starts the goroutine
// that turns their updates into (coalesced) change signals. The sockets
// are made here, on the caller's thread, so in its namespace.
func (w *netlinkWatch) subscribe() error {
	w.done = make(chan struct{})
	w.changed = make(chan struct{}, 1)
	w.links = make(chan netlink.LinkUpdate, 16)
	w.addrs = make(chan netlink.AddrUpdate, 16)
	if err := netlink.LinkSubscribeWithOptions(w.links, w.done, netlink.LinkSubscribeOptions{}); err != nil {
		return fmt.Errorf("netlink: follow links: %w", err)
	}
	if err := netlink.AddrSubscribeWithOptions(w.addrs, w.done, netlink.AddrSubscribeOptions{}); err != nil {
		return fmt.Errorf("netlink: follow addresses: %w", err)
	}
	go w.forward()
	return nil
}

// forward signals a change for every update until both subscriptions end,
// then closes changed.
func (w *netlinkWatch) forward() {
	defer close(w.changed)
	links, addrs := w.links, w.addrs
	for links != nil || addrs != nil {
		select {
		case _, ok := <-links:
			if !ok {
				links = nil
			}
		case _, ok := <-addrs:
			if !ok {
				addrs = nil
			}
		}
		select {
		case w.changed <- struct{}{}:
		default: // a signal is already pending
		}
	}
}

func (w *netlinkWatch) Changed() <-chan struct{} { return w.changed }

// Close ends the subscriptions (the forward goroutine drains them and
// exits) and closes the handle.
func (w *netlinkWatch) Close() {
	if w.done != nil {
		close(w.done)
		w.done = nil
	}
	w.h.Close()
}

// Links returns every link of the namespace with its addresses.
func (w *netlinkWatch) Links() ([]Link, error) {
	nls, err := w.h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("netlink: list links: %w", err)
	}
	names := make(map[int]string, len(nls))
	for _, nl := range nls {
		names[nl.Attrs().Index] = nl.Attrs().Name
	}
	out := make([]Link, 0, len(nls))
	for _, nl := range nls {
		a := nl.Attrs()
		l := Link{Name: a.Name, Index: a.Index, Kind: nl.Type(), Master: names[a.MasterIndex]}
		if l.Kind == "device" {
			l.Kind = ""
		}
		addrs, err := w.h.AddrList(nl, netlink.FAMILY_ALL)
		if err != nil {
			continue // the link went away meanwhile
		}
		for _, ad := range addrs {
			ip, ok := netip.AddrFromSlice(ad.IP)
			if !ok {
				continue
			}
			ones, _ := ad.Mask.Size()
			l.Addrs = append(l.Addrs, netip.PrefixFrom(ip.Unmap(), ones))
		}
		out = append(out, l)
	}
	return out, nil
}
