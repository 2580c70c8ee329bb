package netnstest

import (
	"encoding/json"
	"net/netip"
	"os/exec"

	"github.com/imdsguard/imdsguard/internal/testenv"
)

// Shape is how a CNI wires a pod to its host. In both shapes the host side
// of the pod's veth has no address at all (the point: REDIRECT has nothing
// to redirect to there), the pod has a /32 and a /128, and the host routes
// each to the pod through the veth.
type Shape int

const (
	// VPCCNI is the AWS VPC CNI's shape: the pod's eth0 has a route to
	// 169.254.1.1 and a default route via it, and a permanent neighbour
	// entry giving 169.254.1.1 the host veth's MAC; IPv6 the same with
	// fe80::1.
	VPCCNI Shape = iota
	// Calico is Calico's shape: the same routes, but no neighbour entry:
	// the host answers for 169.254.1.1 by proxy ARP on the veth, and for
	// fe80::1 by proxy NDP. (The host needs a route to 169.254.1.1 through
	// another interface, as its default route is on a node.)
	Calico
)

func (s Shape) String() string {
	if s == Calico {
		return "calico"
	}
	return "vpc-cni"
}

// The gateway addresses pods of both shapes route through.
var (
	PodGatewayV4 = netip.MustParseAddr("169.254.1.1")
	PodGatewayV6 = netip.MustParseAddr("fe80::1")
)

// Pod is a pod namespace wired to a host namespace.
type Pod struct {
	NS     string // the pod's network namespace
	HostIf string // the host side of its veth (no address)
	V4, V6 netip.Addr
}

// AddPod makes a pod namespace (named after prefix) and wires it to host in
// shape: a veth hostIf (host) – eth0 (pod), addresses v4/32 and v6/128 on
// eth0, the routes and neighbours of the shape, and the host's routes to
// the pod. Duplicate address detection is off on both ends (CNIs set the
// pod's addresses nodad too), so the pod can talk at once. The namespace
// (and with it the veth) goes when the test ends.
func AddPod(t testenv.TB, host, prefix string, shape Shape, hostIf string, v4, v6 netip.Addr) Pod {
	t.Helper()
	p := Pod{NS: New(t, prefix), HostIf: hostIf, V4: v4, V6: v6}
	IP(t, host, "link", "add", hostIf, "type", "veth", "peer", "name", "eth0", "netns", p.NS)
	sysctls(t, host, "net.ipv6.conf."+hostIf+".accept_dad=0", "net.ipv6.conf."+hostIf+".forwarding=1")
	sysctls(t, p.NS, "net.ipv6.conf.eth0.accept_dad=0")
	if shape == Calico {
		sysctls(t, host,
			"net.ipv4.conf."+hostIf+".proxy_arp=1", "net.ipv4.neigh."+hostIf+".proxy_delay=0",
			"net.ipv6.conf."+hostIf+".proxy_ndp=1", "net.ipv6.neigh."+hostIf+".proxy_delay=0")
		IP(t, host, "-6", "neigh", "add", "proxy", PodGatewayV6.String(), "dev", hostIf)
	}
	IP(t, host, "link", "set", hostIf, "up")
	IP(t, p.NS, "link", "set", "eth0", "up")
	mac := linkMAC(t, host, hostIf)
	IP(t, p.NS, "addr", "add", v4.String()+"/32", "dev", "eth0")
	IP(t, p.NS, "-6", "addr", "add", v6.String()+"/128", "dev", "eth0", "nodad")
	IP(t, p.NS, "route", "add", PodGatewayV4.String(), "dev", "eth0", "scope", "link")
	IP(t, p.NS, "route", "add", "default", "via", PodGatewayV4.String(), "dev", "eth0")
	IP(t, p.NS, "-6", "route", "add", "default", "via", PodGatewayV6.String(), "dev", "eth0")
	if shape == VPCCNI {
		IP(t, p.NS, "neigh", "add", PodGatewayV4.String(), "dev", "eth0", "lladdr", mac, "nud", "permanent")
		IP(t, p.NS, "-6", "neigh", "add", PodGatewayV6.String(), "dev", "eth0", "lladdr", mac, "nud", "permanent")
	}
	IP(t, host, "route", "add", v4.String()+"/32", "dev", hostIf)
	IP(t, host, "-6", "route", "add", v6.String()+"/128", "dev", hostIf)
	return p
}

// sysctls sets sysctls (key=value) inside ns.
func sysctls(t testenv.TB, ns string, kv ...string) {
	t.Helper()
	Run(t, "ip", append([]string{"netns", "exec", ns, "sysctl", "-q", "-w"}, kv...)...)
}

// linkMAC is the MAC address of dev in ns.
func linkMAC(t testenv.TB, ns, dev string) string {
	t.Helper()
	out, err := exec.Command("ip", "-n", ns, "-j", "link", "show", "dev", dev).Output()
	if err != nil {
		t.Fatalf("ip -n %s link show %s: %v", ns, dev, err)
	}
	var links []struct {
		Address string `json:"address"`
	}
	if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
		t.Fatalf("ip -n %s -j link show %s: %v: %s", ns, dev, err, out)
	}
	return links[0].Address
}
