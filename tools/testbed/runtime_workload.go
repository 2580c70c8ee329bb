package testbed

import (
	"fmt"
	"sort"
	"strings"
	"syscall"
)

// What the workload tests need of a Containerd beyond the runtime tests:
// containers in other namespaces (Kubernetes' k8s.io) with labels, the
// daemon's pid, and stopping it while its containers keep running.

// K8sNamespace is the containerd namespace of Kubernetes' containers.
const K8sNamespace = "k8s.io"

// CtrIn is the ctr CLI for this containerd, in namespace ns.
func (c *Containerd) CtrIn(ns string, args ...string) Cmd {
	cmd := c.Ctr(args...)
	cmd.Args = append([]string{"--address", c.Sock, "--namespace", ns}, args...)
	return cmd
}

// MustCtrIn runs ctr in namespace ns and fails the test on error.
func (c *Containerd) MustCtrIn(ns string, args ...string) string {
	c.e.T.Helper()
	r := c.e.Run(c.CtrIn(ns, args...))
	if r.Err != nil {
		c.e.T.Fatalf("%v", r)
	}
	return r.Stdout
}

// labelArgs are ctr's --label flags for labels, in a stable order.
func labelArgs(labels map[string]string) []string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var args []string
	for _, k := range keys {
		args = append(args, "--label", k+"="+labels[k])
	}
	return args
}

// CreateIn creates container id in namespace ns from image with labels,
// without a task: what containerd's CRI plugin keeps for a pod's sandbox.
func (c *Containerd) CreateIn(ns, image, id string, labels map[string]string) {
	c.e.T.Helper()
	c.MustCtrIn(ns, append(append([]string{"containers", "create"}, labelArgs(labels)...), image, id)...)
}

// RunIn starts container id in namespace ns from image with labels and
// the network namespace at netnsPath; its cgroup is /ns/id.
func (c *Containerd) RunIn(ns, image, id, netnsPath string, labels map[string]string, argv ...string) {
	c.e.T.Helper()
	args := append([]string{"run", "-d", "--null-io", "--fifo-dir", c.FifoDir, "--runc-root", c.RuncRoot,
		"--with-ns", "network:" + netnsPath}, labelArgs(labels)...)
	c.MustCtrIn(ns, append(append(args, image, id), argv...)...)
}

// ExecIn runs argv in the running container id of namespace ns.
func (c *Containerd) ExecIn(ns, id, execID string, argv ...string) Cmd {
	cmd := c.CtrIn(ns, append([]string{"task", "exec", "--fifo-dir", c.FifoDir, "--exec-id", execID, id}, argv...)...)
	cmd.Name = "ctr task exec " + strings.Join(argv, " ")
	return cmd
}

// DeleteEverything deletes every task and container of every namespace
// (those RunDetached made too), so that nothing outlives the test; it
// does nothing once containerd has stopped for good.
func (c *Containerd) DeleteEverything() {
	t := c.e.T
	if done, _ := c.proc.Exited(); done {
		return
	}
	nss := c.e.Run(c.Ctr("namespaces", "list", "-q"))
	if nss.Err != nil {
		t.Errorf("list containerd namespaces: %v", nss)
		return
	}
	for _, ns := range strings.Fields(nss.Stdout) {
		for _, id := range strings.Fields(c.e.Run(c.CtrIn(ns, "containers", "list", "-q")).Stdout) {
			c.e.Run(c.CtrIn(ns, "task", "delete", "--force", id)) // a container without a task has none to delete
			if r := c.e.Run(c.CtrIn(ns, "containers", "delete", id)); r.Err != nil {
				t.Errorf("delete container %s/%s: %v", ns, id, r)
			}
		}
	}
	c.tasks = nil
}

// Pid is the running containerd's pid.
func (c *Containerd) Pid() int { return c.proc.Pid() }

// StopWhile stops containerd (SIGTERM to its pid; its containers keep
// running under their shims, as with `systemctl stop containerd`), runs
// f, and starts containerd again with the same configuration. The new
// process is stopped when the test ends, after every container is deleted.
func (c *Containerd) StopWhile(f func()) {
	t := c.e.T
	t.Helper()
	spec := ProcSpec{Name: c.proc.Name, Path: c.proc.cmd.Path, Args: c.proc.cmd.Args[1:]}
	if err := c.proc.Stop(); err != nil {
		t.Fatalf("stop containerd: %v", err)
	}
	f()
	p, err := startProc(spec)
	if err != nil {
		t.Fatal(err)
	}
	p.StopGrace = c.proc.StopGrace
	c.proc = p
	t.Cleanup(func() { // runs before the cleanups of StartContainerd, which find nothing left
		c.DeleteEverything()
		if err := p.Stop(); err != nil {
			t.Errorf("stop containerd: %v", err)
		}
		if t.Failed() {
			t.Logf("%s", p.Logs())
		}
	})
	WaitFor(t, "containerd answers again on "+c.Sock, func() bool { return c.e.Run(c.Ctr("version")).Err == nil })
}

// Pause stops containerd with SIGSTOP (by its pid) until resume is
// called, or the test ends: a runtime that accepts connections and does
// not answer.
func (c *Containerd) Pause() (resume func()) {
	pid := c.Pid()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		c.e.T.Fatalf("SIGSTOP containerd %d: %v", pid, err)
	}
	resumed := false
	resume = func() {
		if !resumed {
			resumed = true
			if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
				c.e.T.Errorf("SIGCONT containerd %d: %v", pid, err)
			}
		}
	}
	c.e.T.Cleanup(resume)
	return resume
}

// String names the daemon for messages.
func (c *Containerd) String() string { return fmt.Sprintf("containerd pid %d at %s", c.Pid(), c.Sock) }

// noMachineRuntimes is the runtimes: section of a test daemon whose extra
// configuration names none: every runtime off, so that no test daemon
// asks a runtime of the machine about its callers' containers.
func noMachineRuntimes(extra string) string {
	if strings.Contains("\n"+extra, "\nruntimes:") {
		return ""
	}
	return "runtimes: {docker: \"\", containerd: \"\", crio: \"\"}\n"
}
