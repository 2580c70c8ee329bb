package testbed

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// What tests do with a cluster: kubectl as admin (inside the node's
// namespace, where the API server is), and the CRI's view of a pod.

// Kubectl is `kubectl ARGS...` as the cluster's admin, run in the node's
// namespace.
func (c *Cluster) Kubectl(args ...string) Cmd {
	return Cmd{
		Name: "kubectl " + firstArg(args), Path: c.e.Bin("kube/kubectl"),
		Args: append([]string{"--kubeconfig", c.Kubeconfig}, args...), NS: c.NS,
		Env: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + c.e.Path("kube")},
	}
}

// MustKubectl runs kubectl and fails the test on error; it returns stdout.
func (c *Cluster) MustKubectl(args ...string) string {
	c.e.T.Helper()
	r := c.e.Run(c.Kubectl(args...))
	if r.Err != nil {
		c.e.T.Fatalf("%v", r)
	}
	return r.Stdout
}

var applied atomic.Int32

// Apply writes yaml to a file of the test's directory and runs `kubectl
// apply -f` on it; it returns kubectl's output.
func (c *Cluster) Apply(yaml string) string {
	c.e.T.Helper()
	f := c.e.WriteFile(fmt.Sprintf("kube/applied/%03d.yaml", applied.Add(1)), yaml)
	return c.MustKubectl("apply", "-f", f)
}

// Wait is `kubectl wait -n NS OBJECT --for=FOR --timeout=TIMEOUT` (for
// example "condition=Ready", "jsonpath={.status.phase}=Succeeded",
// "delete"); on failure it shows the object described and fails the test.
func (c *Cluster) Wait(ns, object, forCond string, timeout time.Duration) {
	c.e.T.Helper()
	cmd := c.Kubectl("wait", "-n", ns, object, "--for="+forCond, "--timeout="+timeout.String())
	cmd.Timeout = timeout + 10*time.Second
	if r := c.e.Run(cmd); r.Err != nil {
		desc := c.e.Run(c.Kubectl("describe", "-n", ns, object))
		c.e.T.Fatalf("%v\n%s%s", r, desc.Stdout, desc.Stderr)
	}
}

// WaitReady waits for condition Ready of object ("pod/web", "node/NAME",
// "pods -l app=web") in ns.
func (c *Cluster) WaitReady(ns, object string, timeout time.Duration) {
	c.e.T.Helper()
	c.Wait(ns, object, "condition=Ready", timeout)
}

// Logs is `kubectl logs -n NS POD FLAGS...` (e.g. "-c", "init"); it fails
// the test on error.
func (c *Cluster) Logs(ns, pod string, flags ...string) string {
	c.e.T.Helper()
	return c.MustKubectl(append([]string{"logs", "-n", ns, pod}, flags...)...)
}

// Exec is `kubectl exec -n NS POD [-c CONTAINER] -- ARGV...` as a Cmd
// (container "" is the pod's default one): through the API server, the
// kubelet and the CRI's streaming server.
func (c *Cluster) Exec(ns, pod, container string, argv ...string) Cmd {
	args := []string{"exec", "-n", ns, pod}
	if container != "" {
		args = append(args, "-c", container)
	}
	cmd := c.Kubectl(append(append(args, "--"), argv...)...)
	cmd.Name = "kubectl exec " + pod + " " + strings.Join(argv, " ")
	return cmd
}

// KubePod is what a test needs of a pod: the API's view and the CRI's ids.
type KubePod struct {
	Namespace, Name, UID string
	Phase                string
	IPs                  []string // status.podIPs
	HostNetwork          bool
	Labels, Annotations  map[string]string
	Containers           map[string]string // container name (init containers too): CRI container id
	SandboxID            string            // the CRI pod sandbox (Cluster.SandboxID)
}

// podJSON is the part of a Pod read here.
type podJSON struct {
	Metadata struct {
		Namespace   string            `json:"namespace"`
		Name        string            `json:"name"`
		UID         string            `json:"uid"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec struct {
		HostNetwork bool `json:"hostNetwork"`
	} `json:"spec"`
	Status struct {
		Phase  string `json:"phase"`
		PodIPs []struct {
			IP string `json:"ip"`
		} `json:"podIPs"`
		InitContainerStatuses []containerStatusJSON `json:"initContainerStatuses"`
		ContainerStatuses     []containerStatusJSON `json:"containerStatuses"`
	} `json:"status"`
}

type containerStatusJSON struct {
	Name        string `json:"name"`
	ContainerID string `json:"containerID"` // containerd://ID
}

// Pod reads pod name in ns from the API, and its sandbox from containerd.
func (c *Cluster) Pod(ns, name string) KubePod {
	t := c.e.T
	t.Helper()
	var pj podJSON
	if err := json.Unmarshal([]byte(c.MustKubectl("get", "pod", "-n", ns, name, "-o", "json")), &pj); err != nil {
		t.Fatalf("cluster: pod %s/%s: %v", ns, name, err)
	}
	m := pj.Metadata
	p := KubePod{Namespace: m.Namespace, Name: m.Name, UID: m.UID, Phase: pj.Status.Phase,
		HostNetwork: pj.Spec.HostNetwork, Labels: m.Labels, Annotations: m.Annotations,
		Containers: map[string]string{}}
	for _, ip := range pj.Status.PodIPs {
		p.IPs = append(p.IPs, ip.IP)
	}
	for _, cs := range append(pj.Status.InitContainerStatuses, pj.Status.ContainerStatuses...) {
		if _, id, ok := strings.Cut(cs.ContainerID, "://"); ok {
			p.Containers[cs.Name] = id
		}
	}
	p.SandboxID = c.SandboxID(p.UID)
	return p
}

// TaskPid is the pid of the running container id's init process, as
// containerd's task list shows it.
func (c *Cluster) TaskPid(id string) int {
	t := c.e.T
	t.Helper()
	for _, line := range strings.Split(c.MustCtr("tasks", "ls"), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == id {
			pid, err := strconv.Atoi(f[1])
			if err != nil {
				break
			}
			return pid
		}
	}
	t.Fatalf("cluster: no running task %s in containerd", id)
	return 0
}
