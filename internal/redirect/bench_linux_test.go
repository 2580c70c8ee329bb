package redirect

import (
	"net/netip"
	"testing"

	"github.com/imdsguard/imdsguard/internal/netnstest"
)

// The cost InterfaceFor adds to each container connection: one netlink
// route lookup on a socket kept open, and (here, without Keep's link
// cache) one link lookup. On this 2-core machine, loaded: ~60 µs of CPU a
// call, ~25 µs of it the route; the wall time follows the load.
//
//	sudo go test -run '^$' -bench InterfaceFor internal/redirect/
func BenchmarkInterfaceFor(b *testing.B) {
	netnstest.RequireRoot(b)
	host := netnstest.New(b, "rg-bench")
	pod := netnstest.AddPod(b, host, "rg-bpod", netnstest.VPCCNI, "eni-bench",
		netip.MustParseAddr("203.0.113.9"), netip.MustParseAddr("2001:db8:5::9"))
	var r *Rules
	if err := netnstest.Do(host, func() (err error) {
		r, err = New(Options{Config: DefaultConfig(), Port: 8989, Backend: "nft"})
		return err
	}); err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	a := pod.V4
	err := netnstest.Do(host, func() error {
		if got := r.InterfaceFor(a); got != "eni-bench" {
			b.Fatalf("InterfaceFor(%s) = %q", a, got)
		}
		b.ResetTimer()
		for b.Loop() {
			r.InterfaceFor(a)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}
