package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/imdsguard/imdsguard/internal/check"
	"github.com/imdsguard/imdsguard/internal/config"
	"github.com/imdsguard/imdsguard/tools/manifest"
	"github.com/imdsguard/imdsguard/tools/testbed"
)

// manifestPath is the Kubernetes deployment, relative to the repository.
const manifestPath = "packaging/kubernetes/daemonset.yaml"

// loadManifest decodes the manifest strictly, failing t on any error.
func loadManifest(t *testing.T, e *testbed.Env) *manifest.Manifest {
	t.Helper()
	m, err := manifest.LoadManifest(filepath.Join(e.Root, manifestPath))
	if err != nil {
		t.Fatal(err)
	}
	if m.Namespace == nil || m.ServiceAccount == nil || m.ConfigMap == nil || m.DaemonSet == nil {
		t.Fatalf("%s: want a Namespace, ServiceAccount, ConfigMap and DaemonSet, got %v", manifestPath, m.Kinds)
	}
	return m
}

// guardContainer is the DaemonSet's imdsguard container.
func guardContainer(t *testing.T, m *manifest.Manifest) corev1.Container {
	t.Helper()
	cs := m.DaemonSet.Spec.Template.Spec.Containers
	if len(cs) != 1 || cs[0].Name != "imdsguard" {
		t.Fatalf("want exactly one container named imdsguard, got %d", len(cs))
	}
	return cs[0]
}

// unitBoundingSet reads CapabilityBoundingSet= of the systemd unit, without the
// CAP_ prefix: the DaemonSet must add exactly these.
func unitBoundingSet(t *testing.T, root string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "systemd/imdsguard.service"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^CapabilityBoundingSet=(.+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("systemd/imdsguard.service: no CapabilityBoundingSet=")
	}
	var caps []string
	for _, c := range strings.Fields(string(m[1])) {
		caps = append(caps, strings.TrimPrefix(c, "CAP_"))
	}
	slices.Sort(caps)
	return caps
}

// TestKubernetesManifest decodes packaging/kubernetes/daemonset.yaml
// strictly into the Kubernetes API types (apps/v1 DaemonSet, core/v1
// Namespace, ServiceAccount, ConfigMap; no RBAC objects at all) and checks
// what matters for security: host network and PID (no host IPC), not
// privileged, capabilities exactly the systemd unit's five with ALL
// dropped, no service account token, system-node-critical, tolerations of
// every taint, readiness and liveness probes that mean "enforcing and
// serving" (imdsguard check --ready), the token key on a hostPath where
// the config puts it, only the hostPaths that are needed, and a
// configuration the daemon accepts.
func TestKubernetesManifest(t *testing.T) {
	e := testbed.New(t)
	m := loadManifest(t, e)
	ds := m.DaemonSet
	pod := ds.Spec.Template.Spec
	c := guardContainer(t, m)
	ns := m.Namespace.Name
	t.Logf("%s: %v", manifestPath, m.Kinds)

	checks := []struct {
		name string
		ok   bool
	}{
		{"namespaced in " + ns, m.ServiceAccount.Namespace == ns && m.ConfigMap.Namespace == ns && ds.Namespace == ns},
		{"Pod Security enforce=privileged on the namespace", m.Namespace.Labels["pod-security.kubernetes.io/enforce"] == "privileged"},
		{"service account without a token", m.ServiceAccount.AutomountServiceAccountToken != nil && !*m.ServiceAccount.AutomountServiceAccountToken},
		{"pod uses it, without a token", pod.ServiceAccountName == m.ServiceAccount.Name && pod.AutomountServiceAccountToken != nil && !*pod.AutomountServiceAccountToken},
		{"hostNetwork (rules and proxy in the node's namespace)", pod.HostNetwork},
		{"hostPID (identity reads the node's /proc)", pod.HostPID},
		{"no hostIPC", !pod.HostIPC},
		{"priorityClassName system-node-critical", pod.PriorityClassName == "system-node-critical"},
		{"tolerates every taint", toleratesAll(pod.Tolerations)},
		{"selector matches the template", ds.Spec.Selector != nil && labelsMatch(ds.Spec.Selector.MatchLabels, ds.Spec.Template.Labels)},
		{"rolling update with a surge (maxSurge 1, maxUnavailable 0: the new pod takes over from the old one)", surges(ds.Spec.UpdateStrategy)},
		{"one container, one init container (the rules), no sidecar", len(pod.InitContainers) == 1 && len(pod.Containers) == 1},
	}
	for _, ch := range checks {
		if !ch.ok {
			t.Errorf("manifest: %s: does not hold", ch.name)
		}
	}
	checkSecurityContext(t, c, unitBoundingSet(t, e.Root))
	checkProbe(t, "readinessProbe", c.ReadinessProbe, c)
	checkProbe(t, "livenessProbe", c.LivenessProbe, c)
	cfg := checkConfigMap(t, e, m, c)
	checkVolumes(t, pod, c, cfg)
	checkRulesInit(t, pod, c)
}

func surges(s appsv1.DaemonSetUpdateStrategy) bool {
	ru := s.RollingUpdate
	return s.Type == appsv1.RollingUpdateDaemonSetStrategyType && ru != nil &&
		ru.MaxSurge != nil && ru.MaxSurge.String() == "1" &&
		ru.MaxUnavailable != nil && ru.MaxUnavailable.String() == "0"
}

// checkRulesInit: the init container installs the rules with the daemon's
// image and configuration, with NET_ADMIN and NET_RAW only, every other
// hardening of the daemon's container, and the mounts it needs (config,
// the rules lock's directory, the xtables lock).
func checkRulesInit(t *testing.T, pod corev1.PodSpec, c corev1.Container) {
	t.Helper()
	ic := pod.InitContainers[0]
	if want := []string{"rules", "install", "--config", "/etc/imdsguard/imdsguard.yaml"}; !slices.Equal(ic.Args, want) || len(ic.Command) != 0 || ic.Image != c.Image {
		t.Errorf("init container %s: image %s command %q args %q, want %s with args %q", ic.Name, ic.Image, ic.Command, ic.Args, c.Image, want)
	}
	checkSecurityContext(t, ic, []string{"NET_ADMIN", "NET_RAW"})
	mounts := map[string]string{}
	for _, vm := range ic.VolumeMounts {
		mounts[vm.MountPath] = vm.Name
	}
	for _, p := range []string{"/etc/imdsguard", "/run/imdsguard", "/run/xtables.lock"} {
		if mounts[p] == "" {
			t.Errorf("init container %s: nothing mounted at %s", ic.Name, p)
		}
	}
}

func toleratesAll(ts []corev1.Toleration) bool {
	for _, t := range ts {
		if t.Operator == corev1.TolerationOpExists && t.Key == "" && t.Effect == "" {
			return true
		}
	}
	return false
}

func labelsMatch(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return len(sel) > 0
}

// checkSecurityContext: root (iptables needs it) but not privileged, ALL
// capabilities dropped and exactly the unit's added, read-only root,
// RuntimeDefault seccomp, and no allowPrivilegeEscalation: false (the API
// server refuses it together with SYS_ADMIN; no API server runs here, so
// the rule is checked here).
func checkSecurityContext(t *testing.T, c corev1.Container, want []string) {
	t.Helper()
	sc := c.SecurityContext
	if sc == nil || sc.Capabilities == nil {
		t.Fatal("container: no securityContext with capabilities")
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Error("container: privileged: true (the five capabilities are enough)")
	}
	if !slices.Equal(capNames(sc.Capabilities.Drop), []string{"ALL"}) {
		t.Errorf("capabilities.drop %v, want [ALL]", sc.Capabilities.Drop)
	}
	if got := capNames(sc.Capabilities.Add); !slices.Equal(got, want) {
		t.Errorf("capabilities.add %v, want the unit's %v", got, want)
	}
	if sc.RunAsUser == nil || *sc.RunAsUser != 0 {
		t.Error("container: runAsUser must be 0 (iptables, and the capabilities only work for root without ambient ones)")
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("container: readOnlyRootFilesystem must be true")
	}
	if sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Error("container: seccompProfile must be RuntimeDefault")
	}
	if sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation && slices.Contains(capNames(sc.Capabilities.Add), "SYS_ADMIN") {
		t.Error("container: allowPrivilegeEscalation: false with SYS_ADMIN added is refused by the API server")
	}
	t.Logf("securityContext: drop %v, add %v, runAsUser 0, read-only root, seccomp RuntimeDefault", sc.Capabilities.Drop, sc.Capabilities.Add)
}

func capNames(cs []corev1.Capability) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = string(c)
	}
	slices.Sort(out)
	return out
}

// readyProbe is the probes' command: imdsguard's own readiness check (the
// rules complete, the landing addresses, a token OPTIONS through the
// redirect), reading the configuration the container runs with.
var readyProbe = []string{"/usr/sbin/imdsguard", "check", "--ready", "--config", "/etc/imdsguard/imdsguard.yaml"}

// checkProbe wants an exec of `imdsguard check --ready` with the
// container's configuration and a timeout above check.ReadyTimeout.
func checkProbe(t *testing.T, name string, p *corev1.Probe, c corev1.Container) {
	t.Helper()
	if p == nil || p.Exec == nil || len(p.Exec.Command) == 0 {
		t.Errorf("%s: want an exec probe", name)
		return
	}
	if !slices.Equal(p.Exec.Command, readyProbe) {
		t.Errorf("%s: runs %q, want %q", name, p.Exec.Command, readyProbe)
	}
	if i := slices.Index(c.Args, "--config"); i < 0 || i+1 == len(c.Args) || c.Args[i+1] != readyProbe[len(readyProbe)-1] {
		t.Errorf("%s: reads %s, the container runs with %q", name, readyProbe[len(readyProbe)-1], c.Args)
	}
	if time.Duration(p.TimeoutSeconds)*time.Second <= check.ReadyTimeout {
		t.Errorf("%s: timeoutSeconds %d: check --ready may take up to %v", name, p.TimeoutSeconds, check.ReadyTimeout)
	}
}

// checkConfigMap loads the ConfigMap's imdsguard.yaml with the daemon's
// own loader (strict, validated) and wants the container to read it from
// the ConfigMap's mount.
func checkConfigMap(t *testing.T, e *testbed.Env, m *manifest.Manifest, c corev1.Container) *config.Config {
	t.Helper()
	data, ok := m.ConfigMap.Data["imdsguard.yaml"]
	if !ok {
		t.Fatal("ConfigMap: no imdsguard.yaml")
	}
	cfg, err := config.Load(e.WriteFile("cm-imdsguard.yaml", data), false)
	if err != nil {
		t.Fatalf("ConfigMap imdsguard.yaml: %v", err)
	}
	if want := []string{"run", "--config", "/etc/imdsguard/imdsguard.yaml"}; !slices.Equal(c.Args, want) || len(c.Command) != 0 {
		t.Errorf("container: command %q args %q, want the image's entrypoint with %q", c.Command, c.Args, want)
	}
	if !cfg.Redirect.KeepOnExit {
		t.Error("config: keep_on_exit must be true (fail closed while the pod restarts)")
	}
	return cfg
}

// checkVolumes wants the hostPaths exactly: the key's directory (where
// tokens.key_file is), the xtables lock, passwd and group (read-only); the
// config from the ConfigMap at /etc/imdsguard; the admin socket's
// directory writable.
func checkVolumes(t *testing.T, pod corev1.PodSpec, c corev1.Container, cfg *config.Config) {
	t.Helper()
	mounts := map[string]corev1.VolumeMount{}
	for _, vm := range c.VolumeMounts {
		mounts[vm.Name] = vm
	}
	wantHost := map[string]struct {
		mount string
		ro    bool
	}{
		filepath.Dir(cfg.Tokens.KeyFile): {filepath.Dir(cfg.Tokens.KeyFile), false},
		// The admin and handover sockets and the rules lock: shared by the
		// two pods of a rollout.
		filepath.Dir(cfg.Admin.Socket): {filepath.Dir(cfg.Admin.Socket), false},
		"/run/xtables.lock":            {"/run/xtables.lock", false},
		"/etc/passwd":                  {"/etc/passwd", true},
		"/etc/group":                   {"/etc/group", true},
		// The runtimes' sockets: pods named by what their runtime says.
		filepath.Dir(cfg.Runtimes.Containerd): {filepath.Dir(cfg.Runtimes.Containerd), true},
		filepath.Dir(cfg.Runtimes.CRIO):       {filepath.Dir(cfg.Runtimes.CRIO), true},
	}
	seen := map[string]bool{}
	for _, v := range pod.Volumes {
		vm, mounted := mounts[v.Name]
		switch {
		case !mounted:
			t.Errorf("volume %s is not mounted", v.Name)
		case v.HostPath != nil:
			w, ok := wantHost[v.HostPath.Path]
			if !ok {
				t.Errorf("hostPath %s: not one imdsguard needs", v.HostPath.Path)
				continue
			}
			seen[v.HostPath.Path] = true
			if vm.MountPath != w.mount || vm.ReadOnly != w.ro {
				t.Errorf("hostPath %s mounted at %s (ro %v), want %s (ro %v)", v.HostPath.Path, vm.MountPath, vm.ReadOnly, w.mount, w.ro)
			}
		case v.ConfigMap != nil:
			if vm.MountPath != "/etc/imdsguard" || !vm.ReadOnly {
				t.Errorf("configMap mounted at %s (ro %v), want /etc/imdsguard read-only", vm.MountPath, vm.ReadOnly)
			}
		default:
			t.Errorf("volume %s: unexpected kind", v.Name)
		}
	}
	for p := range wantHost {
		if !seen[p] {
			t.Errorf("no hostPath %s", p)
		}
	}
}
