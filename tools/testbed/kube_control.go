package testbed

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// The control plane and the kubelet: their arguments and configuration
// files. Every one runs in the node's network namespace (nsenter --net),
// so the fixed ports below are the namespace's own; components reach the
// API server at 127.0.0.1, the kubelet and kubectl at the node's address,
// as on a node.

// Ports inside the node's namespace.
const (
	etcdClientPort = 2379
	etcdPeerPort   = 2380
	// KubeAPIPort is the API server's secure port.
	KubeAPIPort = 6443
)

// etcdArgs: Debian's etcd, one member, data in the test's directory, on
// loopback only.
func (c *Cluster) etcdArgs() []string {
	client := "http://127.0.0.1:" + strconv.Itoa(etcdClientPort)
	peer := "http://127.0.0.1:" + strconv.Itoa(etcdPeerPort)
	return []string{
		"--name", "node", "--data-dir", c.e.Path("kube/etcd"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "node=" + peer, "--logger", "zap", "--log-level", "warn",
	}
}

// apiserverArgs: authorization Node,RBAC with NodeRestriction (the
// kubelet's rights are a real node's), privileged pods allowed (the
// DaemonSet is one), service-account tokens signed with the pki's key.
// No kube-proxy runs unless a test starts one (StartKubeProxy): service
// addresses are allocated but not routed.
func (c *Cluster) apiserverArgs() []string {
	p := c.pki
	return []string{
		"--etcd-servers=http://127.0.0.1:" + strconv.Itoa(etcdClientPort),
		"--bind-address=0.0.0.0", "--secure-port=" + strconv.Itoa(KubeAPIPort),
		"--advertise-address=" + c.NodeIP,
		"--cert-dir=" + c.e.Path("kube/apiserver-certs"),
		"--tls-cert-file=" + p.Cert("apiserver"), "--tls-private-key-file=" + p.Key("apiserver"),
		"--client-ca-file=" + p.CACert(),
		"--kubelet-client-certificate=" + p.Cert("apiserver-kubelet-client"),
		"--kubelet-client-key=" + p.Key("apiserver-kubelet-client"),
		"--kubelet-preferred-address-types=InternalIP",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + filepath.Join(p.dir, "sa.pub"),
		"--service-account-signing-key-file=" + p.Key("sa"),
		"--service-cluster-ip-range=" + KubeServiceCIDR,
		"--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
		"--allow-privileged=true", "--profiling=false", "--v=1",
	}
}

// controllerManagerArgs: each controller with a service account of its own
// (as kubeadm runs it), no leader election (one member: no lease to wait
// for), no HTTPS endpoint.
func (c *Cluster) controllerManagerArgs() []string {
	kc := c.e.Path("kube/controller-manager.kubeconfig")
	return []string{
		"--kubeconfig=" + kc, "--authentication-kubeconfig=" + kc, "--authorization-kubeconfig=" + kc,
		"--service-account-private-key-file=" + c.pki.Key("sa"), "--root-ca-file=" + c.pki.CACert(),
		"--use-service-account-credentials=true", "--leader-elect=false", "--secure-port=0",
		"--flex-volume-plugin-dir=" + c.e.Path("kube/volume-plugins"),
		"--profiling=false", "--v=1",
	}
}

func (c *Cluster) schedulerArgs() []string {
	kc := c.e.Path("kube/scheduler.kubeconfig")
	return []string{
		"--kubeconfig=" + kc, "--authentication-kubeconfig=" + kc, "--authorization-kubeconfig=" + kc,
		"--leader-elect=false", "--secure-port=0", "--profiling=false", "--v=1",
	}
}

// kubeletArgs: what has no place in the config file.
func (c *Cluster) kubeletArgs(config string) []string {
	return []string{
		"--config=" + config, "--kubeconfig=" + c.e.Path("kube/kubelet.kubeconfig"),
		"--root-dir=" + c.KubeletRoot, "--cert-dir=" + filepath.Join(c.KubeletRoot, "pki"),
		"--hostname-override=" + c.NodeName, "--node-ip=" + c.NodeIP,
		// Deprecated, but still what keeps the sandbox image from the
		// image garbage collector in 1.30.
		"--pod-infra-container-image=" + KubePauseImage,
		"--v=1",
	}
}

// kubeletConfig is the KubeletConfiguration. Running without systemd as
// PID 1, on cgroup v1 (accepted by 1.30; 1.35 refuses it unless
// failCgroupV1 is false), takes:
//
//   - cgroupDriver cgroupfs: the systemd driver asks systemd over D-Bus
//     for every pod's slice; cgroupfs writes the hierarchies directly, and
//     containerd's runc is told the same (SystemdCgroup = false);
//   - a cgroupRoot that exists in every hierarchy beforehand (the kubelet
//     validates it and does not make it: makeCgroupRoot does), its own so
//     that the pods' cgroups (cgroupRoot/kubepods/QOS/podUID/CONTAINER)
//     are found and removed;
//   - failSwapOn false (there is no swap, but nothing to prove it), and
//     /dev/kmsg for the OOM watcher (present here);
//   - eviction off (thresholds 0% are dropped: the test disk may be
//     nearly full) and image GC only at 100%;
//   - the kernel tunables it writes (kube_machine.go puts them back);
//   - every directory of its own in the test's directory: volumePluginDir
//     (by default it makes /usr/libexec/kubernetes/kubelet-plugins),
//     podLogsDir (/var/log/pods), --root-dir, --cert-dir.
//
// Harmless complaints in its log here: it cannot raise RLIMIT_NOFILE to
// a million, and it cannot move "PID 1's" process into a cgroup with an
// OOM score (no systemd or dockershim to find).
//
// syncFrequency 3s: a changed ConfigMap reaches a pod's volume within a
// few seconds (the default is one minute plus the cache TTL).
func (c *Cluster) kubeletConfig() string {
	p := c.pki
	conf := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
cgroupRoot: %s
failSwapOn: false
containerRuntimeEndpoint: unix://%s
staticPodPath: %s
podLogsDir: %s
volumePluginDir: %s
syncFrequency: 3s
fileCheckFrequency: 2s
configMapAndSecretChangeDetectionStrategy: Watch
nodeStatusUpdateFrequency: 4s
evictionHard: {memory.available: "0%%", nodefs.available: "0%%", nodefs.inodesFree: "0%%", imagefs.available: "0%%", imagefs.inodesFree: "0%%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
authentication: {anonymous: {enabled: false}, webhook: {enabled: true}, x509: {clientCAFile: %q}}
authorization: {mode: Webhook}
tlsCertFile: %q
tlsPrivateKeyFile: %q
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
clusterDomain: cluster.local
`, KubeCgroupRoot, KubeContainerdSock, c.StaticPodDir, c.podLogs, c.e.Path("kube/volume-plugins"),
		p.CACert(), p.Cert("kubelet-serving"), p.Key("kubelet-serving"))
	if c.opts.KubeletConfig != "" {
		conf += strings.TrimRight(c.opts.KubeletConfig, "\n") + "\n"
	}
	return conf
}

// writeKubeconfigs writes one kubeconfig per client: admin (kubectl) and
// the kubelet at the node's address, the controller manager and the
// scheduler at 127.0.0.1.
func (c *Cluster) writeKubeconfigs() {
	node := "https://" + HostPort(c.NodeIP, KubeAPIPort)
	local := "https://" + HostPort("127.0.0.1", KubeAPIPort)
	c.Kubeconfig = c.e.WriteFile("kube/admin.kubeconfig", c.pki.kubeconfig(node, "admin"))
	c.e.WriteFile("kube/kubelet.kubeconfig", c.pki.kubeconfig(node, "kubelet"))
	c.e.WriteFile("kube/controller-manager.kubeconfig", c.pki.kubeconfig(local, "controller-manager"))
	c.e.WriteFile("kube/scheduler.kubeconfig", c.pki.kubeconfig(local, "scheduler"))
	c.e.WriteFile("kube/kube-proxy.kubeconfig", c.pki.kubeconfig(node, "kube-proxy"))
}
