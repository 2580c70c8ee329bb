// Package manifest reads packaging/kubernetes/daemonset.yaml into the
// Kubernetes API types and translates its pod into `docker run` arguments,
// for the end-to-end tests of the DaemonSet. It is apart from testbed so
// that what builds on testbed alone (the demo) does not compile the
// Kubernetes API.
package manifest

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// Manifest is packaging/kubernetes/daemonset.yaml decoded strictly into the
// Kubernetes API types: an unknown or misspelt field is an error, as
// `kubectl apply --validate=strict` would make it.
type Manifest struct {
	Kinds          []string // in file order
	Namespace      *corev1.Namespace
	ServiceAccount *corev1.ServiceAccount
	ConfigMap      *corev1.ConfigMap
	DaemonSet      *appsv1.DaemonSet
}

var docSep = regexp.MustCompile(`(?m)^---\s*$`)

// LoadManifest reads a multi-document manifest holding one Namespace,
// ServiceAccount, ConfigMap and DaemonSet; any other kind is an error.
func LoadManifest(path string) (*Manifest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m := &Manifest{}
	for i, doc := range docSep.Split(string(b), -1) {
		if len(bytes.TrimSpace(stripComments([]byte(doc)))) == 0 {
			continue
		}
		if err := m.add([]byte(doc)); err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", path, i, err)
		}
	}
	return m, nil
}

// stripComments drops whole-line comments (to tell empty documents).
func stripComments(b []byte) []byte {
	var out [][]byte
	for _, l := range bytes.Split(b, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(l), []byte("#")) {
			out = append(out, l)
		}
	}
	return bytes.Join(out, []byte("\n"))
}

func (m *Manifest) add(doc []byte) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return err
	}
	var obj any
	switch tm.APIVersion + " " + tm.Kind {
	case "v1 Namespace":
		m.Namespace = &corev1.Namespace{}
		obj = m.Namespace
	case "v1 ServiceAccount":
		m.ServiceAccount = &corev1.ServiceAccount{}
		obj = m.ServiceAccount
	case "v1 ConfigMap":
		m.ConfigMap = &corev1.ConfigMap{}
		obj = m.ConfigMap
	case "apps/v1 DaemonSet":
		m.DaemonSet = &appsv1.DaemonSet{}
		obj = m.DaemonSet
	default:
		return fmt.Errorf("unexpected %s %s", tm.APIVersion, tm.Kind)
	}
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return fmt.Errorf("%s: %w", tm.Kind, err)
	}
	m.Kinds = append(m.Kinds, tm.Kind)
	return nil
}

// PodRun is how a test runs a DaemonSet's container under dockerd.
type PodRun struct {
	Name string
	// HostPaths maps each hostPath volume's path to the directory or file
	// standing in for the node's (the test's own temporary files); a
	// hostPath not listed is an error, so a new one in the manifest must be
	// thought about here.
	HostPaths map[string]string
	// ConfigMaps maps a ConfigMap's name to a directory holding its data
	// as files.
	ConfigMaps map[string]string
	Image      string
}

// DockerRunArgs translates the pod spec's container c into `docker run`
// arguments (after "run"), the way a kubelet would set it up: the host
// network and PID namespaces, the capabilities dropped and added, the user,
// read-only root, seccomp (RuntimeDefault is docker's default profile), no
// new privileges when allowPrivilegeEscalation is false, the memory limit,
// every volume mount, the entrypoint and arguments. Anything it does not
// know how to translate is an error.
func DockerRunArgs(spec corev1.PodSpec, c corev1.Container, r PodRun) ([]string, error) {
	args := []string{"--name", r.Name}
	if spec.HostNetwork {
		args = append(args, "--network", "host")
	}
	if spec.HostPID {
		args = append(args, "--pid", "host")
	}
	if spec.HostIPC {
		args = append(args, "--ipc", "host")
	}
	sc, err := securityArgs(c.SecurityContext)
	if err != nil {
		return nil, err
	}
	args = append(args, sc...)
	if lim, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
		args = append(args, "--memory", strconv.FormatInt(lim.Value(), 10))
	}
	vols, err := volumeArgs(spec.Volumes, c.VolumeMounts, r)
	if err != nil {
		return nil, err
	}
	args = append(args, vols...)
	if len(c.Command) > 0 {
		if len(c.Command) != 1 {
			return nil, fmt.Errorf("command %q: only a single-element command translates to --entrypoint", c.Command)
		}
		args = append(args, "--entrypoint", c.Command[0])
	}
	args = append(args, r.Image)
	return append(args, c.Args...), nil
}

func securityArgs(sc *corev1.SecurityContext) ([]string, error) {
	if sc == nil {
		return nil, nil
	}
	var args []string
	if sc.Privileged != nil && *sc.Privileged {
		args = append(args, "--privileged")
	}
	if sc.Capabilities != nil {
		for _, d := range sc.Capabilities.Drop {
			args = append(args, "--cap-drop", string(d))
		}
		for _, a := range sc.Capabilities.Add {
			args = append(args, "--cap-add", string(a))
		}
	}
	if sc.RunAsUser != nil {
		args = append(args, "--user", strconv.FormatInt(*sc.RunAsUser, 10))
	}
	if sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem {
		args = append(args, "--read-only")
	}
	if sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
		args = append(args, "--security-opt", "no-new-privileges")
	}
	if p := sc.SeccompProfile; p != nil && p.Type != corev1.SeccompProfileTypeRuntimeDefault {
		return nil, fmt.Errorf("seccomp profile %s: only RuntimeDefault (docker's default) translates", p.Type)
	}
	return args, nil
}

func volumeArgs(vols []corev1.Volume, mounts []corev1.VolumeMount, r PodRun) ([]string, error) {
	byName := map[string]corev1.Volume{}
	for _, v := range vols {
		byName[v.Name] = v
	}
	var args []string
	for _, m := range mounts {
		v, ok := byName[m.Name]
		if !ok {
			return nil, fmt.Errorf("volumeMount %s: no such volume", m.Name)
		}
		var src string
		switch {
		case v.HostPath != nil:
			if src, ok = r.HostPaths[v.HostPath.Path]; !ok {
				return nil, fmt.Errorf("hostPath %s: the test has no stand-in for it", v.HostPath.Path)
			}
		case v.ConfigMap != nil:
			if src, ok = r.ConfigMaps[v.ConfigMap.Name]; !ok {
				return nil, fmt.Errorf("configMap %s: the test has no files for it", v.ConfigMap.Name)
			}
		case v.EmptyDir != nil:
			args = append(args, "--tmpfs", m.MountPath+":mode=0700")
			continue
		default:
			return nil, fmt.Errorf("volume %s: only hostPath, configMap and emptyDir translate", v.Name)
		}
		spec := src + ":" + m.MountPath
		if m.ReadOnly {
			spec += ":ro"
		}
		args = append(args, "-v", spec)
	}
	return args, nil
}
