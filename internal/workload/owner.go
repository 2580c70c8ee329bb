package workload

import "strings"

// Owners lists the runtimes that may own the container whose cgroup path
// is cgroup, the likeliest first. The path names its runtime in most
// layouts: Docker's cgroupfs driver puts containers below /docker, the
// systemd drivers in docker-ID.scope, cri-containerd-ID.scope and
// crio-ID.scope; the kubelet's cgroupfs driver only says /kubepods (a CRI
// runtime: containerd or CRI-O, or Docker through cri-dockerd). For any
// other path every runtime is asked, containerd first when the path looks
// like containerd's own (/NAMESPACE/ID).
func Owners(cgroup, id string) []string {
	segs := strings.Split(cgroup, "/")
	for i := len(segs) - 1; i >= 0; i-- {
		s := segs[i]
		switch {
		case strings.HasPrefix(s, "docker-") && strings.HasSuffix(s, ".scope"), s == "docker":
			return []string{Docker}
		case strings.HasPrefix(s, "cri-containerd-"):
			return []string{Containerd}
		case strings.HasPrefix(s, "crio-") && !strings.HasPrefix(s, "crio-conmon-"):
			return []string{CRIO}
		case strings.HasPrefix(s, "kubepods"):
			return []string{Containerd, CRIO, Docker}
		}
	}
	if ContainerdNamespace(cgroup, id) != "" {
		return []string{Containerd, Docker, CRIO}
	}
	return []string{Docker, Containerd, CRIO}
}

// ContainerdNamespace is the containerd namespace a cgroup path names, ""
// when it names none: containerd's default cgroup for a container is
// /NAMESPACE/ID (ctr, nerdctl), and its CRI plugin's containers (systemd
// scopes cri-containerd-ID.scope, or below /kubepods) are in "k8s.io".
func ContainerdNamespace(cgroup, id string) string {
	if strings.Contains(cgroup, "cri-containerd-") || strings.Contains(cgroup, "kubepods") {
		return "k8s.io"
	}
	dir, last, ok := cutLast(cgroup, "/")
	if !ok || last != id {
		return ""
	}
	_, ns, _ := cutLast(dir, "/")
	return ns
}

func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}
