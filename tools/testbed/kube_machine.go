package testbed

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// What a cluster changes on the machine outside its network namespace and
// its directories, and how each is put back when the test ends:
//
//   - sysctls the kubelet sets at start (setupKernelTunables) and that no
//     namespace scopes: recorded before, written back after;
//   - cgroups: the kubelet's root (KubeCgroupRoot) in every hierarchy,
//     made here (the kubelet refuses a cgroupRoot that does not exist) and
//     removed, deepest first, once every pod is gone;
//   - pod network namespaces, /var/run/netns/cni-*, made and removed by the
//     CRI plugin; any left (a task killed behind the CRI's back) is
//     unmounted and removed;
//   - /var/log/containers, where the kubelet links each container's log
//     (made by the kubelet when missing; mode 0750): our links removed, the
//     directory removed or its mode put back;
//   - /var/lib/cni, libcni's result cache: our network's entries removed,
//     the tree removed when it was not there before;
//   - /var/lib/kubelet/device-plugins, where the kubelet's device manager
//     serves its registration socket and keeps its checkpoint whatever
//     --root-dir says: both removed, and the directories when they were not
//     there before.

// kubeSysctls are the kubelet's kernel tunables (KubeletConfiguration
// protectKernelDefaults false: it writes them).
var kubeSysctls = []string{
	"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
	"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
}

// saveSysctls records kubeSysctls and writes them back when the test ends.
func (c *Cluster) saveSysctls() {
	t := c.e.T
	saved := map[string]string{}
	for _, k := range kubeSysctls {
		b, err := os.ReadFile("/proc/sys/" + k)
		if err != nil {
			t.Fatalf("cluster: read sysctl %s: %v", k, err)
		}
		saved[k] = strings.TrimSpace(string(b))
	}
	t.Cleanup(func() {
		for _, k := range kubeSysctls {
			if err := os.WriteFile("/proc/sys/"+k, []byte(saved[k]), 0o644); err != nil {
				t.Errorf("cluster: restore sysctl %s=%s: %v", k, saved[k], err)
			}
		}
	})
}

// cgroupMounts are the mount points of every cgroup hierarchy (v1 and, in
// hybrid mode, the v2 one: runc joins both).
func cgroupMounts() ([]string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		_, post, ok := strings.Cut(line, " - ")
		f := strings.Fields(line)
		if !ok || len(f) < 5 {
			continue
		}
		if typ := strings.Fields(post); len(typ) > 0 && (typ[0] == "cgroup" || typ[0] == "cgroup2") {
			out = append(out, f[4])
		}
	}
	return out, nil
}

// makeCgroupRoot makes KubeCgroupRoot in every hierarchy (a leftover of a
// killed test, if empty, is removed first) and removes the whole tree when
// the test ends.
func (c *Cluster) makeCgroupRoot() {
	t := c.e.T
	mounts, err := cgroupMounts()
	if err != nil || len(mounts) == 0 {
		t.Fatalf("cluster: cgroup hierarchies: %v (%d)", err, len(mounts))
	}
	if err := removeCgroups(mounts, KubeCgroupRoot); err != nil {
		t.Fatalf("cluster: a previous %s is still in use: %v", KubeCgroupRoot, err)
	}
	t.Cleanup(func() {
		if err := removeCgroups(mounts, KubeCgroupRoot); err != nil {
			t.Errorf("cluster: remove the kubelet's cgroups: %v", err)
		}
	})
	for _, m := range mounts {
		dir := filepath.Join(m, KubeCgroupRoot)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatalf("cluster: %v", err)
		}
		if _, err := os.Stat(filepath.Join(m, "cpuset.cpus")); err == nil {
			copyCpuset(t, m, dir)
		}
	}
}

// copyCpuset gives a new v1 cpuset cgroup its parent's cpus and mems (it
// starts with none, and no task could join it).
func copyCpuset(t TB, parent, dir string) {
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		b, err := os.ReadFile(filepath.Join(parent, f))
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, f), b, 0o644)
		}
		if err != nil {
			t.Fatalf("cluster: cpuset %s: %v", f, err)
		}
	}
}

// removeCgroups removes root and every cgroup below it in each hierarchy,
// deepest first; a cgroup that still holds a process cannot go and is
// reported.
func removeCgroups(mounts []string, root string) error {
	var errs []error
	for _, m := range mounts {
		var dirs []string
		_ = filepath.WalkDir(filepath.Join(m, root), func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
		for _, d := range dirs {
			if err := syscall.Rmdir(d); err != nil && !errors.Is(err, syscall.ENOENT) {
				errs = append(errs, fmt.Errorf("rmdir %s: %w (tasks: %s)", d, err, cgroupTasks(d)))
			}
		}
	}
	return errors.Join(errs...)
}

func cgroupTasks(dir string) string {
	b, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	return strings.Join(strings.Fields(string(b)), ",")
}

// podNetnsDir is where containerd's CRI plugin bind-mounts pod network
// namespaces (netns.go in containerd 1.6: fixed).
const podNetnsDir = "/var/run/netns"

// podNetnses lists the cni-* namespaces there.
func podNetnses() map[string]bool {
	out := map[string]bool{}
	matches, _ := filepath.Glob(filepath.Join(podNetnsDir, "cni-*"))
	for _, m := range matches {
		out[m] = true
	}
	return out
}

// watchPodNetnses records the pod namespaces before the cluster starts;
// at the end, one made since (one cluster runs at a time, and nothing else
// here makes cni-* namespaces) is unmounted, removed and reported.
func (c *Cluster) watchPodNetnses() {
	t := c.e.T
	before := podNetnses()
	t.Cleanup(func() {
		for p := range podNetnses() {
			if before[p] {
				continue
			}
			t.Errorf("cluster: pod network namespace %s outlived its sandbox; removing it", p)
			if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
				t.Errorf("cluster: unmount %s: %v", p, err)
			}
			if err := os.Remove(p); err != nil {
				t.Errorf("cluster: %v", err)
			}
		}
	})
}

// kubeLegacyLogDir is the kubelet's fixed directory of links to container
// logs (kubelet.ContainerLogsDir).
const kubeLegacyLogDir = "/var/log/containers"

// watchLegacyLogs removes, at the end, the links into the cluster's pod log
// directory and the directory itself when the kubelet made it (else puts
// its mode back).
func (c *Cluster) watchLegacyLogs() {
	t := c.e.T
	st, err := os.Stat(kubeLegacyLogDir)
	existed := err == nil
	t.Cleanup(func() {
		links, _ := filepath.Glob(filepath.Join(kubeLegacyLogDir, "*.log"))
		for _, l := range links {
			if dst, err := os.Readlink(l); err == nil && strings.HasPrefix(dst, c.podLogs+"/") {
				_ = os.Remove(l)
			}
		}
		var err error
		if !existed {
			err = os.Remove(kubeLegacyLogDir)
		} else {
			err = os.Chmod(kubeLegacyLogDir, st.Mode().Perm())
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cluster: put %s back: %v", kubeLegacyLogDir, err)
		}
	})
}

// cniCacheDir is libcni's cache of ADD results (containerd 1.6 cannot move
// it); an entry is named NETWORK-CONTAINERID-IFNAME.
const cniCacheDir = "/var/lib/cni"

// watchCNICache removes our network's cached results at the end, and the
// cache's tree when it was not there before (and is empty then).
func (c *Cluster) watchCNICache() {
	t := c.e.T
	_, err := os.Stat(cniCacheDir)
	existed := err == nil
	t.Cleanup(func() {
		ours, _ := filepath.Glob(filepath.Join(cniCacheDir, "results", KubeCNINetwork+"-*"))
		lo, _ := filepath.Glob(filepath.Join(cniCacheDir, "results", "cni-loopback-*")) // the CRI's lo network
		for _, p := range append(ours, lo...) {
			t.Errorf("cluster: CNI result %s outlived its sandbox; removing it", p)
			_ = os.Remove(p)
		}
		if !existed {
			removeEmptyTree(cniCacheDir)
		}
	})
}

// removeEmptyTree removes dir if it holds nothing but empty directories.
func removeEmptyTree(dir string) {
	var dirs []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	for _, d := range dirs {
		_ = os.Remove(d) // fails, and keeps it, when not empty
	}
}

// kubeDevicePluginDir is the device manager's fixed directory
// (deviceplugin/v1beta1.DevicePluginPath).
const kubeDevicePluginDir = "/var/lib/kubelet/device-plugins"

// watchDevicePlugins removes, at the end, the kubelet's socket and
// checkpoint there, and the directories the kubelet made.
func (c *Cluster) watchDevicePlugins() {
	t := c.e.T
	_, err := os.Stat(filepath.Dir(kubeDevicePluginDir))
	existed := err == nil
	t.Cleanup(func() {
		for _, f := range []string{"kubelet.sock", "kubelet_internal_checkpoint"} {
			if err := os.Remove(filepath.Join(kubeDevicePluginDir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("cluster: %v", err)
			}
		}
		if !existed {
			removeEmptyTree(filepath.Dir(kubeDevicePluginDir))
		}
	})
}
