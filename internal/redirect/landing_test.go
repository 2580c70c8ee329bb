package redirect

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// Unit tests of the landing addresses (against the fake kernel): Install
// adds them as marked, Remove deletes exactly those, Keep puts them back.

var (
	landing4 = loAddr{Prefix: netip.MustParsePrefix("169.254.254.169/32"), Label: "lo:imdsguard", HostScope: true}
	landing6 = loAddr{Prefix: netip.MustParsePrefix("fd69:6d64:7367::254/128"), Deprecated: true, NoDAD: true}
	loopback = []loAddr{
		{Prefix: netip.MustParsePrefix("127.0.0.1/8"), HostScope: true},
		{Prefix: netip.MustParsePrefix("::1/128")},
	}
)

func TestInstallAddsLanding(t *testing.T) {
	h := newFakeHost(t, "nft", DefaultConfig())
	h.lo.addrs = slices.Clone(loopback)
	must(t, h.r.Install(context.Background()))
	want := append(slices.Clone(loopback), landing4, landing6)
	if got := h.lo.snapshot(); !slices.Equal(got, want) {
		t.Errorf("lo after install: %v, want %v", got, want)
	}
	for _, a := range []loAddr{landing4, landing6} {
		f := familyV4
		if a.Prefix.Addr().Is6() {
			f = familyV6
		}
		if !ownLanding(f, a) {
			t.Errorf("%s is not recognized as imdsguard's", a)
		}
	}
	h.lo.writes = nil
	must(t, h.r.Install(context.Background()))
	if len(h.lo.writes) != 0 {
		t.Errorf("second install changed lo: %v", h.lo.writes)
	}
	must(t, h.r.Remove(context.Background()))
	if got := h.lo.snapshot(); !slices.Equal(got, loopback) {
		t.Errorf("lo after remove: %v, want %v", got, loopback)
	}
}

// Without container interfaces nothing is DNATed: no landing address.
func TestNoInterfacesNoLanding(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ContainerInterfaces = nil
	h := newFakeHost(t, "nft", cfg)
	must(t, h.r.Install(context.Background()))
	if got := h.lo.snapshot(); !slices.Equal(got, loopback) {
		t.Errorf("lo after install without container interfaces: %v", got)
	}
	if addrs := cfg.LandingAddrs(); len(addrs) != 0 {
		t.Errorf("LandingAddrs() = %v", addrs)
	}
}

// Remove deletes the landing addresses an install made with another
// configuration (they carry imdsguard's mark), and nothing else on lo: not
// an address an admin put there, even the one the configuration names.
func TestRemoveLandingExactly(t *testing.T) {
	old := DefaultConfig()
	old.LandingIPv4, old.LandingIPv6 = "169.254.77.1", "fdab:cdef:1234::1"
	h := newFakeHost(t, "nft", old)
	admin := []loAddr{
		{Prefix: netip.MustParsePrefix("169.254.254.169/32"), HostScope: true}, // same address, no label
		{Prefix: netip.MustParsePrefix("fd12::1/128")},                         // a ULA, not deprecated
		{Prefix: netip.MustParsePrefix("10.9.9.9/32"), Label: "lo:vip"},
	}
	h.lo.addrs = slices.Clone(admin)
	must(t, h.r.Install(context.Background()))
	if n := len(h.lo.snapshot()); n != len(admin)+2 {
		t.Fatalf("lo after install: %v", h.lo.snapshot())
	}
	must(t, h.rules(DefaultConfig(), 8989).Remove(context.Background()))
	if got := h.lo.snapshot(); !slices.Equal(got, admin) {
		t.Errorf("lo after remove: %v, want the admin's addresses only: %v", got, admin)
	}
}

// An address an admin already put on lo counts as the landing address:
// Install adds nothing, Status sees it, Remove leaves it.
func TestLandingAlreadyThere(t *testing.T) {
	h := newFakeHost(t, "nft", DefaultConfig())
	theirs := loAddr{Prefix: netip.MustParsePrefix("169.254.254.169/32")}
	h.lo.addrs = []loAddr{theirs}
	must(t, h.r.Install(context.Background()))
	st, err := h.r.Status(context.Background())
	must(t, err)
	if !st.OK() {
		t.Errorf("status:\n%s", st)
	}
	must(t, h.r.Remove(context.Background()))
	if got := h.lo.snapshot(); !slices.Equal(got, []loAddr{theirs}) {
		t.Errorf("lo after remove: %v", got)
	}
}

func TestKeepRestoresLanding(t *testing.T) {
	h := newFakeHost(t, "nft", DefaultConfig())
	stop := runKeep(t, h.r)
	waitFor(t, 2*time.Second, "initial install", func() bool { st, _ := h.r.Status(context.Background()); return st.OK() })
	if !h.lo.del(DefaultLandingIPv6) {
		t.Fatal("no landing address to delete")
	}
	st, err := h.r.Status(context.Background())
	must(t, err)
	if missing := st.Missing(); len(missing) != 1 || missing[0].Chain != "lo" || missing[0].Family != "ipv6" {
		t.Errorf("status after the address was deleted:\n%s", st)
	}
	took := waitFor(t, 2*time.Second, "restore", func() bool { return h.r.Restores() == 1 })
	t.Logf("restored after %s", took)
	must(t, stop())
	if !hasAddr(h.lo.snapshot(), DefaultLandingIPv6) {
		t.Errorf("landing address not restored: %v", h.lo.snapshot())
	}
	if !strings.Contains(h.log.String(), `fixed="[lo address fd69:6d64:7367::254/128]"`) {
		t.Errorf("restore not logged:\n%s", h.log)
	}
}

// Conntrack entries of direct metadata flows are dropped whenever an
// install or a restore had to put something in, and only then.
func TestDropDirectFlows(t *testing.T) {
	h := newFakeHost(t, "nft", DefaultConfig())
	must(t, h.r.Install(context.Background()))
	if got := h.flushed(); !slices.Equal(got, []string{"ipv4", "ipv6"}) {
		t.Errorf("after the first install: flushed %v", got)
	}
	must(t, h.r.Install(context.Background()))
	h.r.check()
	if got := h.flushed(); len(got) != 2 {
		t.Errorf("an install and a check with nothing to do flushed again: %v", got)
	}
	h.v6.flush("nat")
	h.r.check()
	if got := h.flushed(); !slices.Equal(got, []string{"ipv4", "ipv6", "ipv6"}) {
		t.Errorf("after a restore of ipv6: flushed %v", got)
	}
}

func TestLandingAddrs(t *testing.T) {
	cfg := DefaultConfig()
	if got := cfg.LandingAddrs(); !slices.Equal(got, []netip.Addr{DefaultLandingIPv4, DefaultLandingIPv6}) {
		t.Errorf("LandingAddrs() = %v", got)
	}
	cfg.IPv4, cfg.LandingIPv6 = false, "fdab::9"
	if got := cfg.LandingAddrs(); !slices.Equal(got, []netip.Addr{netip.MustParseAddr("fdab::9")}) {
		t.Errorf("LandingAddrs() with IPv6 only = %v", got)
	}
}

// With IPv6 off on lo (no ::1) there is no IPv6 landing address to add:
// Install does not fail, and Status says why there is none.
func TestLandingIPv6Off(t *testing.T) {
	h := newFakeHost(t, "nft", DefaultConfig())
	h.lo.addrs = []loAddr{loopback[0]}
	must(t, h.r.Install(context.Background()))
	if got := h.lo.snapshot(); !slices.Equal(got, []loAddr{loopback[0], landing4}) {
		t.Errorf("lo: %v", got)
	}
	st, err := h.r.Status(context.Background())
	must(t, err)
	if !st.OK() || !strings.Contains(st.String(), "IPv6 is off on lo") {
		t.Errorf("status:\n%s", st)
	}
}
