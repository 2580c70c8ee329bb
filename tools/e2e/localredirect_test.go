package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/internal/netnstest"
	"github.com/imdsguard/imdsguard/tools/testbed"
)

// Cilium with eBPF host routing, served through a Local Redirect Policy
// (packaging/kubernetes/cilium-lrp.yaml, docs/containers.md#cilium).
//
// Cilium cannot run here. What these tests model is its socket-level load
// balancing: at a pod's connect() to 169.254.169.254:80 (BPF on the
// cgroup's connect hook), the policy's frontend is rewritten in the pod's
// own socket to the node-local backend, imdsguard's hostNetwork pod, whose
// address is the node's, and listen.local_redirect_port. No packet is ever
// sent to the metadata address and nothing is NATed: the connection
// arrives from the pod's own address at the node's address and that port.
// So the pods here dial the node's address and the port themselves; no
// PREROUTING rule is involved (IMDSGUARD-PRE's counters stay at zero).
// Cilium's pods sit behind address-less lxc… veths, as modelled here.

// lrpPort is listen.local_redirect_port in these tests; the node's
// addresses are the Host's uplink addresses.
const lrpPort = 8990

// lrpInterfaces is redirect.container_interfaces on a Cilium node: the pod
// veths, and cilium_host (the route back to pods without endpoint routes,
// and where pods' packets come in with Cilium's host firewall).
var lrpInterfaces = []string{"lxc+", "cilium_host"}

// nodeAddr is the node's address of IP version v with the local redirect
// port: where Cilium's rewrite sends a pod.
func nodeAddr(v int) string {
	if v == 6 {
		return testbed.HostPort(testbed.HostUpV6, lrpPort)
	}
	return testbed.HostPort(testbed.HostUpV4, lrpPort)
}

// addCiliumPod wires a pod to the host as Cilium does (an address-less
// lxc… veth, a /32 and a /128 routed through it) at address n of the
// test's own range (2001:db8:c1::/64 and 203.0.113.192/27).
func addCiliumPod(t *testing.T, h *testbed.Host, n int) netnstest.Pod {
	t.Helper()
	v4 := netip.AddrFrom4([4]byte{203, 0, 113, byte(192 + n)})
	v6 := netip.MustParseAddr(fmt.Sprintf("2001:db8:c1::%x", 0xc0+n))
	return netnstest.AddPod(t, h.HostNS, "lrp", netnstest.VPCCNI, fmt.Sprintf("lxc%011x", 0xc11100+n), v4, v6)
}

// lrpTTL counts, in a pod, the packets from the local redirect port that
// arrive with TTL (hop limit) 1, and all of them. A container's token
// answer leaves with tokens.hop_limit.container minus the host's hop
// (which IMDS's answer would cross and imdsguard's does not): 2-1 here,
// as for a container redirected through PREROUTING
// (TestTransparentHopLimit).
var lrpTTL = fmt.Sprintf(`set -e
iptables -A INPUT -p tcp --sport %[1]d -m ttl --ttl-eq 1 -m comment --comment e2e-lrp-ttl1
iptables -A INPUT -p tcp --sport %[1]d -m comment --comment e2e-lrp-any
ip6tables -A INPUT -p tcp --sport %[1]d -m hl --hl-eq 1 -m comment --comment e2e-lrp-ttl1
ip6tables -A INPUT -p tcp --sport %[1]d -m comment --comment e2e-lrp-any`, lrpPort)

// TestLocalRedirect: pods that Cilium's Local Redirect Policy sends to the
// node's address and listen.local_redirect_port are served exactly like
// redirected container callers, IPv4 and IPv6: a plain IMDSv1 GET upgraded
// (IMDS requires tokens), an IMDSv2 token answered with the container hop
// limit and bound to the pod (another pod's use of it is refused), a real
// IMDSv2 SDK client; each request audited as a container caller with the
// pod's address and lxc interface, marked local_redirect. No PREROUTING
// rule saw any of it, and IMDS saw only imdsguard. The port answers no one
// else: not the host itself, not the network (the imds side of the
// uplink), not a container behind an interface that is not listed (c1).
func TestLocalRedirect(t *testing.T) {
	e := testbed.New(t)
	e.RequireBins("aemm", "imdsguard", "imdsclient")
	h := e.NewHost(testbed.HostOptions{})
	g := h.StartGuard(testbed.HostGuardConfig{ContainerInterfaces: lrpInterfaces, LocalRedirectPort: lrpPort})
	pods := []netnstest.Pod{addCiliumPod(t, h, 1), addCiliumPod(t, h, 2)}
	for _, p := range pods {
		h.Shell(p.NS, lrpTTL)
	}
	before := len(bothAEMM(h))
	pre := preRouted(t, h)

	var tokens []string
	for _, p := range pods {
		n := len(audits(g))
		for _, v := range []int{4, 6} {
			start := time.Now()
			r, err := testbed.RawRequestIn(p.NS, nodeAddr(v), "GET", instanceIDPath, nil)
			if err != nil || r.Status != 200 || string(r.Body) != testbed.AEMMInstanceID {
				t.Fatalf("%s v%d: IMDSv1 GET at %s: %+v %v", p.HostIf, v, nodeAddr(v), r, err)
			}
			t.Logf("%s (%s) v%d: IMDSv1 GET at %s upgraded and served in %v", p.HostIf, podAddr(p, v), v, nodeAddr(v), time.Since(start).Round(time.Microsecond))

			ttl1, all := filterCounter(t, h, p.NS, fam(v), "e2e-lrp-ttl1"), filterCounter(t, h, p.NS, fam(v), "e2e-lrp-any")
			tok, err := testbed.RawRequestIn(p.NS, nodeAddr(v), "PUT", "/latest/api/token", []string{"X-aws-ec2-metadata-token-ttl-seconds: 60"})
			if err != nil || tok.Status != 200 || len(tok.Body) == 0 {
				t.Fatalf("%s v%d: token PUT: %+v %v", p.HostIf, v, tok, err)
			}
			d1, da := filterCounter(t, h, p.NS, fam(v), "e2e-lrp-ttl1")-ttl1, filterCounter(t, h, p.NS, fam(v), "e2e-lrp-any")-all
			t.Logf("%s v%d: token answer: %d of %d packets arrived with TTL/hop limit 1 (tokens.hop_limit.container 2, less the host's hop)", p.HostIf, v, d1, da)
			if d1 == 0 {
				t.Errorf("%s v%d: no packet of the token answer came with the container hop limit", p.HostIf, v)
			}
			r, err = testbed.RawRequestIn(p.NS, nodeAddr(v), "GET", instanceIDPath, []string{"X-aws-ec2-metadata-token: " + string(tok.Body)})
			if err != nil || r.Status != 200 {
				t.Fatalf("%s v%d: GET with the pod's token: %+v %v", p.HostIf, v, r, err)
			}
			tokens = append(tokens, string(tok.Body))
		}
		sdk := e.Run(testbed.In(p.NS, e.IMDSClient("v2", "http://"+nodeAddr(4), "-no-fallback", "-get", "instance-id")))
		checkClient(t, sdk, true, testbed.AEMMInstanceID)
		checkLRPAudits(t, g, n, p)
	}
	// Tokens are bound to the caller: pod 1's are worthless to pod 2.
	r, err := testbed.RawRequestIn(pods[1].NS, nodeAddr(4), "GET", instanceIDPath, []string{"X-aws-ec2-metadata-token: " + tokens[0]})
	if err != nil || r.Status != 401 {
		t.Errorf("pod 2 with pod 1's token: %+v %v, want 401", r, err)
	}

	if got := preRouted(t, h); got != pre {
		t.Errorf("IMDSGUARD-PRE counted %d new connections: the local redirect path must not need it", got-pre)
	}
	for _, r := range bothAEMM(h)[before:] {
		host, _, _ := net.SplitHostPort(r.Remote)
		if (host != testbed.HostUpV4 && host != testbed.HostUpV6) || !strings.HasPrefix(r.UserAgent, "imdsguard/") {
			t.Errorf("AEMM request %+v: want only imdsguard's, from the host's uplink", r)
		}
	}

	// Nobody else reaches the port: the host itself (lo, or its own
	// address), the network, a container behind an unlisted interface.
	n := len(audits(g))
	for _, c := range []struct{ name, ns, addr string }{
		{"the host, loopback", h.HostNS, testbed.HostPort("127.0.0.1", lrpPort)},
		{"the host, its own address", h.HostNS, nodeAddr(4)},
		{"the network", h.IMDSNS, nodeAddr(4)},
		{"the network over IPv6", h.IMDSNS, nodeAddr(6)},
		{"c1, behind " + testbed.C1If + " (not listed)", h.C1NS, testbed.HostPort(testbed.C1GwV4, lrpPort)},
	} {
		if err := testbed.DialIn(c.ns, c.addr, time.Second); err == nil || !isTimeout(err) {
			t.Errorf("%s to %s: %v, want no answer", c.name, c.addr, err)
		} else {
			t.Logf("%s to %s: no answer (%v)", c.name, c.addr, err)
		}
	}
	if evs := since(g, n); len(evs) != 0 {
		t.Errorf("audit events from callers that were refused: %v", evs)
	}
	st := e.Run(h.Rules(g, "status"))
	if st.Err != nil || !strings.Contains(st.Stdout, "reach the local redirect port") {
		t.Errorf("rules status: %v", st)
	}
	t.Logf("imdsguard rules status:\n%s", st.Stdout)
}

func fam(v int) string {
	if v == 6 {
		return "ipv6"
	}
	return "ipv4"
}

func podAddr(p netnstest.Pod, v int) netip.Addr {
	if v == 6 {
		return p.V6
	}
	return p.V4
}

// checkLRPAudits: every request since event n was the pod's: a container
// caller from one of its addresses on its lxc veth, marked local_redirect.
func checkLRPAudits(t *testing.T, g *testbed.Guard, n int, p netnstest.Pod) {
	t.Helper()
	testbed.WaitFor(t, "the pod's requests audited", func() bool { return len(since(g, n)) >= 8 })
	var raw []map[string]any
	for _, ev := range g.Events() {
		if ev["msg"] == "imds request" {
			raw = append(raw, ev)
		}
	}
	for i, ev := range since(g, n) {
		c, _ := raw[n+i]["caller"].(map[string]any)
		if ev.Class != "container" || (ev.Source != p.V4.String() && ev.Source != p.V6.String()) || ev.Interface != p.HostIf || c["local_redirect"] != true {
			t.Errorf("audit %v (local_redirect %v): want a container caller %s or %s on %s through the local redirect listener", ev, c["local_redirect"], p.V4, p.V6, p.HostIf)
		}
	}
	t.Logf("audit: %d events of %s, e.g. %v", len(since(g, n)), p.HostIf, since(g, n)[0])
}

var chainPktsRE = regexp.MustCompile(`(?m)^\s*(\d+)\s+\d+\s+DNAT`)

// preRouted is how many connections IMDSGUARD-PRE has DNATed, both
// families.
func preRouted(t *testing.T, h *testbed.Host) int {
	t.Helper()
	out := h.Shell(h.HostNS, "iptables -t nat -L IMDSGUARD-PRE -v -x -n; ip6tables -t nat -L IMDSGUARD-PRE -v -x -n")
	n := 0
	for _, m := range chainPktsRE.FindAllStringSubmatch(out, -1) {
		c, _ := strconv.Atoi(m[1])
		n += c
	}
	return n
}

// lrpPolicy names pods by what the runtime says: billing in prod may read
// everything, every other pod (behind Cilium's lxc veths) metadata but not
// the role's credentials.
const lrpPolicy = `policy:
  default: deny
  rules:
    - name: billing
      match: {pods: {namespaces: [prod], labels: {app: billing}}}
      allow: ["/**"]
    - name: pods
      match: {interfaces: ["lxc+"]}
      allow: ["/meta-data/**"]
      deny: ["/meta-data/iam/**"]
`

// TestLocalRedirectWorkloads: through the local redirect listener, the
// policy decides by what the runtime says of a pod, as it does for a
// redirected one. Two pods as containerd's CRI plugin keeps them (a
// sandbox with the pod's labels, an app container with the kubelet's), each
// in a network namespace wired as Cilium wires pods, read the role's name
// at the node's address and the local redirect port (Cilium's rewrite,
// modelled: see above): the pod the pods selector names gets it; the same
// labels in another namespace fall to the rule for other pods, which
// denies it (403).
func TestLocalRedirectWorkloads(t *testing.T) {
	e := testbed.New(t)
	e.RequireBins("aemm", "imdsguard", "imdsclient-static")
	h := e.NewHost(testbed.HostOptions{})
	c := e.StartContainerd(h.HostNS)
	t.Cleanup(c.DeleteEverything)
	c.MustCtrIn(testbed.K8sNamespace, "image", "import", e.OCIArchive(e.ClientImage(), ctrImage, []string{"/bin/sh"}))
	g := h.StartGuard(testbed.HostGuardConfig{ContainerInterfaces: lrpInterfaces, LocalRedirectPort: lrpPort,
		Extra: lrpPolicy + fmt.Sprintf("runtimes: {docker: \"\", containerd: %q, crio: \"\"}\n", c.Sock)})

	billing := map[string]string{"app": "billing"}
	prodID, prod := startLRPPod(t, c, addCiliumPod(t, h, 3), "prod", "billing-5d9c8b7f6-x2x9z", billing)
	devID, dev := startLRPPod(t, c, addCiliumPod(t, h, 4), "dev", "billing-5d9c8b7f6-k4m2q", billing)
	read := "wget -q -O- http://" + nodeAddr(4) + iamPath

	n := auditCount(g)
	out, _ := prod.run(t, read)
	ev := eventsFor(t, g, n, 1)[0]
	if !strings.Contains(out, testbed.AEMMRole) {
		t.Errorf("prod pod: %q, want the role %s", out, testbed.AEMMRole)
	}
	wantWorkload(t, ev, prodID, "app", "billing", 200)
	if workloadField(ev, "pod_namespace") != "prod" || ev.Class != "container" || !strings.HasPrefix(ev.Interface, "lxc") {
		t.Errorf("prod pod event %v: %v", ev, ev.Raw["caller"])
	}
	t.Logf("prod pod: %q; %v", strings.TrimSpace(out), ev)

	n = auditCount(g)
	out, _ = dev.run(t, read)
	ev = eventsFor(t, g, n, 1)[0]
	if strings.Contains(out, testbed.AEMMRole) || !strings.Contains(out, "403") {
		t.Errorf("dev pod: %q, want 403", out)
	}
	wantWorkload(t, ev, devID, "app", "pods", 403)
	t.Logf("dev pod: %q; %v", strings.TrimSpace(out), ev)

	n = auditCount(g)
	out, _ = dev.run(t, "wget -q -O- http://"+nodeAddr(4)+instanceIDPath)
	if ev = eventsFor(t, g, n, 1)[0]; !strings.Contains(out, testbed.AEMMInstanceID) || ev.Rule != "pods" {
		t.Errorf("dev pod, instance id: %q %v", out, ev)
	}
}

// startLRPPod makes a pod as containerd's CRI plugin keeps it, in
// namespace k8s.io, with its app container in the network namespace of p.
func startLRPPod(t *testing.T, c *testbed.Containerd, p netnstest.Pod, ns, pod string, podLabels map[string]string) (string, *podDriver) {
	t.Helper()
	kubelet := map[string]string{"io.kubernetes.pod.namespace": ns, "io.kubernetes.pod.name": pod, "io.kubernetes.pod.uid": containerID(t)[:32]}
	sandbox := map[string]string{"io.cri-containerd.kind": "sandbox"}
	app := map[string]string{"io.cri-containerd.kind": "container", "io.kubernetes.container.name": "app"}
	for k, v := range kubelet {
		sandbox[k], app[k] = v, v
	}
	for k, v := range podLabels {
		sandbox[k] = v
	}
	c.CreateIn(testbed.K8sNamespace, ctrImage, containerID(t), sandbox)
	id := containerID(t)
	c.RunIn(testbed.K8sNamespace, ctrImage, id, "/run/netns/"+p.NS, app, "/bin/sh", "-c", driverLoop)
	var pid string
	for _, line := range strings.Split(c.MustCtrIn(testbed.K8sNamespace, "task", "ls"), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == id {
			pid = f[1]
		}
	}
	t.Logf("pod %s/%s: container %.12s pid %s behind %s (%s)", ns, pod, id, pid, p.HostIf, p.V4)
	return id, &podDriver{root: "/proc/" + pid + "/root"}
}

// TestLocalRedirectHandover: a second imdsguard started beside the first
// (a surge rollout) takes the local redirect listeners over with the
// proxy's, instead of failing to bind the port the first still holds; with
// the first stopped, a pod sent there is served by the second.
func TestLocalRedirectHandover(t *testing.T) {
	e := testbed.New(t)
	e.RequireBins("aemm", "imdsguard")
	h := e.NewHost(testbed.HostOptions{})
	cfg := testbed.HostGuardConfig{ContainerInterfaces: lrpInterfaces, LocalRedirectPort: lrpPort}
	old := h.StartGuard(cfg)
	p := addCiliumPod(t, h, 5)
	read := func(when string) {
		t.Helper()
		for _, v := range []int{4, 6} {
			r, err := testbed.RawRequestIn(p.NS, nodeAddr(v), "GET", instanceIDPath, nil)
			if err != nil || r.Status != 200 || string(r.Body) != testbed.AEMMInstanceID {
				t.Fatalf("%s, v%d: GET at %s: %+v %v", when, v, nodeAddr(v), r, err)
			}
		}
	}
	read("before the handover")
	succ := h.StartGuard(cfg)
	waitLog(t, old, "handed the listeners over", 5*time.Second)
	waitLog(t, succ, "took the listeners over", 5*time.Second)
	if err := old.Stop(); err != nil {
		t.Errorf("the old daemon: %v", err)
	}
	// Taken over: the four proxy listeners (loopback, landing addresses) and
	// the two local redirect ones; none bound anew, none left over.
	if !strings.Contains(succ.Stderr(), `"msg":"took the listeners over"`) || !strings.Contains(succ.Stderr(), `"listeners":6`) ||
		strings.Contains(succ.Stderr(), "an inherited listener this configuration does not use") {
		t.Errorf("the new daemon did not take the six listeners over:\n%s", succ.Stderr())
	}
	n := len(audits(succ))
	read("after the handover, the old daemon stopped")
	testbed.WaitFor(t, "the new daemon's audit events", func() bool { return len(since(succ, n)) >= 2 })
	evs := since(succ, n)
	t.Logf("served by the new daemon (pid %d): %v", succ.Pid(), evs[0])
}
