package testbed

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/imdsguard/imdsguard/internal/testenv"
)

// A real single-node Kubernetes cluster on a Host: etcd (Debian's),
// kube-apiserver, kube-controller-manager, kube-scheduler and the kubelet
// (bin/kube/, scripts/build-tools.sh kube) and containerd with its CRI plugin
// (kube_containerd.go), all started as children inside the Host's host
// namespace, which is then the node: its address HostUpV4 is the node's
// InternalIP, the pods' bridge (CNIBridge) and their routes are in it, and
// so are imdsguard and its rules when a test starts them there. Every
// daemon is started with `nsenter --net=`, never `ip netns exec`: that one
// also gives the process a mount namespace of its own, and runc would not
// see the kubelet's volume mounts.
//
// Pods on the bridge reach the Host's metadata addresses the way the other
// runtime tests' containers do: through the node namespace's routes to the
// imds namespace, which routes the pod networks back (no masquerade).

// The cluster's fixed names and networks (documentation and benchmarking
// ranges; they exist only in the test's namespaces).
const (
	KubeNodeName    = "imdsguard-node"
	KubeCgroupRoot  = "/imdsguard-kube" // the kubelet's cgroupRoot
	KubePodCIDRv4   = "198.19.0.0/24"   // gateway .1 on CNIBridge
	KubePodCIDRv6   = "2001:db8:6::/64" // gateway ::1
	KubeServiceCIDR = "198.19.128.0/20" // 4,094 addresses: the kube-proxy tests create thousands of services
	KubeServiceIP   = "198.19.128.1"    // the kubernetes service: in the API server's certificate
)

// EtcdPath is Debian etcd-server's binary.
const EtcdPath = "/usr/bin/etcd"

// kubeBins are the binaries scripts/build-tools.sh kube puts in bin/kube/.
var kubeBins = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kubectl"}

// kubeWait bounds each wait of a cluster's start (API, node, service
// account) and of its drain.
const kubeWait = 90 * time.Second

// ClusterOptions shape a cluster.
type ClusterOptions struct {
	// StaticPods are manifests (file name: YAML) in the kubelet's
	// staticPodPath before it starts; AddStaticPod adds more later.
	StaticPods map[string]string
	// KubeletConfig is more KubeletConfiguration (top-level YAML fields)
	// appended to the harness's (kube_control.go). A field the harness
	// sets too is overridden: the kubelet's strict decoding fails on the
	// duplicate, and its lenient fallback keeps the last value (checked
	// with 1.30's codec; the kubelet logs a warning).
	KubeletConfig string
}

// Cluster is a running single-node cluster. Everything is removed when the
// test ends, also when it fails (the cleanups, last first): diagnostics
// when the test failed; the workloads through the API (drain); the
// controllers and the kubelet; containerd's leftover tasks; containerd;
// the mounts under the kubelet's and containerd's directories; the pod
// network namespaces, log links and CNI cache entries; the cgroups; the
// sysctls put back; the lock released.
type Cluster struct {
	e    *Env
	h    *Host
	opts ClusterOptions

	NS           string // the node's network namespace (the Host's host namespace)
	NodeName     string
	NodeIP       string
	Kubeconfig   string // admin's (system:masters)
	KubeletRoot  string // --root-dir
	StaticPodDir string // staticPodPath

	ContainerdRoot  string
	ContainerdState string
	runcRoot        string
	podLogs         string // podLogsDir
	pki             *kubePKI
	api             *kubeAPI

	etcd, apiserver, containerd, kubelet, controllerManager, scheduler *Proc
	procs                                                              []*Proc
}

// StartCluster starts a cluster whose node is h's host namespace and
// returns once the node is Ready, without taints, and the default
// namespace's ServiceAccount exists. Only one cluster runs on a machine at
// a time (the containerd socket is fixed): a second one waits for the
// first to end.
func (h *Host) StartCluster(o ClusterOptions) *Cluster {
	t := h.e.T
	t.Helper()
	c := newCluster(h, o)
	c.requireDeps()
	start := time.Now()
	c.lock()
	c.saveSysctls()
	c.makeCgroupRoot()
	c.watchPodNetnses()
	c.watchLegacyLogs()
	c.watchCNICache()
	c.watchDevicePlugins()
	c.prepare()
	c.startDaemons()
	c.waitNode()
	c.waitServiceAccount("default")
	t.Logf("cluster: node %s Ready after %v", c.NodeName, time.Since(start).Round(time.Millisecond))
	return c
}

func newCluster(h *Host, o ClusterOptions) *Cluster {
	e := h.e
	short := e.shortDir()
	return &Cluster{
		e: e, h: h, opts: o,
		NS: h.HostNS, NodeName: KubeNodeName, NodeIP: HostUpV4,
		KubeletRoot: e.Path("kube/kubelet"), StaticPodDir: e.Path("kube/manifests"),
		ContainerdRoot: e.Path("kube/containerd"), ContainerdState: filepath.Join(short, "s"),
		runcRoot: filepath.Join(short, "runc"), podLogs: e.Path("kube/pod-logs"),
	}
}

// requireDeps skips (or, under make test, fails) without the binaries.
func (c *Cluster) requireDeps() {
	t := c.e.T
	t.Helper()
	for _, n := range kubeBins {
		if _, err := os.Stat(c.e.Bin("kube/" + n)); err != nil {
			testenv.Skipf(t, "missing bin/kube/%s: scripts/build-tools.sh kube builds it (make test runs it)", n)
		}
	}
	for _, p := range []string{EtcdPath, KubePauseBinary, ContainerdPath, CtrPath, "/usr/sbin/runc", "/usr/bin/nsenter",
		CNIPluginDir + "/bridge", CNIPluginDir + "/host-local", CNIPluginDir + "/loopback", CNIPluginDir + "/portmap"} {
		if _, err := os.Stat(p); err != nil {
			testenv.Skipf(t, "no %s: scripts/install-test-deps.sh installs etcd-server, catatonit, containerd, runc and containernetworking-plugins", p)
		}
	}
}

// prepare writes the pki, kubeconfigs, static pods and the kubelet's
// config, and routes the pod networks back from the imds namespace.
func (c *Cluster) prepare() {
	t := c.e.T
	t.Helper()
	pki, err := newKubePKI(c.e.Path("kube/pki"), c.NodeName, c.NodeIP)
	if err != nil {
		t.Fatalf("cluster: %v", err)
	}
	c.pki = pki
	c.writeKubeconfigs()
	if c.api, err = newKubeAPI(c.NS, pki); err != nil {
		t.Fatalf("cluster: %v", err)
	}
	for _, d := range []string{c.StaticPodDir, c.podLogs, c.KubeletRoot} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("cluster: %v", err)
		}
	}
	for name, y := range c.opts.StaticPods {
		c.AddStaticPod(name, y)
	}
	c.h.RouteBack(t, KubePodCIDRv4, KubePodCIDRv6)
}

// startDaemons starts etcd, containerd and the API server at once, the
// kubelet once containerd answers, the controllers once the API is ready.
// The drain and the diagnostics are registered last: they run first.
func (c *Cluster) startDaemons() {
	t := c.e.T
	t.Helper()
	c.etcd = c.start("etcd", EtcdPath, c.etcdArgs()...)
	c.startContainerd()
	c.apiserver = c.start("kube-apiserver", c.e.Bin("kube/kube-apiserver"), c.apiserverArgs()...)
	c.waitContainerd()
	conf := c.e.WriteFile("kube/kubelet.yaml", c.kubeletConfig())
	t.Cleanup(func() { c.unmount("kubelet", c.KubeletRoot) })
	c.kubelet = c.start("kubelet", c.e.Bin("kube/kubelet"), c.kubeletArgs(conf)...)
	c.waitProc(c.apiserver, "the API server is ready (/readyz)", func() bool { return c.api.ok("/readyz") })
	c.controllerManager = c.start("kube-controller-manager", c.e.Bin("kube/kube-controller-manager"), c.controllerManagerArgs()...)
	c.scheduler = c.start("kube-scheduler", c.e.Bin("kube/kube-scheduler"), c.schedulerArgs()...)
	t.Cleanup(c.drain)
	t.Cleanup(c.diagnose)
}

// start starts a daemon in the node's namespace (nsenter --net), stopped
// when the test ends.
func (c *Cluster) start(name, path string, args ...string) *Proc {
	c.e.T.Helper()
	p := StartProc(c.e.T, ProcSpec{
		Name: name, Path: "/usr/bin/nsenter",
		Args: append([]string{"--net=/run/netns/" + c.NS, path}, args...),
		Env:  []string{"HOME=" + c.e.Path("kube")},
	})
	c.procs = append(c.procs, p)
	return p
}

// waitProc polls cond every 100 ms for kubeWait; it fails the test when p
// exits first or time runs out.
func (c *Cluster) waitProc(p *Proc, what string, cond func() bool) {
	t := c.e.T
	t.Helper()
	deadline := time.Now().Add(kubeWait)
	for !cond() {
		if done, err := p.Exited(); done {
			t.Fatalf("cluster: %s exited while waiting until %s: %v\n%s", p.Name, what, err, p.Logs())
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster: not after %v: %s", kubeWait, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitNode waits until the node is Ready and has no taints (the node
// lifecycle controller removes node.kubernetes.io/not-ready).
func (c *Cluster) waitNode() {
	c.e.T.Helper()
	c.waitProc(c.kubelet, "node "+c.NodeName+" is Ready and untainted", func() bool {
		var n kubeNode
		return c.api.get("/api/v1/nodes/"+c.NodeName, &n) == nil && n.ready() && len(n.Spec.Taints) == 0
	})
}

// waitServiceAccount waits until namespace ns has its default
// ServiceAccount and the kube-root-ca.crt ConfigMap (a pod's API token
// volume needs both).
func (c *Cluster) waitServiceAccount(ns string) {
	c.e.T.Helper()
	c.waitProc(c.controllerManager, "namespace "+ns+" has its default ServiceAccount", func() bool {
		return c.api.ok("/api/v1/namespaces/"+ns+"/serviceaccounts/default") &&
			c.api.ok("/api/v1/namespaces/"+ns+"/configmaps/kube-root-ca.crt")
	})
}

// Namespace creates namespace name (with labels, "key=value") and waits
// until pods can be created in it.
func (c *Cluster) Namespace(name string, labels ...string) {
	c.e.T.Helper()
	c.MustKubectl("create", "namespace", name)
	if len(labels) > 0 {
		c.MustKubectl(append([]string{"label", "namespace", name}, labels...)...)
	}
	c.waitServiceAccount(name)
}

// AddStaticPod writes a static pod manifest into the kubelet's
// staticPodPath (it notices within fileCheckFrequency).
func (c *Cluster) AddStaticPod(name, yaml string) {
	c.e.T.Helper()
	if err := os.WriteFile(filepath.Join(c.StaticPodDir, name), []byte(yaml), 0o644); err != nil {
		c.e.T.Fatalf("cluster: static pod %s: %v", name, err)
	}
}

// unmount detaches what is still mounted at or under dirs once their
// daemon has stopped, and says what it was. The kubelet bind-mounts its
// root directory onto itself (to make it a shared mount) and leaves it so.
func (c *Cluster) unmount(who string, dirs ...string) {
	points, err := unmountWhere(func(p string) bool {
		for _, d := range dirs {
			if p == d || strings.HasPrefix(p, d+"/") {
				return true
			}
		}
		return false
	})
	if err != nil {
		c.e.T.Errorf("cluster: after %s: %v", who, err)
	}
	var left []string
	for _, p := range points {
		if !slices.Contains(dirs, p) {
			left = append(left, p)
		}
	}
	if len(left) > 0 {
		c.e.T.Logf("cluster: %s left %d mounts; unmounted %s", who, len(left), strings.Join(left, ", "))
	}
}
