package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/internal/netnstest"
	"github.com/imdsguard/imdsguard/tools/testbed"
)

// ctrImage is the client image's name in containerd.
const ctrImage = "docker.io/library/imdsguard-client:test"

// containerID is a fresh 64-hex id, the form Docker and the CRI give
// containers (and the form imdsguard's identity takes from a cgroup path).
func containerID(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// ctrPod is a containerd container in a network namespace of its own that
// the CNI bridge plugin wired to the host namespace (as a kubelet's CRI
// would), running sleep.
type ctrPod struct {
	id  string
	att testbed.CNIAttachment
	n   int // exec ids handed out
}

// startPod makes the pod's network namespace, runs the bridge plugin for
// it and starts the container there.
func startPod(t *testing.T, e *testbed.Env, h *testbed.Host, c *testbed.Containerd, id string) *ctrPod {
	t.Helper()
	ns := netnstest.New(t, "pod")
	start := time.Now()
	p := &ctrPod{id: id, att: e.CNIAdd(h.HostNS, ns, id)}
	wired := time.Since(start)
	c.RunDetached(ctrImage, id, p.att.NetNS, "/bin/sleep", "3600")
	pid := c.TaskPid(id)
	cg, err := os.ReadFile("/proc/" + pid + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pod %s: %s, %s on host veth %s (CNI ADD %v); container started in %v; /proc/%s/cgroup:\n%s",
		id, p.att.IPv4, p.att.IPv6, p.att.HostVeth, wired.Round(time.Millisecond), (time.Since(start) - wired).Round(time.Millisecond), pid, cg)
	return p
}

// exec runs argv in the pod's container.
func (p *ctrPod) exec(c *testbed.Containerd) func(argv ...string) testbed.Cmd {
	return func(argv ...string) testbed.Cmd {
		p.n++
		return c.Exec(p.id, fmt.Sprintf("e%d", p.n), argv...)
	}
}

// TestRuntimeContainerd: a container of a real containerd (Debian's
// containerd 1.6, standalone in the test host namespace with its own
// config, root, state and socket; image made offline and loaded with `ctr
// image import`), started with `ctr run --with-ns network:...` in a network
// namespace the CNI bridge plugin wired to cni0, is served through
// imdsguard over IPv4 and IPv6: the v1 SDK upgraded, the v2 SDK's token
// session, iam/ denied, each event naming the container id from its cgroup
// (/imdsguard-test/ID). A container whose id is a name rather than 64 hex
// digits is still served as a container, but has no container id.
func TestRuntimeContainerd(t *testing.T) {
	e := testbed.New(t)
	e.RequireBins("aemm", "imdsguard", "imdsclient-static")
	h := e.NewHost(testbed.HostOptions{})
	g := h.StartGuard(testbed.HostGuardConfig{})
	h.RouteBack(t, testbed.CNISubnetV4, testbed.CNISubnetV6)
	past := forwardCounter(t, h)
	start := time.Now()
	c := e.StartContainerd(h.HostNS)
	up := time.Since(start)
	c.Import(e.OCIArchive(e.ClientImage(), ctrImage, []string{"/bin/sh"}))
	t.Logf("containerd answering after %v; client image imported after %v", up.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))

	pod := startPod(t, e, h, c, containerID(t))
	t.Run("ipv4", func(t *testing.T) {
		who := containerCaller(pod.id, pod.att.IPv4.String(), testbed.CNIBridge)
		runRuntimeCases(t, e, g, who, v1v2Denied(pod.exec(c), ""))
	})
	t.Run("ipv6", func(t *testing.T) {
		who := containerCaller(pod.id, pod.att.IPv6.String(), testbed.CNIBridge)
		runRuntimeCases(t, e, g, who, v1v2Denied(pod.exec(c), testbed.IMDSURL(6)))
	})
	t.Run("named-container", func(t *testing.T) {
		named := startPod(t, e, h, c, "web-1")
		who := containerCaller("", named.att.IPv4.String(), testbed.CNIBridge)
		runRuntimeCases(t, e, g, who, v1v2Denied(named.exec(c), "")[:1])
	})
	t.Run("beside-dockerd", func(t *testing.T) { besideDockerd(t, e, h, g, c, pod) })
	onlyGuardReachedIMDS(t, h, past)
}

// besideDockerd starts a dockerd in the same host namespace, as on a node
// with both: dockerd's own containerd (the same Debian binary, under
// dockerd's exec root, namespace moby) and the standalone one do not meet,
// dockerd's FORWARD policy DROP changes nothing for the pod (its metadata
// traffic is redirected before routing), and both runtimes' containers
// are served.
func besideDockerd(t *testing.T, e *testbed.Env, h *testbed.Host, g *testbed.Guard, c *testbed.Containerd, pod *ctrPod) {
	d := e.StartDockerd(h.HostNS)
	d.Import(e.ClientImage(), clientImage)
	id := d.RunDetached(clientImage, "sleep", "3600")
	ip := d.MustDocker("inspect", "-f", "{{.NetworkSettings.IPAddress}}", id)
	dockerExec := func(argv ...string) testbed.Cmd { return d.Exec(id, argv...) }
	runRuntimeCases(t, e, g, containerCaller(id, ip, "docker0"), v1v2Denied(dockerExec, "")[:1])
	runRuntimeCases(t, e, g, containerCaller(pod.id, pod.att.IPv4.String(), testbed.CNIBridge), v1v2Denied(pod.exec(c), "")[:1])
	mine := strings.Fields(c.MustCtr("namespaces", "list", "-q"))
	theirs := e.Run(testbed.Cmd{Name: "ctr (dockerd's containerd)", Path: testbed.CtrPath,
		Args: []string{"--address", filepath.Join(d.ExecRoot, "containerd", "containerd.sock"), "namespaces", "list", "-q"}})
	if theirs.Err != nil {
		t.Fatalf("%v", theirs)
	}
	if !slices.Equal(mine, []string{testbed.CtrNamespace}) || !slices.Equal(strings.Fields(theirs.Stdout), []string{"moby"}) {
		t.Errorf("containerd namespaces: standalone %v, dockerd's %q; want [%s] and [moby]", mine, theirs.Stdout, testbed.CtrNamespace)
	}
	t.Logf("two containerds in one network namespace: standalone at %s (namespaces %v), dockerd's under %s (namespace moby)", c.Sock, mine, d.ExecRoot)
}
