package testbed

import (
	"fmt"
	"net/netip"
	"os/exec"
	"strings"

	"github.com/imdsguard/imdsguard/internal/netnstest"
)

// Pod topologies: pods wired to a Host's host namespace the way the AWS VPC
// CNI and Calico wire them (netnstest.Shape): the host side of the veth
// has no address, the pod a /32 and a /128 routed through 169.254.1.1 and
// fe80::1. Their addresses come from PodNetV4 and PodNetV6; the imds
// namespace routes both back through the host, so that without imdsguard's
// rules a pod reaches IMDS like any routed caller.
var (
	PodNetV4 = netip.MustParsePrefix("203.0.113.64/26")
	PodNetV6 = netip.MustParsePrefix("2001:db8:5::/64")
)

// Pod is a pod of a Host.
type Pod struct {
	netnstest.Pod
	Shape netnstest.Shape
}

// Addr is the pod's address of IP version 4 or 6.
func (p *Pod) Addr(version int) netip.Addr {
	if version == 6 {
		return p.V6
	}
	return p.V4
}

// In returns c set to run in the pod's namespace.
func (p *Pod) In(c Cmd) Cmd { return In(p.NS, c) }

// AddPod wires a new pod to the host namespace in shape. The host side of
// its veth is named as the CNI names it: eni… (VPC CNI), cali… (Calico),
// followed by 11 hex digits. The pod can talk as soon as this returns.
func (h *Host) AddPod(shape netnstest.Shape) *Pod {
	t := h.e.T
	t.Helper()
	h.pods++
	if h.pods > 60 {
		t.Fatal("testbed: more than 60 pods on one Host")
	}
	if h.pods == 1 {
		h.podRoutes()
	}
	prefix := map[netnstest.Shape]string{netnstest.VPCCNI: "eni", netnstest.Calico: "cali"}[shape]
	hostIf := fmt.Sprintf("%s%011x", prefix, 0xa11ce00+h.pods)
	v4 := PodNetV4.Addr().As4()
	v4[3] += byte(h.pods)
	v6 := PodNetV6.Addr().As16()
	v6[15] = byte(h.pods)
	p := &Pod{Shape: shape, Pod: netnstest.AddPod(t, h.HostNS, "pod", shape, hostIf, netip.AddrFrom4(v4), netip.AddrFrom16(v6))}
	return p
}

// podRoutes gives the host a default route (a node has one, and Calico's
// proxy ARP answers for 169.254.1.1 only when the host can route there
// through another interface), and the imds namespace routes back to the
// pod networks.
func (h *Host) podRoutes() {
	t := h.e.T
	for _, r := range []struct{ ns, fam, dst, via string }{
		{h.HostNS, "-4", "default", IMDSLinkV4},
		{h.HostNS, "-6", "default", IMDSLinkV6},
		{h.IMDSNS, "-4", PodNetV4.String(), HostUpV4},
		{h.IMDSNS, "-6", PodNetV6.String(), HostUpV6},
	} {
		if out, err := exec.Command("ip", "-n", r.ns, r.fam, "route", "show", r.dst).Output(); err == nil && strings.TrimSpace(string(out)) != "" {
			continue
		}
		netnstest.IP(t, r.ns, r.fam, "route", "add", r.dst, "via", r.via)
	}
}
