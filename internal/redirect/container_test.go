package redirect

import (
	"context"
	"net/netip"
	"slices"
	"testing"
)

// ContainerPath: the pieces of the container path that are missing (and
// no others), the connections its PREROUTING rules counted, the container
// interfaces, and whether Cilium is the CNI.
func TestContainerPath(t *testing.T) {
	h := newFakeHost(t, "nft", DefaultConfig())
	h.links.set(Link{Name: "lo", Index: 1}, Link{Name: "eth0", Index: 2},
		Link{Name: "cilium_host", Index: 3, Kind: "veth"}, Link{Name: "lxc1a2b", Index: 4, Kind: "veth"})
	cp, err := h.r.ContainerPath(context.Background())
	must(t, err)
	if len(cp.Missing) == 0 || cp.Counted {
		t.Errorf("nothing installed: %d missing, counted %v", len(cp.Missing), cp.Counted)
	}
	must(t, h.r.Install(context.Background()))
	h.v4.packets["nat/"+ChainPre] = 5
	h.v6.packets["nat/"+ChainPre] = 2
	h.v4.flushChain("nat", "OUTPUT") // the local path: not the containers'
	h.lo.del(DefaultLandingIPv6)
	cp, err = h.r.ContainerPath(context.Background())
	must(t, err)
	var missing []string
	for _, it := range cp.Missing {
		missing = append(missing, it.Family+" "+it.Where())
	}
	if !slices.Equal(missing, []string{"ipv6 lo"}) {
		t.Errorf("missing: %v", missing)
	}
	if !cp.Counted || cp.Connections != 7 {
		t.Errorf("connections %d (counted %v), want 7", cp.Connections, cp.Counted)
	}
	want := []netip.AddrPort{netip.MustParseAddrPort("169.254.254.169:8989"), netip.MustParseAddrPort("[fd69:6d64:7367::254]:8989")}
	if !slices.Equal(cp.Landing, want) || !slices.Equal(cp.Patterns, []string{"+"}) {
		t.Errorf("landing %v patterns %v", cp.Landing, cp.Patterns)
	}
	if len(cp.Links) != 3 || !cp.Cilium {
		t.Errorf("links %v, cilium %v", cp.Links, cp.Cilium)
	}
}

// Landing: each configured family's landing address and whether it is on
// lo; IPv6 off on lo is said, not called missing; nothing without
// container interfaces.
func TestLandingState(t *testing.T) {
	h := newFakeHost(t, "nft", DefaultConfig())
	got, err := h.r.Landing()
	must(t, err)
	want := []LandingState{
		{Family: "ipv4", Addr: netip.MustParsePrefix("169.254.254.169/32")},
		{Family: "ipv6", Addr: netip.MustParsePrefix("fd69:6d64:7367::254/128")},
	}
	if !slices.Equal(got, want) {
		t.Errorf("before install: %+v, want %+v", got, want)
	}
	must(t, h.r.Install(context.Background()))
	h.lo.del(DefaultLandingIPv6)
	got, err = h.r.Landing()
	must(t, err)
	want[0].Present = true
	if !slices.Equal(got, want) {
		t.Errorf("ipv6 deleted: %+v, want %+v", got, want)
	}
	h.lo.mu.Lock()
	h.lo.addrs = slices.DeleteFunc(h.lo.addrs, func(a loAddr) bool { return a.Prefix.Addr().Is6() })
	h.lo.mu.Unlock()
	got, err = h.r.Landing()
	must(t, err)
	if len(got) != 2 || !got[1].IPv6Off || got[1].Present {
		t.Errorf("IPv6 off on lo: %+v", got)
	}
	cfg := DefaultConfig()
	cfg.ContainerInterfaces = nil
	none, err := newFakeHost(t, "nft", cfg).r.Landing()
	if err != nil || none != nil {
		t.Errorf("no container interfaces: %+v, %v", none, err)
	}
}
