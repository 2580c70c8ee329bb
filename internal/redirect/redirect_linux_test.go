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
// ext0, c3 behind a bridge (br0, with an address; c3's veth is a port of
// it), and two pods behind address-less veths: one wired as the AWS VPC CNI
// does (eni-vpc), one as Calico does (cali-pod).
type hostLayout struct {
	imds, host, c1, c2, c3 string
	vpc, cal               netnstest.Pod
}

// The pods' addresses (a /32 and a /128 each).
var (
	vpcV4 = netip.MustParseAddr("203.0.113.100")
	vpcV6 = netip.MustParseAddr("2001:db8:5::100")
	calV4 = netip.MustParseAddr("203.0.113.101")
	calV6 = netip.MustParseAddr("2001:db8:5::101")
)

func newHostLayout(t *testing.T) hostLayout {
	l := hostLayout{
		imds: netnstest.New(t, "rg-imds"),
		host: netnstest.New(t, "rg-host"),
		c1:   netnstest.New(t, "rg-c1"),
		c2:   netnstest.New(t, "rg-c2"),
		c3:   netnstest.New(t, "rg-c3"),
	}
	netnstest.Veth(t, l.host, "up0", "192.0.2.1/24", l.imds, "eth0", "192.0.2.2/24")
	netnstest.Veth(t, l.host, "veth-c1", "198.51.100.1/24", l.c1, "eth0", "198.51.100.2/24")
	netnstest.Veth(t, l.host, "ext0", "203.0.113.1/24", l.c2, "eth0", "203.0.113.2/24")
	netnstest.IP(t, l.host, "link", "add", "br0", "type", "bridge")
	netnstest.IP(t, l.host, "link", "set", "br0", "up")
	netnstest.Veth(t, l.host, "veth-br", "", l.c3, "eth0", "203.0.113.130/26")
	netnstest.IP(t, l.host, "link", "set", "veth-br", "master", "br0")
	netnstest.IP(t, l.host, "addr", "add", "203.0.113.129/26", "dev", "br0")
	for _, a := range []struct{ ns, dev, addr string }{
		{l.host, "up0", "2001:db8:1::1/64"}, {l.imds, "eth0", "2001:db8:1::2/64"},
		{l.host, "veth-c1", "2001:db8:2::1/64"}, {l.c1, "eth0", "2001:db8:2::2/64"},
		{l.host, "ext0", "2001:db8:3::1/64"}, {l.c2, "eth0", "2001:db8:3::2/64"},
		{l.host, "br0", "2001:db8:4::1/64"}, {l.c3, "eth0", "2001:db8:4::2/64"},
	} {
		netnstest.IP(t, a.ns, "-6", "addr", "add", a.addr, "dev", a.dev, "nodad")
		waitLocal6(t, a.ns, strings.TrimSuffix(a.addr, "/64"))
	}
	netnstest.IP(t, l.host, "route", "add", "169.254.169.254/32", "via", "192.0.2.2")
	netnstest.IP(t, l.host, "-6", "route", "add", "fd00:ec2::254/128", "via", "2001:db8:1::2")
	// A node has a default route (Calico's proxy ARP for 169.254.1.1 needs one).
	netnstest.IP(t, l.host, "route", "add", "default", "via", "192.0.2.2")
	netnstest.IP(t, l.host, "-6", "route", "add", "default", "via", "2001:db8:1::2")
	netnstest.IP(t, l.imds, "route", "add", "default", "via", "192.0.2.1")
	netnstest.IP(t, l.imds, "-6", "route", "add", "default", "via", "2001:db8:1::1")
	for c, gw := range map[string][2]string{l.c1: {"198.51.100.1", "2001:db8:2::1"}, l.c2: {"203.0.113.1", "2001:db8:3::1"}, l.c3: {"203.0.113.129", "2001:db8:4::1"}} {
		netnstest.IP(t, c, "route", "add", "default", "via", gw[0])
		netnstest.IP(t, c, "-6", "route", "add", "default", "via", gw[1])
	}
	sysctl(t, l.host, "net.ipv4.ip_forward", "1")
	sysctl(t, l.host, "net.ipv6.conf.all.forwarding", "1")
	l.vpc = netnstest.AddPod(t, l.host, "rg-vpc", netnstest.VPCCNI, "eni-vpc", vpcV4, vpcV6)
	l.cal = netnstest.AddPod(t, l.host, "rg-cal", netnstest.Calico, "cali-pod", calV4, calV6)
	// Link-local addresses go through DAD even when the global ones skip it;
	// until they are done, neighbour discovery on a link can fail.
	for _, ns := range []string{l.imds, l.host, l.c1, l.c2, l.c3} {
		waitFor(t, 5*time.Second, "no tentative address in "+ns, func() bool {
			out, err := exec.Command("ip", "-n", ns, "-6", "addr", "show", "tentative").Output()
			return err == nil && strings.TrimSpace(string(out)) == ""
		})
	}
	return l
}

// callers are the container namespaces of l with the host interface their
// traffic arrives on and their addresses.
func (l hostLayout) callers() []caller {
	return []caller{
		{"c1", l.c1, "veth-c1", "198.51.100.2", "2001:db8:2::2"},
		{"c2", l.c2, "ext0", "203.0.113.2", "2001:db8:3::2"},
		{"c3 (bridge port)", l.c3, "br0", "203.0.113.130", "2001:db8:4::2"},
		{"vpc-cni pod", l.vpc.NS, l.vpc.HostIf, vpcV4.String(), vpcV6.String()},
		{"calico pod", l.cal.NS, l.cal.HostIf, calV4.String(), calV6.String()},
	}
}

type caller struct {
	name, ns, hostIf, v4, v6 string
}

// Containers with the default configuration (every interface but lo): from
// an interface with an address, from a bridge port, from address-less pod
// veths of both CNI shapes, IPv4 and IPv6, each lands on the landing
// address and its interface is named; the proxy port is closed to the
// network; without the landing address, redirected traffic is refused,
// never routed; with the daemon dead, refused and never IMDS.
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
			for _, c := range l.callers() {
				wantBody(t, c.ns, imds4, 0, "imds ")
				wantBody(t, c.ns, imds6, 0, "imds ")
			}
			wantBody(t, l.imds, "192.0.2.1"+port, 0, "proxy ")

			r := newRulesIn(t, l.host, Options{Config: DefaultConfig(), Port: testPort, Backend: backend, Log: testLog(t, &syncBuffer{})})
			in(t, l.host, func() error { return r.Install(context.Background()) })

			wantBody(t, l.host, imds4, 0, "proxy 127.0.0.1"+port)
			wantBody(t, l.host, imds4, Mark, "imds ")
			wantBody(t, l.host, imds6, Mark, "imds ")
			before := imds.hits.Load()
			for _, c := range l.callers() {
				t.Run(c.name, func(t *testing.T) {
					wantBody(t, c.ns, imds4, 0, "proxy 169.254.254.169"+port)
					wantBody(t, c.ns, imds6, 0, "proxy [fd69:6d64:7367::254]"+port)
					checkInterfaceFor(t, l.host, r, c.hostIf, c.v4, c.v6)
				})
			}
			wantSilence(t, l.imds, "192.0.2.1"+port) // the proxy port is closed to the network
			wantSilence(t, l.imds, "[2001:db8:1::1]"+port)
			wantSilence(t, l.c1, "198.51.100.1"+port)        // directly, not redirected: dropped too
			wantSilence(t, l.vpc.NS, "169.254.254.169"+port) // the landing address, directly
			wantSilence(t, l.cal.NS, "[fd69:6d64:7367::254]"+port)
			if got := imds.hits.Load() - before; got != 0 {
				t.Errorf("IMDS got %d requests it must not get", got)
			}
			checkConntrackRuleUsed(t, l.host, backend)

			// The landing address deleted from outside (until Keep puts it
			// back): redirected traffic would follow the default route; it
			// is refused instead.
			netnstest.IP(t, l.host, "addr", "del", "169.254.254.169/32", "dev", "lo")
			netnstest.IP(t, l.host, "-6", "addr", "del", "fd69:6d64:7367::254/128", "dev", "lo")
			wantRefused(t, l.vpc.NS, imds4)
			wantRefused(t, l.c1, imds6)
			if got := imds.hits.Load() - before; got != 0 {
				t.Errorf("IMDS got %d requests without the landing addresses", got)
			}
			in(t, l.host, func() error { return r.Install(context.Background()) })
			wantBody(t, l.vpc.NS, imds4, 0, "proxy 169.254.254.169"+port)

			proxy.stop() // the daemon dies, the rules stay
			before = imds.hits.Load()
			for _, ns := range []string{l.host, l.c1, l.vpc.NS, l.cal.NS} {
				wantRefused(t, ns, imds4)
				wantRefused(t, ns, imds6)
			}
			if got := imds.hits.Load() - before; got != 0 {
				t.Errorf("IMDS got %d requests with the proxy down", got)
			}
		})
	}
}

// container_interfaces narrows the redirect: c1 (veth+) is served; c2
// (ext0) and c3 are refused by the FORWARD backstop. c3's veth, veth-br,
// matches veth+ but is a bridge port: its traffic enters the IP stack on
// br0, which no pattern names, so -i veth+ never sees it.
func TestRealRedirectNarrowed(t *testing.T) {
	requireBackend(t, "nft")
	l := newHostLayout(t)
	imds := imdsOnLo(t, l.imds)
	proxyOn(t, l.host)
	cfg := DefaultConfig()
	cfg.ContainerInterfaces = []string{"veth+"}
	r := newRulesIn(t, l.host, Options{Config: cfg, Port: testPort, Backend: "nft", Log: testLog(t, &syncBuffer{})})
	in(t, l.host, func() error { return r.Install(context.Background()) })
	before := imds.hits.Load()
	wantBody(t, l.c1, imds4, 0, "proxy 169.254.254.169:")
	wantBody(t, l.c1, imds6, 0, "proxy [fd69:6d64:7367::254]:")
	for _, ns := range []string{l.c2, l.c3, l.vpc.NS, l.cal.NS} {
		wantRefused(t, ns, imds4) // IMDSGUARD-FWD
		wantRefused(t, ns, imds6)
	}
	if got := imds.hits.Load() - before; got != 0 {
		t.Errorf("IMDS got %d requests from unlisted interfaces", got)
	}
	in(t, l.host, func() error {
		if got := r.InterfaceFor(netip.MustParseAddr("203.0.113.130")); got != "" {
			t.Errorf("InterfaceFor(c3) = %q: br0 is not listed, and the bridge port is not the ingress", got)
		}
		if got := r.InterfaceFor(netip.MustParseAddr("192.0.2.2")); got != "" {
			t.Errorf("InterfaceFor(192.0.2.2) = %q: up0 is no container interface", got)
		}
		var names []string
		for _, l := range r.Interfaces() {
			names = append(names, l.String())
		}
		t.Logf("Interfaces() with veth+: %v", names)
		return nil
	})
}

// checkInterfaceFor: the route back to a container's address names the
// interface its traffic came in on.
func checkInterfaceFor(t *testing.T, host string, r *Rules, want string, addrs ...string) {
	t.Helper()
	in(t, host, func() error {
		for _, a := range addrs {
			if got := r.InterfaceFor(netip.MustParseAddr(a)); got != want {
				t.Errorf("InterfaceFor(%s) = %q, want %s", a, got, want)
			}
		}
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
