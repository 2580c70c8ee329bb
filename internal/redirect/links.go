package redirect

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/imdsguard/imdsguard/internal/ifname"
)

// Link is a network interface with its addresses.
type Link struct {
	Name  string
	Index int
	Kind  string // as netlink reports it: "veth", "bridge", "" for a plain device
	Addrs []netip.Prefix
	// Master names the bridge (or bond, VRF) the link is enslaved to, ""
	// for none. A bridge port's traffic enters the host's IP stack on the
	// bridge: -i matches the bridge's name, never the port's.
	Master string
}

func (l Link) String() string {
	addrs := make([]string, len(l.Addrs))
	for i, a := range l.Addrs {
		addrs[i] = a.String()
	}
	desc := l.KindName()
	if l.Master != "" {
		desc += ", port of " + l.Master
	} else if l.AddressLess() {
		desc += ", address-less"
	}
	return fmt.Sprintf("%s (index %d, %s) [%s]", l.Name, l.Index, desc, strings.Join(addrs, " "))
}

// KindName is the link's kind, "device" for a plain one.
func (l Link) KindName() string {
	if l.Kind == "" {
		return "device"
	}
	return l.Kind
}

// AddressLess reports whether the link has no address but IPv6 link-local
// ones: the host side of a pod's veth on most CNIs, where REDIRECT would
// have nothing to redirect to.
func (l Link) AddressLess() bool {
	for _, a := range l.Addrs {
		if !a.Addr().IsLinkLocalUnicast() || a.Addr().Is4() {
			return false
		}
	}
	return true
}

// linkWatch is the kernel's view of the links of the network namespace it
// was opened in. Every method is to be called from the goroutine that
// opened it; Changed may be received from anywhere.
type linkWatch interface {
	Links() ([]Link, error)   // every link now, with its addresses
	Changed() <-chan struct{} // a value after links or addresses changed (nil when not watching)
	Close()
}

// openLinks opens a linkWatch in the caller's network namespace; with watch
// false it only answers Links.
type openLinks func(watch bool) (linkWatch, error)

// linkCache holds the container interfaces while Keep follows them.
type linkCache struct {
	mu        sync.RWMutex
	following bool
	links     []Link // container interfaces only, by index
}

// name is the name of the cached link with that index, "" for none (or
// when not following).
func (c *linkCache) name(index int) string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, l := range c.links {
		if l.Index == index {
			return l.Name
		}
	}
	return ""
}

func (c *linkCache) get() ([]Link, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return slices.Clone(c.links), c.following
}

// set stores links and returns the ones that appeared and vanished.
func (c *linkCache) set(links []Link, following bool) (appeared, vanished []Link) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.links
	c.links, c.following = links, following
	return diffLinks(old, links), diffLinks(links, old)
}

// containerLinks keeps the links whose names match a pattern, by index;
// never lo, which "+" leaves out too (see ingress).
func containerLinks(all []Link, patterns []ifname.Pattern) []Link {
	var out []Link
	for _, l := range all {
		if l.Name == "lo" {
			continue
		}
		if slices.ContainsFunc(patterns, func(p ifname.Pattern) bool { return p.Match(l.Name) }) {
			out = append(out, l)
		}
	}
	slices.SortFunc(out, func(a, b Link) int { return a.Index - b.Index })
	return out
}

// diffLinks returns the links of b that are not in a (same name and index).
func diffLinks(a, b []Link) []Link {
	var out []Link
	for _, l := range b {
		if !slices.ContainsFunc(a, func(m Link) bool { return m.Name == l.Name && m.Index == l.Index }) {
			out = append(out, l)
		}
	}
	return out
}

// Interfaces returns the container interfaces present now: from Keep's
// cache while Keep runs, otherwise asked from the kernel (in the namespace
// of the calling thread).
func (r *Rules) Interfaces() []Link {
	if links, following := r.links.get(); following {
		return links
	}
	w, err := r.openLinks(false)
	if err != nil {
		r.log.Warn("cannot list container interfaces", "err", err)
		return nil
	}
	defer w.Close()
	all, err := w.Links()
	if err != nil {
		r.log.Warn("cannot list container interfaces", "err", err)
		return nil
	}
	return containerLinks(all, r.params.Interfaces)
}

// InterfaceFor names the container interface a caller at address a (the
// source of a redirected connection) came in through, "" when that is not
// a container interface. Every container's connection lands on the same
// landing address, so where it landed says nothing; the host's route back
// to the caller does (ip route get, on a netlink socket kept open, in the
// namespace of the thread that first asks): a pod's /32 route through its
// veth, a bridge's subnet route through the bridge. With symmetric
// routing, the usual case on container hosts, that is the interface the
// connection arrived on. Its limit: where routing is asymmetric
// (source-based policy routing, two interfaces routing one address) the
// name is that of the way back, which may not be the way in. A TCP caller
// cannot pick another's address and still complete the handshake, so the
// name follows the caller's real address. While Keep follows the links
// the index is named from its cache; a link newer than the cache is asked
// for.
func (r *Rules) InterfaceFor(a netip.Addr) string {
	rt, err := r.routes()
	if err != nil {
		r.log.Warn("cannot look up routes to container callers", "err", err)
		return ""
	}
	index, err := rt.RouteTo(a.Unmap().WithZone(""))
	if err != nil || index == 0 {
		r.log.Debug("no route to a container caller", "addr", a, "err", err)
		return ""
	}
	name := r.cachedName(index)
	if name == "" {
		if name, err = rt.LinkName(index); err != nil {
			r.log.Debug("no name for the interface to a container caller", "addr", a, "index", index, "err", err)
			return ""
		}
	}
	if name == "lo" || !slices.ContainsFunc(r.params.Interfaces, func(p ifname.Pattern) bool { return p.Match(name) }) {
		return ""
	}
	return name
}

// routes returns the route lookups, opening them on first use.
func (r *Rules) routes() (router, error) {
	r.routerMu.Lock()
	defer r.routerMu.Unlock()
	if r.router == nil {
		rt, err := r.kernel.openRouter()
		if err != nil {
			return nil, err
		}
		r.router = rt
	}
	return r.router, nil
}

// cachedName names a container interface by index from Keep's cache, ""
// when Keep does not follow the links or the index is not there.
func (r *Rules) cachedName(index int) string {
	return r.links.name(index)
}

// refreshLinks reads the links through w, stores the container interfaces
// and logs those that appeared or vanished.
func (r *Rules) refreshLinks(w linkWatch) {
	all, err := w.Links()
	if err != nil {
		r.log.Warn("cannot list container interfaces", "err", err)
		return
	}
	appeared, vanished := r.links.set(containerLinks(all, r.params.Interfaces), true)
	for _, l := range appeared {
		r.log.Info("container interface appeared", "interface", l.Name, "index", l.Index, "kind", l.Kind, "addrs", fmt.Sprint(l.Addrs))
	}
	for _, l := range vanished {
		r.log.Info("container interface vanished", "interface", l.Name, "index", l.Index)
	}
}
