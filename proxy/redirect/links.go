package redirect

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/imdsguard/imdsguard/proxy/ifname"
)

// Link is a network interface with its addresses.
type Link struct {
	Name  string
	Index int
	Kind  string // as netlink reports it: "veth", "bridge", "" for a plain device
	Addrs []netip.Prefix
}

func (l Link) String() string {
	addrs := make([]string, len(l.Addrs))
	for i, a := range l.Addrs {
		addrs[i] = a.String()
	}
	kind := l.Kind
	if kind == "" {
		kind = "device"
	}
	return fmt.Sprintf("%s (index %d, %s) [%s]", l.Name, l.Index, kind, strings.Join(addrs, " "))
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

// containerLinks keeps the links whose names match a pattern, by index.
func containerLinks(all []Link, patterns []ifname.Pattern) []Link {
	var out []Link
	for _, l := range all {
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

// ownerOf names the link that holds local address a, "" if none does.
func ownerOf(links []Link, a netip.Addr) string {
	a = a.Unmap().WithZone("")
	for _, l := range links {
		for _, p := range l.Addrs {
			if p.Addr() == a {
				return l.Name
			}
		}
	}
	return ""
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

// InterfaceFor names the container interface that owns local address a, ""
// if none does. A connection REDIRECTed from PREROUTING lands on the
// ingress interface's own address, so this names the caller's interface.
// Cheap while Keep runs (a cache lookup); a netlink query otherwise.
func (r *Rules) InterfaceFor(a netip.Addr) string {
	return ownerOf(r.Interfaces(), a)
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
