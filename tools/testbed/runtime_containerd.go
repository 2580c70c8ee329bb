package testbed

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/imdsguard/imdsguard/internal/testenv"
)

// Debian containerd's binaries. docker.io depends on this same package:
// the containerd a dockerd manages is this binary too, started by dockerd
// with a config, root, state and socket under dockerd's own roots (and
// containerd namespace "moby"), so a standalone one with its own config
// never meets it.
const (
	ContainerdPath = "/usr/bin/containerd"
	CtrPath        = "/usr/bin/ctr"
)

// CtrNamespace is the containerd namespace the tests' containers live in;
// ctr puts a container's cgroup at /CtrNamespace/ID.
const CtrNamespace = "imdsguard-test"

// Containerd is a standalone containerd running inside a test's network
// namespace with a config of its own: root, state, gRPC and ttrpc sockets
// in the test's directories, the CRI plugin off (no kubelet here, and it
// would read /etc/cni), and runc's state (--runc-root) and ctr's fifos
// (--fifo-dir) in the test's directories too. What it still shares with
// the machine: containerd 1.6 puts its shims' sockets in
// /run/containerd/s/ (names hashed from the socket address, so they never
// clash with another containerd's).
type Containerd struct {
	e        *Env
	NS       string
	Root     string
	State    string
	Sock     string
	RuncRoot string
	FifoDir  string
	proc     *Proc
	tasks    []string // containers made with RunDetached, removed at the end
}

// containerdConfig is its config.toml (version 2).
const containerdConfig = `version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.internal.v1.opt", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = %q
[ttrpc]
  address = %q
`

// StartContainerd starts containerd in the named network namespace
// (through nsenter --net, as dockerd) and waits until ctr reaches it. When
// the test ends every task and container made here is deleted, then
// containerd is stopped.
func (e *Env) StartContainerd(ns string) *Containerd {
	e.T.Helper()
	for _, p := range []string{ContainerdPath, CtrPath, "/usr/sbin/runc", "/usr/bin/nsenter"} {
		if _, err := os.Stat(p); err != nil {
			testenv.Skipf(e.T, "no %s: scripts/install-test-deps.sh installs containerd and runc", p)
		}
	}
	short := e.shortDir()
	c := &Containerd{
		e: e, NS: ns,
		Root: e.Path("containerd-root"), State: filepath.Join(short, "s"),
		Sock: filepath.Join(short, "c.sock"), RuncRoot: filepath.Join(short, "runc"), FifoDir: filepath.Join(short, "fifo"),
	}
	conf := e.WriteFile("containerd.toml", fmt.Sprintf(containerdConfig, c.Root, c.State, c.Sock, c.Sock+".ttrpc"))
	c.proc = StartProc(e.T, ProcSpec{
		Name: "containerd", Path: "/usr/bin/nsenter",
		Args: []string{"--net=/run/netns/" + ns, ContainerdPath, "--config", conf, "--log-level", "warn"},
	})
	c.proc.StopGrace = 10 * time.Second
	e.T.Cleanup(c.deleteTasks) // runs before the Proc's own cleanup stops containerd
	WaitFor(e.T, "containerd answers on "+c.Sock, func() bool {
		return e.Run(c.Ctr("version")).Err == nil
	})
	return c
}

// Ctr is the ctr CLI for this containerd, in CtrNamespace.
func (c *Containerd) Ctr(args ...string) Cmd {
	return Cmd{
		Name: "ctr " + firstArg(args), Path: CtrPath,
		Args: append([]string{"--address", c.Sock, "--namespace", CtrNamespace}, args...),
		Env:  []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
	}
}

// MustCtr runs ctr and fails the test on error; it returns stdout.
func (c *Containerd) MustCtr(args ...string) string {
	c.e.T.Helper()
	r := c.e.Run(c.Ctr(args...))
	if r.Err != nil {
		c.e.T.Fatalf("%v", r)
	}
	return r.Stdout
}

// Import imports an OCI image layout tar (`ctr image import`).
func (c *Containerd) Import(ociTar string) {
	c.e.T.Helper()
	c.MustCtr("image", "import", ociTar)
}

// RunDetached starts container id from image with the network namespace
// at netnsPath (ctr run -d --with-ns network:PATH) and argv as its command.
func (c *Containerd) RunDetached(image, id, netnsPath string, argv ...string) {
	c.e.T.Helper()
	args := []string{"run", "-d", "--null-io", "--fifo-dir", c.FifoDir, "--runc-root", c.RuncRoot,
		"--with-ns", "network:" + netnsPath, image, id}
	c.MustCtr(append(args, argv...)...)
	c.tasks = append(c.tasks, id)
}

// Exec runs argv in the running container id (ctr task exec) as a Cmd.
func (c *Containerd) Exec(id, execID string, argv ...string) Cmd {
	cmd := c.Ctr(append([]string{"task", "exec", "--fifo-dir", c.FifoDir, "--exec-id", execID, id}, argv...)...)
	cmd.Name = "ctr task exec " + strings.Join(argv, " ")
	return cmd
}

// TaskPid is the pid of container id's init process.
func (c *Containerd) TaskPid(id string) string {
	c.e.T.Helper()
	for _, line := range strings.Split(c.MustCtr("task", "ls"), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == id {
			return f[1]
		}
	}
	c.e.T.Fatalf("ctr task ls: no task %s", id)
	return ""
}

// deleteTasks kills and deletes every task and container RunDetached made,
// so that no shim or mount outlives the test.
func (c *Containerd) deleteTasks() {
	t := c.e.T
	for _, id := range c.tasks {
		if r := c.e.Run(c.Ctr("task", "delete", "--force", id)); r.Err != nil {
			t.Errorf("delete task %s: %v", id, r)
		}
		if r := c.e.Run(c.Ctr("container", "delete", id)); r.Err != nil {
			t.Errorf("delete container %s: %v", id, r)
		}
	}
}
