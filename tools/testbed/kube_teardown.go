package testbed

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// KubeLogsEnv names a directory: when set and a cluster test fails, every
// daemon's whole output is written there (the failure message shows tails).
const KubeLogsEnv = "IMDSGUARD_KUBE_LOGS"

// drain removes every pod the way a node is emptied: the controllers stop
// first (nothing recreates a pod), static pods' manifests go, then every
// pod is deleted through the API with a one-second grace, and the kubelet
// stops their containers and sandboxes through the CRI (which removes the
// pod network namespaces and runs CNI DEL). It then waits until containerd
// runs no task. Whatever is left is for removeTasks, which reports it.
func (c *Cluster) drain() {
	t := c.e.T
	start := time.Now()
	if err := c.controllerManager.Stop(); err != nil {
		t.Errorf("cluster: %v", err)
	}
	// Without leader election, kube-scheduler 1.30 ends on SIGTERM with
	// "finished without leader elect" and status 1; it keeps no state.
	if err := c.scheduler.Kill(); err != nil {
		t.Errorf("cluster: %v", err)
	}
	if err := removeDirFiles(c.StaticPodDir); err != nil {
		t.Errorf("cluster: %v", err)
	}
	if !c.running(c.apiserver, c.kubelet, c.containerd) {
		return
	}
	del := c.Kubectl("delete", "pods", "--all", "--all-namespaces", "--grace-period=1", "--wait=true", "--timeout=60s")
	del.Timeout = 70 * time.Second
	if r := c.e.Run(del); r.Err != nil {
		t.Errorf("cluster: drain: %v", r)
		return
	}
	deadline := time.Now().Add(kubeWait)
	for len(c.ctrIDs("tasks", "ls")) > 0 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("cluster: drained in %v", time.Since(start).Round(time.Millisecond))
}

// running reports whether every p still runs.
func (c *Cluster) running(procs ...*Proc) bool {
	for _, p := range procs {
		if done, _ := p.Exited(); done {
			return false
		}
	}
	return true
}

// removeDirFiles removes the files in dir.
func removeDirFiles(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, en := range entries {
		if err := os.Remove(filepath.Join(dir, en.Name())); err != nil {
			return err
		}
	}
	return nil
}

// diagnose, when the test failed, logs the cluster's state (nodes, pods,
// events, containerd's tasks, the node namespace's connection tracking)
// and, with KubeLogsEnv set, writes every daemon's output there. Each
// daemon's log tail is logged by its Proc's own cleanup.
func (c *Cluster) diagnose() {
	t := c.e.T
	if !t.Failed() {
		return
	}
	var b strings.Builder
	for _, args := range [][]string{
		{"get", "nodes", "-o", "wide"},
		{"get", "pods", "-A", "-o", "wide"},
		{"get", "events", "-A", "--sort-by=.lastTimestamp"},
	} {
		r := c.e.Run(c.Kubectl(args...))
		fmt.Fprintf(&b, "--- kubectl %s: %v\n%s%s", strings.Join(args, " "), r.Err, r.Stdout, r.Stderr)
	}
	r := c.e.Run(c.Ctr("tasks", "ls"))
	fmt.Fprintf(&b, "--- ctr -n %s tasks ls: %v\n%s%s", KubeCtrNamespace, r.Err, r.Stdout, r.Stderr)
	ct := c.e.Run(Cmd{Name: "conntrack", Path: "/usr/sbin/conntrack", Args: []string{"-L"}, NS: c.NS, Env: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}})
	fmt.Fprintf(&b, "--- conntrack -L (node namespace, not loopback): %v\n%s%s", ct.Err, notLoopback(ct.Stdout, 50), ct.Stderr)
	t.Logf("cluster state at the failure:\n%s", b.String())
	c.saveLogs()
}

// saveLogs writes each daemon's whole output into $KubeLogsEnv.
func (c *Cluster) saveLogs() {
	dir := os.Getenv(KubeLogsEnv)
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		c.e.T.Errorf("cluster: %v", err)
		return
	}
	for _, p := range c.procs {
		out := fmt.Sprintf("--- stderr\n%s\n--- stdout\n%s", p.Stderr(), p.Stdout())
		if err := os.WriteFile(filepath.Join(dir, p.Name+".log"), []byte(out), 0o644); err != nil {
			c.e.T.Errorf("cluster: %v", err)
		}
	}
	c.e.T.Logf("cluster: daemons' logs written to %s", dir)
}

// notLoopback keeps at most n lines of conntrack's list that do not
// involve 127.0.0.1 (the control plane's own connections).
func notLoopback(list string, n int) string {
	var b strings.Builder
	for _, line := range strings.Split(list, "\n") {
		if line == "" || strings.Contains(line, "=127.0.0.1 ") {
			continue
		}
		if n--; n < 0 {
			b.WriteString("[...]\n")
			break
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}
