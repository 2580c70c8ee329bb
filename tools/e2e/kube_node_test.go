package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/imdsguard/imdsguard/tools/testbed"
)

// kubeNodePods are the workloads of TestKubeNode, in two namespaces: a pod
// on the bridge, a hostNetwork pod, a pod whose init container reads the
// instance id from IMDS (the main container prints it, and the pod
// succeeds), and a second bridge pod in the other namespace. Every one
// carries labels and an annotation, which the kubelet must hand to the CRI.
const kubeNodePods = `apiVersion: v1
kind: Pod
metadata:
  {name: web, namespace: team-a, labels: {app: web, tier: front}, annotations: {imdsguard.test/note: a pod on the bridge}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: main, image: %[1]s, imagePullPolicy: Never, command: [/bin/sleep, "3600"]}
---
apiVersion: v1
kind: Pod
metadata:
  {name: agent, namespace: team-a, labels: {app: agent}, annotations: {imdsguard.test/note: the node's network}}
spec:
  hostNetwork: true
  terminationGracePeriodSeconds: 1
  containers:
  - {name: main, image: %[1]s, imagePullPolicy: Never, command: [/bin/sleep, "3600"]}
---
apiVersion: v1
kind: Pod
metadata:
  {name: batch, namespace: team-b, labels: {app: batch}, annotations: {imdsguard.test/note: an init container}}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  volumes: [{name: shared, emptyDir: {}}]
  initContainers:
  - name: fetch
    image: %[1]s
    imagePullPolicy: Never
    command: [/bin/sh, -c, "/bin/imdsclient -sdk v2 -no-fallback -get instance-id > /shared/id"]
    volumeMounts: [{name: shared, mountPath: /shared}]
  containers:
  - name: main
    image: %[1]s
    imagePullPolicy: Never
    command: [/bin/sh, -c, "echo instance-id $(cat /shared/id)"]
    volumeMounts: [{name: shared, mountPath: /shared}]
---
apiVersion: v1
kind: Pod
metadata:
  {name: api, namespace: team-b, labels: {app: api, tier: back}, annotations: {imdsguard.test/note: the second namespace}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: main, image: %[1]s, imagePullPolicy: Never, command: [/bin/sleep, "3600"]}
`

// kubeNodeCase is one pod of kubeNodePods and how it must run.
type kubeNodeCase struct {
	ns, name    string
	hostNetwork bool
	succeeds    bool // runs to completion (else stays Running)
}

var kubeNodeCases = []kubeNodeCase{
	{ns: "team-a", name: "web"},
	{ns: "team-a", name: "agent", hostNetwork: true},
	{ns: "team-b", name: "batch", succeeds: true},
	{ns: "team-b", name: "api"},
}

// TestKubeNode: a real single-node cluster (etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, kubelet 1.30 on containerd 1.6's
// CRI, testbed.StartCluster) in a Host's host namespace schedules real
// pods from the offline client image: on the bridge, on the node's
// network, with an init container, in two namespaces. Through the CRI
// (containerd's gRPC at /run/containerd/containerd.sock, what a node agent
// asks) each pod's sandbox carries the kubelet's labels (namespace, name,
// uid), the pod's labels and its annotations, and each running container's
// cgroup is its id under the kubelet's cgroup root. A bridge pod, an init
// container and the hostNetwork pod reach the Host's metadata service
// the way other runtime tests' containers do (the node routes, no NAT).
// No imdsguard runs here.
func TestKubeNode(t *testing.T) {
	start := time.Now()
	e := testbed.New(t)
	e.RequireBins("aemm", "imdsclient-static")
	h := e.NewHost(testbed.HostOptions{})
	c := h.StartCluster(testbed.ClusterOptions{})
	up := time.Since(start)
	c.ImportImage(e.OCIArchive(e.ClientImage(), ctrImage, []string{"/bin/sh"}))
	c.Namespace("team-a", "team=a")
	c.Namespace("team-b", "team=b")
	startKubeNodePods(c)
	t.Logf("cluster up in %v; pods running after %v", up.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	rs := criClient(t)
	for _, k := range kubeNodeCases {
		t.Run(k.ns+"/"+k.name, func(t *testing.T) { checkKubePod(t, c, rs, k) })
	}
	t.Run("imds-from-pods", func(t *testing.T) { kubePodsReachIMDS(t, e, c) })
	t.Logf("TestKubeNode body: %v", time.Since(start).Round(time.Millisecond))
}

// startKubeNodePods applies kubeNodePods and waits until each runs (or,
// for batch, has succeeded).
func startKubeNodePods(c *testbed.Cluster) {
	c.Apply(fmt.Sprintf(kubeNodePods, ctrImage))
	for _, k := range kubeNodeCases {
		if k.succeeds {
			c.Wait(k.ns, "pod/"+k.name, "jsonpath={.status.phase}=Succeeded", time.Minute)
		} else {
			c.WaitReady(k.ns, "pod/"+k.name, time.Minute)
		}
	}
}

// criClient connects to the cluster's CRI, as a node agent would.
func criClient(t *testing.T) runtimeapi.RuntimeServiceClient {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+testbed.KubeContainerdSock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return runtimeapi.NewRuntimeServiceClient(conn)
}

// checkKubePod compares the CRI's view of a pod with the API's.
func checkKubePod(t *testing.T, c *testbed.Cluster, rs runtimeapi.RuntimeServiceClient, k kubeNodeCase) {
	p := c.Pod(k.ns, k.name)
	if len(p.Labels) == 0 || len(p.Annotations) == 0 || len(p.Containers) == 0 {
		t.Fatalf("pod %s/%s: labels %v, annotations %v, containers %v: want some of each", k.ns, k.name, p.Labels, p.Annotations, p.Containers)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := rs.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: p.SandboxID})
	if err != nil {
		t.Fatalf("PodSandboxStatus %s: %v", p.SandboxID, err)
	}
	s := st.GetStatus()
	checkSandboxIdentity(t, p, s)
	checkSandboxNetwork(t, p, s, k.hostNetwork)
	for name, id := range p.Containers {
		checkKubeContainer(t, c, rs, p, name, id)
	}
	t.Logf("phase %s, ips %v, sandbox %.12s, containers %v; sandbox labels %v, annotations %v",
		p.Phase, p.IPs, p.SandboxID, p.Containers, s.GetLabels(), s.GetAnnotations())
}

// checkSandboxIdentity: the sandbox's metadata and the kubelet's labels
// name the pod; the pod's labels and annotations are all there.
func checkSandboxIdentity(t *testing.T, p testbed.KubePod, s *runtimeapi.PodSandboxStatus) {
	t.Helper()
	m := s.GetMetadata()
	if m.GetNamespace() != p.Namespace || m.GetName() != p.Name || m.GetUid() != p.UID {
		t.Errorf("sandbox metadata %s/%s uid %s; want %s/%s uid %s", m.GetNamespace(), m.GetName(), m.GetUid(), p.Namespace, p.Name, p.UID)
	}
	want := map[string]string{
		"io.kubernetes.pod.namespace": p.Namespace, "io.kubernetes.pod.name": p.Name, "io.kubernetes.pod.uid": p.UID,
	}
	for k, v := range p.Labels {
		want[k] = v
	}
	for k, v := range want {
		if got := s.GetLabels()[k]; got != v {
			t.Errorf("sandbox label %s=%q; want %q", k, got, v)
		}
	}
	for k, v := range p.Annotations {
		if got := s.GetAnnotations()[k]; got != v {
			t.Errorf("sandbox annotation %s=%q; want %q", k, got, v)
		}
	}
}

// checkSandboxNetwork: a hostNetwork pod shares the node's network
// namespace and address; another pod has its own, an address of the pod
// network.
func checkSandboxNetwork(t *testing.T, p testbed.KubePod, s *runtimeapi.PodSandboxStatus, hostNetwork bool) {
	t.Helper()
	mode := s.GetLinux().GetNamespaces().GetOptions().GetNetwork()
	if hostNetwork {
		if mode != runtimeapi.NamespaceMode_NODE || len(p.IPs) == 0 || p.IPs[0] != testbed.HostUpV4 {
			t.Errorf("hostNetwork pod: network namespace mode %v, ips %v; want NODE and %s", mode, p.IPs, testbed.HostUpV4)
		}
		return
	}
	if mode != runtimeapi.NamespaceMode_POD {
		t.Errorf("network namespace mode %v; want POD", mode)
	}
	if p.Phase == "Succeeded" {
		return // its sandbox is stopped: no address any more
	}
	ip := s.GetNetwork().GetIp()
	if addr, err := netip.ParseAddr(ip); err != nil || !netip.MustParsePrefix(testbed.KubePodCIDRv4).Contains(addr) || len(p.IPs) == 0 || p.IPs[0] != ip {
		t.Errorf("sandbox ip %q, pod ips %v; want one address of %s, the same", ip, p.IPs, testbed.KubePodCIDRv4)
	}
}

// checkKubeContainer: the container belongs to the sandbox and names its
// pod; a running one's cgroup, in every hierarchy, is
// ROOT/kubepods/besteffort/podUID/ID.
func checkKubeContainer(t *testing.T, c *testbed.Cluster, rs runtimeapi.RuntimeServiceClient, p testbed.KubePod, name, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := rs.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		t.Fatalf("ContainerStatus %s: %v", id, err)
	}
	s := st.GetStatus()
	if s.GetMetadata().GetName() != name || s.GetLabels()["io.kubernetes.pod.uid"] != p.UID || s.GetLabels()["io.kubernetes.container.name"] != name {
		t.Errorf("container %.12s: metadata %v, labels %v; want %s of pod uid %s", id, s.GetMetadata(), s.GetLabels(), name, p.UID)
	}
	if s.GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return
	}
	cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", c.TaskPid(id)))
	if err != nil {
		t.Fatal(err)
	}
	want := testbed.KubeCgroupRoot + "/kubepods/besteffort/pod" + p.UID + "/" + id
	for _, line := range strings.Split(strings.TrimSpace(string(cg)), "\n") {
		if f := strings.SplitN(line, ":", 3); len(f) != 3 || f[2] != want {
			t.Errorf("container %s: /proc/PID/cgroup line %q; want the path %s", name, line, want)
		}
	}
}

// kubePodsReachIMDS: a bridge pod reaches the Host's IMDS (v2 SDK, IPv4 and
// IPv6) from its own address (the node namespace's connection tracking
// shows the pod's address both ways: routed, not masqueraded), the init
// container did, and the hostNetwork pod does through the node's routes.
func kubePodsReachIMDS(t *testing.T, e *testbed.Env, c *testbed.Cluster) {
	web := c.Pod("team-a", "web")
	for _, base := range []string{"", testbed.IMDSURL(6)} {
		for _, pod := range []string{"web", "agent"} {
			r := e.Run(c.Exec("team-a", pod, "", "/bin/imdsclient", "-sdk", "v2", "-no-fallback", "-endpoint", base, "-get", "instance-id"))
			if r.Err != nil || !strings.Contains(r.Stdout, testbed.AEMMInstanceID) {
				t.Errorf("%s, endpoint %q: %v", pod, base, r)
			}
		}
	}
	if got := c.Logs("team-b", "batch", "-c", "main"); !strings.Contains(got, "instance-id "+testbed.AEMMInstanceID) {
		t.Errorf("batch's main container printed %q; want the instance id its init container read", got)
	}
	ct := e.Run(testbed.Cmd{Name: "conntrack", Path: "/usr/sbin/conntrack", NS: c.NS,
		Args: []string{"-L", "-p", "tcp", "-d", testbed.IMDSv4}})
	var seen bool
	for _, line := range strings.Split(ct.Stdout, "\n") {
		seen = seen || strings.Contains(line, "src="+web.IPs[0]+" dst="+testbed.IMDSv4) && strings.Contains(line, "dst="+web.IPs[0]+" ")
	}
	if !seen {
		t.Errorf("no connection from %s to %s without NAT in the node's connection tracking: %v", web.IPs[0], testbed.IMDSv4, ct)
	}
	t.Logf("web %v reached IMDS over IPv4 and IPv6; so did agent (hostNetwork) and batch's init container", web.IPs)
}
