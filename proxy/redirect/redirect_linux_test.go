package redirect

import (
	"context"
	"net/netip"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/internal/netnstest"
)

// Privileged: real traffic through the rules, both backends. The metadata
// addresses exist only on lo of namespaces these tests made.

const testPort = 8989

var (
	imds4 = "169.254.169.254:80"
	imds6 = "[fd00:ec2::254]:80"
)

// imdsOnLo puts both metadata addresses on lo of ns and serves "imds" there.
func imdsOnLo(t *testing.T, ns string) *server {
	netnstest.IP(t, ns, "addr", "add", "169.254.169.254/32", "dev", "lo")
	netnstest.IP(t, ns, "-6", "addr", "add", "fd00:ec2::254/128", "dev", "lo", "nodad")
	waitLocal6(t, ns, "fd00:ec2::254")
	return serve(t, ns, "imds", "tcp4 "+imds4, "tcp6 "+imds6)
}

// waitLocal6 waits for the local route of an IPv6 address of ns. The kernel
// adds it from a work queue, even with nodad: until then connecting to the
// address says "network is unreachable".
func waitLocal6(t *testing.T, ns, addr string) {
	waitFor(t, 2*time.Second, "local route of "+addr, func() bool {
		out, _ := exec.Command("ip", "-n", ns, "-6", "route", "get", addr).Output()
		return strings.HasPrefix(string(out), "local ")
	})
}

// proxyOn serves "proxy" on the proxy port, every address of ns.
func proxyOn(t *testing.T, ns string) *server {
	p := strconv.Itoa(testPort)
	return serve(t, ns, "proxy", "tcp4 0.0.0.0:"+p, "tcp6 [::]:"+p)
}

// One namespace: processes on the host itself (nat OUTPUT).
func TestRealRedirectLocal(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			requireBackend(t, backend)
			ns := netnstest.New(t, "rg-local")
			imds := imdsOnLo(t, ns)
			proxy := proxyOn(t, ns)

			wantBody(t, ns, imds4, 0, "imds ") // no rules yet: straight to "IMDS"
			wantBody(t, ns, imds6, 0, "imds ")

			r := newRulesIn(t, ns, Options{Config: DefaultConfig(), Port: testPort, Backend: backend, Log: testLog(t, &syncBuffer{})})
			in(t, ns, func() error { return r.Install(context.Background()) })

			wantBody(t, ns, imds4, 0, "proxy 127.0.0.1:8989")
			wantBody(t, ns, imds6, 0, "proxy [::1]:8989")
			before := imds.hits.Load()
			wantBody(t, ns, imds4, Mark, "imds 169.254.169.254:80") // the daemon's own socket: no loop
			wantBody(t, ns, imds6, Mark, "imds [fd00:ec2::254]:80")
			if got := imds.hits.Load() - before; got != 2 {
				t.Errorf("IMDS got %d marked requests, want 2", got)
			}
			wantBody(t, ns, imds4, Mark+1, "proxy ") // another mark is redirected

			// Someone flushes nat (a firewall reload, iptables -t nat -F) and
			// nothing has restored it yet: the fence resets local metadata
			// traffic instead of letting it reach IMDS; marked traffic passes.
			ipt(t, ns, "iptables-"+backend, "-t", "nat", "-F")
			ipt(t, ns, "ip6tables-"+backend, "-t", "nat", "-F")
			before = imds.hits.Load()
			wantRefused(t, ns, imds4)
			wantRefused(t, ns, imds6)
			if got := imds.hits.Load() - before; got != 0 {
				t.Errorf("IMDS got %d unmarked requests with nat flushed", got)
			}
			wantBody(t, ns, imds4, Mark, "imds 169.254.169.254:80")
			in(t, ns, func() error { return r.Install(context.Background()) })
			wantBody(t, ns, imds4, 0, "proxy 127.0.0.1:8989")

			// The daemon dies; the rules stay (keep_on_exit): refused, never IMDS.
			proxy.stop()
			before = imds.hits.Load()
			wantRefused(t, ns, imds4)
			wantRefused(t, ns, imds6)
			if got := imds.hits.Load() - before; got != 0 {
				t.Errorf("IMDS got %d requests with the proxy down", got)
			}
		})
	}
}

// hostLayout is TESTBED.md's three namespaces plus c2, a "container" behind
// an interface that is not in the list.
type hostLayout struct {
	imds, host, c1, c2 string
}

func newHostLayout(t *testing.T) hostLayout {
	l := hostLayout{
		imds: netnstest.New(t, "rg-imds"),
		host: netnstest.New(t, "rg-host"),
		c1:   netnstest.New(t, "rg-c1"),
		c2:   netnstest.New(t, "rg-c2"),
	}
	netnstest.Veth(t, l.host, "up0", "192.0.2.1/24", l.imds, "eth0", "192.0.2.2/24")
	netnstest.Veth(t, l.host, "veth-c1", "198.51.100.1/24", l.c1, "eth0", "198.51.100.2/24")
	netnstest.Veth(t, l.host, "ext0", "203.0.113.1/24", l.c2, "eth0", "203.0.113.2/24")
	for _, a := range []struct{ ns, dev, addr string }{
		{l.host, "up0", "2001:db8:1::1/64"}, {l.imds, "eth0", "2001:db8:1::2/64"},
		{l.host, "veth-c1", "2001:db8:2::1/64"}, {l.c1, "eth0", "2001:db8:2::2/64"},
		{l.host, "ext0", "2001:db8:3::1/64"}, {l.c2, "eth0", "2001:db8:3::2/64"},
	} {
		netnstest.IP(t, a.ns, "-6", "addr", "add", a.addr, "dev", a.dev, "nodad")
		waitLocal6(t, a.ns, strings.TrimSuffix(a.addr, "/64"))
	}
	netnstest.IP(t, l.host, "route", "add", "169.254.169.254/32", "via", "192.0.2.2")
	netnstest.IP(t, l.host, "-6", "route", "add", "fd00:ec2::254/128", "via", "2001:db8:1::2")
	netnstest.IP(t, l.imds, "route", "add", "default", "via", "192.0.2.1")
	netnstest.IP(t, l.imds, "-6", "route", "add", "default", "via", "2001:db8:1::1")
	for c, gw := range map[string][2]string{l.c1: {"198.51.100.1", "2001:db8:2::1"}, l.c2: {"203.0.113.1", "2001:db8:3::1"}} {
		netnstest.IP(t, c, "route", "add", "default", "via", gw[0])
		netnstest.IP(t, c, "-6", "route", "add", "default", "via", gw[1])
	}
	sysctl(t, l.host, "net.ipv4.ip_forward", "1")
	sysctl(t, l.host, "net.ipv6.conf.all.forwarding", "1")
	return l
}

// Containers: through PREROUTING from a listed interface, refused by the
// FORWARD backstop from an unlisted one; the proxy port is closed to the
// network; with the daemon dead, refused and never IMDS.
func TestRealRedirectContainers(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			requireBackend(t, backend)
			l := newHostLayout(t)
			imds := imdsOnLo(t, l.imds)
			proxy := proxyOn(t, l.host)
			port := ":" + strconv.Itoa(testPort)

			// Without rules every namespace reaches "IMDS", and the proxy
			// port is open to the network: what the rules must change.
			for _, ns := range []string{l.host, l.c1, l.c2} {
				wantBody(t, ns, imds4, 0, "imds ")
				wantBody(t, ns, imds6, 0, "imds ")
			}
			wantBody(t, l.imds, "192.0.2.1"+port, 0, "proxy ")

			r := newRulesIn(t, l.host, Options{Config: DefaultConfig(), Port: testPort, Backend: backend, Log: testLog(t, &syncBuffer{})})
			in(t, l.host, func() error { return r.Install(context.Background()) })

			wantBody(t, l.host, imds4, 0, "proxy 127.0.0.1"+port)
			wantBody(t, l.host, imds4, Mark, "imds ")
			wantBody(t, l.host, imds6, Mark, "imds ")
			b4 := wantBody(t, l.c1, imds4, 0, "proxy 198.51.100.1"+port) // the ingress interface's address
			b6 := wantBody(t, l.c1, imds6, 0, "proxy [2001:db8:2::1]"+port)
			checkInterfaceFor(t, l.host, r, b4, b6)

			before := imds.hits.Load()
			wantRefused(t, l.c2, imds4) // ext0 is not a container interface: FORWARD backstop
			wantRefused(t, l.c2, imds6)
			wantSilence(t, l.imds, "192.0.2.1"+port) // the proxy port is closed to the network
			wantSilence(t, l.imds, "[2001:db8:1::1]"+port)
			wantSilence(t, l.c1, "198.51.100.1"+port) // directly, not redirected: dropped too
			if got := imds.hits.Load() - before; got != 0 {
				t.Errorf("IMDS got %d requests it must not get", got)
			}
			checkConntrackRuleUsed(t, l.host, backend)

			proxy.stop() // the daemon dies, the rules stay
			before = imds.hits.Load()
			for _, ns := range []string{l.host, l.c1} {
				wantRefused(t, ns, imds4)
				wantRefused(t, ns, imds6)
			}
			if got := imds.hits.Load() - before; got != 0 {
				t.Errorf("IMDS got %d requests with the proxy down", got)
			}
		})
	}
}

// checkInterfaceFor: the address a redirected container connection landed
// on names the container's interface.
func checkInterfaceFor(t *testing.T, host string, r *Rules, bodies ...string) {
	t.Helper()
	in(t, host, func() error {
		for _, b := range bodies {
			ap := netip.MustParseAddrPort(strings.Fields(b)[1])
			if got := r.InterfaceFor(ap.Addr()); got != "veth-c1" {
				t.Errorf("InterfaceFor(%s) = %q, want veth-c1", ap.Addr(), got)
			}
		}
		if got := r.InterfaceFor(netip.MustParseAddr("192.0.2.1")); got != "" {
			t.Errorf("InterfaceFor(192.0.2.1) = %q: up0 is no container interface", got)
		}
		links := r.Interfaces()
		if len(links) != 1 || links[0].Name != "veth-c1" || links[0].Kind != "veth" {
			t.Errorf("Interfaces() = %v, want veth-c1 only", links)
		}
		t.Logf("Interfaces(): %v", links)
		return nil
	})
}

var pktsRE = regexp.MustCompile(`(?m)^\s*(\d+)\s+\d+\s+RETURN.*ctorigdst`)

// checkConntrackRuleUsed proves the conntrack rule (not just lo) let the
// container's redirected flows in: its packet counter moved.
func checkConntrackRuleUsed(t *testing.T, ns, backend string) {
	t.Helper()
	for _, tool := range []string{"iptables-" + backend, "ip6tables-" + backend} {
		out := counters(t, ns, tool, "filter", ChainIn)
		m := pktsRE.FindStringSubmatch(out)
		if m == nil || m[1] == "0" {
			t.Errorf("%s: the conntrack DNAT rule matched nothing:\n%s", tool, out)
			continue
		}
		t.Logf("%s %s:\n%s", tool, ChainIn, out)
	}
}
