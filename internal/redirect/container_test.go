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
