package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/internal/netnstest"
	"github.com/imdsguard/imdsguard/tools/testbed"
)

// podSYNs counts, in the imds namespace, connection attempts to port 80
// from the pod networks: with imdsguard's rules in place there must be none.
var podSYNs = fmt.Sprintf(`set -e
iptables -t mangle -A INPUT -p tcp --dport 80 --syn -s %s -m comment --comment e2e-from-pods
ip6tables -t mangle -A INPUT -p tcp --dport 80 --syn -s %s -m comment --comment e2e-from-pods`,
	testbed.PodNetV4, testbed.PodNetV6)

// podBudget is the contract's bound: the SDKs give up on IMDS after 1 s.
const podBudget = time.Second

// TestTransparentPods: pods wired as the AWS VPC CNI and Calico wire them
// (the host side of their veth has no address), started after imdsguard,
// are served with the default configuration, IPv4 and IPv6: the first
// plain IMDSv1 GET within the SDKs' 1 s, a token and a read with it, a real
// IMDSv2 SDK client. imdsguard sees container callers with the pod's
// address and host interface. IMDS (AEMM) sees only the daemon's own
// traffic, never a pod's address; `imdsguard check` counts the pods'
// connections and names their interfaces. Control at the end: without
// imdsguard's rules the same pods reach IMDS directly, so it was the rules
// that kept them away.
func TestTransparentPods(t *testing.T) {
	e := testbed.New(t)
	e.RequireBins("aemm", "imdsguard", "imdsclient")
	h := e.NewHost(testbed.HostOptions{})
	h.Shell(h.IMDSNS, podSYNs)
	g := h.StartGuard(testbed.HostGuardConfig{})
	before := len(bothAEMM(h))
	var pods []*testbed.Pod
	for _, shape := range []netnstest.Shape{netnstest.VPCCNI, netnstest.Calico} {
		p := h.AddPod(shape)
		pods = append(pods, p)
		t.Run(shape.String(), func(t *testing.T) { podServed(t, e, g, p) })
	}
	for _, r := range bothAEMM(h)[before:] {
		host, _, _ := net.SplitHostPort(r.Remote)
		if (host != testbed.HostUpV4 && host != testbed.HostUpV6) || !strings.HasPrefix(r.UserAgent, "imdsguard/") {
			t.Errorf("AEMM request %+v: want only imdsguard's, from the host's uplink", r)
		}
	}
	if n := ruleCounter(t, h, h.IMDSNS, "iptables -t mangle -S INPUT -v; ip6tables -t mangle -S INPUT -v", "e2e-from-pods"); n != 0 {
		t.Errorf("%d connection attempts from pod addresses reached the imds namespace", n)
	}
	t.Logf("AEMM saw %d requests while the pods were served, all imdsguard's from %s / %s; none from a pod address",
		len(bothAEMM(h))-before, testbed.HostUpV4, testbed.HostUpV6)

	r := e.Run(guardCmd(e, h, g, "check"))
	t.Logf("imdsguard check:\n%s", r.Stdout)
	for _, want := range []string{"PASS  container metadata traffic is redirected (PREROUTING)", "container connections redirected since the rules went in",
		pods[0].HostIf + " (veth, address-less)", pods[1].HostIf + " (veth, address-less)", testbed.C1If + " (veth, 198.51.100.1/24"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("check output lacks %q", want)
		}
	}
	st := e.Run(h.Rules(g, "status"))
	t.Logf("imdsguard rules status:\n%s", st.Stdout)
	if st.Err != nil || !strings.Contains(st.Stdout, "lo                     address 169.254.254.169/32") {
		t.Errorf("rules status: %v", st)
	}

	// Control: the rules removed, the pods' metadata traffic goes straight to
	// IMDS (AEMM answers a v1 GET itself: 401) from the pod's address.
	if err := g.Stop(); err != nil {
		t.Fatal(err)
	}
	if r := e.Run(h.Rules(g, "remove")); r.Err != nil {
		t.Fatalf("rules remove: %v", r)
	}
	for _, p := range pods {
		resp, err := rawGet(p.NS, 4)
		if err != nil || resp.Status != 401 || resp.Header.Get("Server") != "" {
			t.Errorf("%s without imdsguard: %+v %v, want AEMM's own 401", p.Shape, resp, err)
		}
	}
	if n := ruleCounter(t, h, h.IMDSNS, "iptables -t mangle -S INPUT -v; ip6tables -t mangle -S INPUT -v", "e2e-from-pods"); n == 0 {
		t.Error("control: without the rules, no pod reached the imds namespace: the topology proves nothing")
	}
}

// podServed: a pod just wired is served at once, both families: a v1 GET
// each (timed from the moment its network was up), then a token and a GET
// with it, an IMDSv2 SDK; every request audited as a container caller with
// one of the pod's addresses and its host interface.
func podServed(t *testing.T, e *testbed.Env, g *testbed.Guard, p *testbed.Pod) {
	n := len(audits(g))
	up := time.Now()
	for _, v := range []int{4, 6} {
		start := time.Now()
		r, err := rawGet(p.NS, v)
		took, after := time.Since(start), time.Since(up)
		if err != nil || r.Status != 200 || string(r.Body) != testbed.AEMMInstanceID {
			t.Fatalf("v%d: first v1 GET from the %s pod: %+v %v", v, p.Shape, r, err)
		}
		t.Logf("%s pod (%s, %s) v%d: first v1 GET served in %v, %v after its network was up",
			p.Shape, p.HostIf, p.Addr(v), v, took.Round(time.Microsecond), after.Round(time.Microsecond))
		if after > podBudget {
			t.Errorf("v%d: served %v after the pod's network was up; the SDKs give up after %v", v, after, podBudget)
		}
	}
	for _, v := range []int{4, 6} {
		tok, err := tokenPUT(p.NS, v)
		if err != nil || tok.Status != 200 || len(tok.Body) == 0 {
			t.Fatalf("v%d: token PUT: %+v %v", v, tok, err)
		}
		r, err := testbed.RawRequestIn(p.NS, testbed.IMDSAddr(v), "GET", instanceIDPath, []string{"X-aws-ec2-metadata-token: " + string(tok.Body)})
		if err != nil || r.Status != 200 {
			t.Fatalf("v%d: GET with the pod's token: %+v %v", v, r, err)
		}
		sdk := e.Run(p.In(e.IMDSClient("v2", testbed.IMDSURL(v), "-no-fallback", "-get", "instance-id")))
		checkClient(t, sdk, true, testbed.AEMMInstanceID)
	}
	// The events are written after the answers, in their own time: wait for
	// both families' (at least the first GET and the token PUT of each).
	seen := map[netip.Addr]int{}
	testbed.WaitFor(t, "the pod's requests audited", func() bool {
		clear(seen)
		for _, ev := range since(g, n) {
			if a, err := netip.ParseAddr(ev.Source); err == nil {
				seen[a]++
			}
		}
		return seen[p.V4] >= 2 && seen[p.V6] >= 2
	})
	for _, ev := range since(g, n) {
		src, _ := netip.ParseAddr(ev.Source)
		if ev.Class != "container" || (src != p.V4 && src != p.V6) || ev.Interface != p.HostIf {
			t.Errorf("audit %v: want a container caller %s or %s on %s", ev, p.V4, p.V6, p.HostIf)
		}
	}
	t.Logf("audit: %d events from %s and %d from %s, e.g. %v", seen[p.V4], p.V4, seen[p.V6], p.V6, since(g, n)[0])
}
