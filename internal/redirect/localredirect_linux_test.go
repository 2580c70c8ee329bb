package redirect

import (
	"context"
	"strconv"
	"testing"
)

// lrpPort is the local redirect listener's port in these tests.
const lrpPort = testPort + 1

// The local redirect port (a wildcard listener, as the daemon opens it) is
// reached, un-NATed, from the pods behind the listed container interfaces,
// at the host's own addresses: what a Cilium Local Redirect Policy's
// socket-level rewrite makes of a pod's connect() to 169.254.169.254:80.
// The network (the imds side of up0), a container behind an interface not
// listed (c1 on veth-c1) and the host itself (lo) get no answer: the
// kernel drops them, whatever listens there.
func TestRealLocalRedirectPort(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			requireBackend(t, backend)
			l := newHostLayout(t)
			p := strconv.Itoa(lrpPort)
			serve(t, l.host, "lrp", "tcp4 0.0.0.0:"+p, "tcp6 [::]:"+p)
			wantBody(t, l.imds, "192.0.2.1:"+p, 0, "lrp ") // without the rules, open to the network

			cfg := DefaultConfig()
			cfg.ContainerInterfaces = []string{"eni-+", "cali-+"}
			r := newRulesIn(t, l.host, Options{Config: cfg, Port: testPort, LocalRedirectPort: lrpPort, Backend: backend, Log: testLog(t, &syncBuffer{})})
			in(t, l.host, func() error { return r.Install(context.Background()) })

			for _, ns := range []string{l.vpc.NS, l.cal.NS} {
				wantBody(t, ns, "192.0.2.1:"+p, 0, "lrp 192.0.2.1:"+p)
				wantBody(t, ns, "[2001:db8:1::1]:"+p, 0, "lrp [2001:db8:1::1]:"+p)
			}
			wantSilence(t, l.imds, "192.0.2.1:"+p)
			wantSilence(t, l.imds, "[2001:db8:1::1]:"+p)
			wantSilence(t, l.c1, "198.51.100.1:"+p)
			wantSilence(t, l.c1, "192.0.2.1:"+p)
			wantSilence(t, l.host, "127.0.0.1:"+p)
			wantSilence(t, l.host, "192.0.2.1:"+p)
			checkInterfaceFor(t, l.host, r, l.vpc.HostIf, vpcV4.String(), vpcV6.String())

			in(t, l.host, func() error {
				st, err := r.Status(context.Background())
				for _, it := range st.Items {
					if it.Chain == ChainIn && !it.Present {
						t.Errorf("status: %+v missing", it)
					}
				}
				return err
			})
			t.Logf("IMDSGUARD-IN:\n%s", counters(t, l.host, "iptables-"+backend, "filter", ChainIn))
		})
	}
}
