package testbed

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// The cluster's containerd: Debian's containerd 1.6 with its CRI plugin on,
// the runtime the kubelet talks to. Unlike the standalone containerd of the
// runtime tests (runtime_containerd.go) it serves its gRPC API at the
// node's well-known path, /run/containerd/containerd.sock, the path the
// shipped DaemonSet mounts from the node; so one cluster at a time runs on
// a machine (Cluster.lock), and a containerd of the machine's own must not be
// running. Root, state and runc's state are in the test's directories; what
// it still shares with the machine: its shims' sockets in
// /run/containerd/s/, pod network namespaces at /var/run/netns/cni-*, and
// libcni's result cache in /var/lib/cni (all removed by the cluster's
// cleanup).

// KubeContainerdSock is the cluster containerd's gRPC socket (CRI and
// containerd API); its ttrpc socket is beside it with ".ttrpc".
const KubeContainerdSock = "/run/containerd/containerd.sock"

// KubeCtrNamespace is the containerd namespace of the CRI plugin: the
// kubelet's sandboxes, containers and images.
const KubeCtrNamespace = "k8s.io"

// KubePauseImage is the sandbox image: catatonit in pause mode, made offline
// (KubePauseBinary) and imported before the kubelet starts.
const (
	KubePauseImage  = "imdsguard.test/pause:catatonit"
	KubePauseBinary = "/usr/bin/catatonit"
)

// KubeCNINetwork is the pod network's name (libcni caches results under
// it). Pods get addresses from KubePodCIDRv4 and KubePodCIDRv6 on the bridge
// CNIBridge in the node's namespace, whose gateways are the first
// addresses; no masquerade: the node routes, and imdsguard's redirect sees
// a pod's own address.
const KubeCNINetwork = "imdsguard-kube"

// kubeCNIConfig is the conflist: bridge with host-local IPAM (state in the
// test's directory) and portmap for hostPort.
const kubeCNIConfig = `{
  "cniVersion": "0.4.0",
  "name": %q,
  "plugins": [
    {
      "type": "bridge",
      "bridge": %q,
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": %q}], [{"subnet": %q}]],
        "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}],
        "dataDir": %q
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`

// kubeContainerdConfig is containerd's config.toml (version 2). The opt
// plugin would install into /opt/containerd and the snapshotters other
// than overlayfs are of no use; apparmor is not in this kernel; runc's
// cgroups are cgroupfs paths (the kubelet's driver), and its state is ours.
//
// restrict_oom_score_adj: root here lacks CAP_SYS_RESOURCE (the machine is
// itself a container), so no process may lower its oom_score_adj. The CRI
// gives every sandbox -998 (and a Guaranteed pod's containers -997); runc
// then fails to start the sandbox with nothing but "can't get final
// child's PID from pipe: EOF" (its nsexec child dies writing
// /proc/self/oom_score_adj). Restricted, containerd raises any score below
// its own to its own, as it does when rootless. (The kubelet's own -999 and
// its RLIMIT_NOFILE fail for the same reason; it logs and goes on.)
const kubeContainerdConfig = `version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = %q
[ttrpc]
  address = %q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  disable_apparmor = true
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = %q
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %q
    conf_dir = %q
    max_conf_num = 1
`

// writeContainerdConfig writes the CNI conflist and containerd's config
// and returns the config's path.
func (c *Cluster) writeContainerdConfig() string {
	e := c.e
	e.WriteFile("kube/cni/10-imdsguard-kube.conflist", fmt.Sprintf(kubeCNIConfig,
		KubeCNINetwork, CNIBridge, KubePodCIDRv4, KubePodCIDRv6, e.Path("kube/cni-ipam")))
	return e.WriteFile("kube/containerd.toml", fmt.Sprintf(kubeContainerdConfig,
		c.ContainerdRoot, c.ContainerdState, KubeContainerdSock, KubeContainerdSock+".ttrpc",
		KubePauseImage, c.runcRoot, CNIPluginDir, e.Path("kube/cni")))
}

// startContainerd starts the CRI containerd in the node's namespace. Its
// socket must be free: a containerd answering there is someone else's.
func (c *Cluster) startContainerd() {
	t := c.e.T
	t.Helper()
	if err := socketFree(KubeContainerdSock); err != nil {
		t.Fatalf("cluster: %v", err)
	}
	conf := c.writeContainerdConfig()
	// Registered before containerd's own cleanup, so it runs after
	// containerd stopped: what a killed shim or task leaves mounted, and
	// the ttrpc socket containerd leaves behind.
	t.Cleanup(func() {
		c.unmount("containerd", c.ContainerdRoot, c.ContainerdState)
		for _, s := range []string{KubeContainerdSock, KubeContainerdSock + ".ttrpc"} {
			if err := os.Remove(s); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("cluster: %v", err)
			}
		}
	})
	c.containerd = c.start("containerd", ContainerdPath, "--config", conf, "--log-level", "warn")
	c.containerd.StopGrace = 10 * time.Second
	t.Cleanup(c.removeTasks)
}

// socketFree fails when something accepts connections on the unix socket
// path; a stale socket file (its server died) is removed.
func socketFree(path string) error {
	conn, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		conn.Close()
		return fmt.Errorf("something already listens on %s (the machine's containerd, or another test's cluster): stop it first", path)
	}
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if rmErr := os.Remove(path); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
		return fmt.Errorf("remove stale socket %s: %w", path, rmErr)
	}
	return nil
}

// waitContainerd waits until containerd answers and imports the pause
// image into the CRI's namespace.
func (c *Cluster) waitContainerd() {
	t := c.e.T
	t.Helper()
	c.waitProc(c.containerd, "containerd answers on "+KubeContainerdSock, func() bool {
		return c.e.Run(c.Ctr("version")).Err == nil
	})
	c.ImportImage(c.pauseImage())
}

// pauseImage is the sandbox image as an OCI archive: catatonit as /pause,
// run as `/pause -P` (pause mode: no child, waits for a signal).
func (c *Cluster) pauseImage() string {
	t := c.e.T
	t.Helper()
	bin, err := os.ReadFile(KubePauseBinary)
	if err != nil {
		t.Fatalf("cluster: pause image: %v", err)
	}
	root := c.e.Path("kube/pause-root.tar")
	if err := writeRootTar(root, []ImageFile{{Path: "/pause", Mode: 0o755, Data: bin}}); err != nil {
		t.Fatalf("cluster: pause image: %v", err)
	}
	return c.e.OCIArchive(root, KubePauseImage, []string{"/pause", "-P"})
}

// Ctr is the ctr CLI for the cluster's containerd, in the CRI's namespace.
func (c *Cluster) Ctr(args ...string) Cmd {
	return Cmd{
		Name: "ctr " + firstArg(args), Path: CtrPath,
		Args: append([]string{"--address", KubeContainerdSock, "--namespace", KubeCtrNamespace}, args...),
		Env:  []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
	}
}

// MustCtr runs ctr and fails the test on error; it returns stdout.
func (c *Cluster) MustCtr(args ...string) string {
	c.e.T.Helper()
	r := c.e.Run(c.Ctr(args...))
	if r.Err != nil {
		c.e.T.Fatalf("%v", r)
	}
	return r.Stdout
}

// ImportImage imports an OCI image layout tar (Env.OCIArchive) into the
// CRI's namespace, where the kubelet finds it: pods name it with
// imagePullPolicy Never or IfNotPresent (no registry is reachable).
func (c *Cluster) ImportImage(ociTar string) {
	c.e.T.Helper()
	c.MustCtr("images", "import", ociTar)
}

// removeTasks kills and deletes every task and container left in the
// CRI's namespace once the kubelet is gone (drain removed the pods through
// the API first; this is for a failed drain), so that no shim outlives the
// test. Leftovers are reported.
func (c *Cluster) removeTasks() {
	t := c.e.T
	if done, _ := c.containerd.Exited(); done {
		return
	}
	tasks := c.ctrIDs("tasks", "ls")
	for _, id := range tasks {
		// Killing a sandbox ends its containers, and the CRI plugin deletes
		// an exited task itself: one already gone is "not found".
		if r := c.e.Run(c.Ctr("tasks", "delete", "--force", id)); r.Err != nil && !strings.Contains(r.Stderr, "not found") {
			t.Errorf("cluster: delete task %s: %v", id, r)
		}
	}
	for _, id := range c.ctrIDs("containers", "ls", "-q") {
		if r := c.e.Run(c.Ctr("containers", "delete", id)); r.Err != nil && !strings.Contains(r.Stderr, "not found") {
			t.Errorf("cluster: delete container %s: %v", id, r)
		}
	}
	if len(tasks) > 0 {
		t.Errorf("cluster: %d tasks were still running after the drain; killed: %s", len(tasks), strings.Join(tasks, " "))
	}
}

// ctrIDs runs a ctr listing and returns the first column of each line
// (without the header of `tasks ls`).
func (c *Cluster) ctrIDs(args ...string) []string {
	r := c.e.Run(c.Ctr(args...))
	if r.Err != nil {
		c.e.T.Errorf("cluster: %v", r)
		return nil
	}
	var ids []string
	for _, line := range strings.Split(r.Stdout, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] != "TASK" {
			ids = append(ids, f[0])
		}
	}
	return ids
}

// SandboxID is the id of the pod sandbox of the pod with uid (the CRI
// plugin labels a sandbox's container with the kubelet's labels): the one
// whose task runs, else the last one listed.
func (c *Cluster) SandboxID(uid string) string {
	t := c.e.T
	t.Helper()
	ids := c.ctrIDs("containers", "ls", "-q",
		fmt.Sprintf(`labels."io.kubernetes.pod.uid"==%s,labels."io.cri-containerd.kind"==sandbox`, uid))
	if len(ids) == 0 {
		t.Fatalf("cluster: no sandbox of pod uid %s in containerd", uid)
	}
	running := c.ctrIDs("tasks", "ls")
	for _, id := range ids {
		for _, r := range running {
			if r == id {
				return id
			}
		}
	}
	return ids[len(ids)-1]
}

// kubeLockDir is locked (flock) while a cluster runs: one containerd can
// serve KubeContainerdSock.
const kubeLockDir = "/run/containerd"

// kubeLockWait is how long StartCluster waits for another test's cluster.
const kubeLockWait = 5 * time.Minute

// lock takes kubeLockDir's lock, waiting for another cluster to end, and
// releases it when the test ends (last of the cluster's cleanups). It
// makes the directory, and removes it at the end if it made it and it is
// empty again.
func (c *Cluster) lock() {
	t := c.e.T
	t.Helper()
	made := false
	if _, err := os.Stat(kubeLockDir); errors.Is(err, os.ErrNotExist) {
		made = true
	}
	if err := os.MkdirAll(filepath.Join(kubeLockDir, "s"), 0o711); err != nil {
		t.Fatalf("cluster: %v", err)
	}
	f, err := os.Open(kubeLockDir)
	if err != nil {
		t.Fatalf("cluster: %v", err)
	}
	t.Cleanup(func() {
		f.Close() // releases the lock
		if made {
			_ = os.Remove(filepath.Join(kubeLockDir, "s"))
			_ = os.Remove(kubeLockDir)
		}
	})
	deadline := time.Now().Add(kubeLockWait)
	for i := 0; syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil; i++ {
		if i == 0 {
			t.Logf("cluster: another test's cluster holds %s; waiting for it to end", kubeLockDir)
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster: %s is locked by another test's cluster for more than %v", kubeLockDir, kubeLockWait)
		}
		time.Sleep(time.Second)
	}
}
