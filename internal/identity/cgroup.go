package identity

import (
	"bytes"
	"strings"
)

// containerPrefixes are the scope/segment prefixes container runtimes put
// before a container id: docker and moby, containerd's CRI plugin, cri-o,
// podman (libpod). Conmon's own scopes ("crio-conmon-", "libpod-conmon-") are
// the monitor, not the container, and do not match.
var containerPrefixes = []string{"docker-", "cri-containerd-", "crio-", "libpod-"}

// parseCgroup reads /proc/PID/cgroup ("ID:CONTROLLERS:PATH" lines, cgroup v1
// and v2). It returns the unified hierarchy's path (line "0::PATH") if there
// is one, else the first line's, and the container id found in it: the last
// 64-hex-digit path segment, bare (cgroupfs driver: /docker/ID,
// /kubepods/burstable/podUID/ID) or inside a systemd scope
// (docker-ID.scope, cri-containerd-ID.scope, crio-ID.scope, libpod-ID.scope).
// Paths of v1 lines are searched for an id too, unified first.
func parseCgroup(b []byte) (path, container string) {
	var paths []string
	for line := range bytes.Lines(b) {
		f := strings.SplitN(strings.TrimSpace(string(line)), ":", 3)
		if len(f) != 3 {
			continue
		}
		if f[0] == "0" && f[1] == "" {
			paths = append([]string{f[2]}, paths...)
		} else {
			paths = append(paths, f[2])
		}
	}
	if len(paths) == 0 {
		return "", ""
	}
	for _, p := range paths {
		if id := containerID(p); id != "" {
			return paths[0], id
		}
	}
	return paths[0], ""
}

// containerID is the last container id in a cgroup path, "" when none.
func containerID(path string) string {
	segs := strings.Split(path, "/")
	for i := len(segs) - 1; i >= 0; i-- {
		s := strings.TrimSuffix(segs[i], ".scope")
		for _, p := range containerPrefixes {
			if rest, ok := strings.CutPrefix(s, p); ok {
				s = rest
				break
			}
		}
		if isContainerID(s) {
			return s
		}
	}
	return ""
}

func isContainerID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
