package testbed

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/imdsguard/imdsguard/internal/testenv"
)

// Debian docker.io's binaries.
const (
	DockerdPath = "/usr/sbin/dockerd"
	DockerPath  = "/usr/bin/docker"
)

// DockerBridge is --bip of a test dockerd: docker0's address and the
// containers' network (172.31.250.2 is the first container).
const (
	DockerBridge    = "172.31.250.1/24"
	DockerGatewayV4 = "172.31.250.1"
)

// dockerdStopGrace is how long a dockerd may take to stop its containers
// and its containerd after SIGTERM.
const dockerdStopGrace = 20 * time.Second

// Dockerd is a dockerd running inside a test's network namespace (a Host's
// host namespace), with its own data root, exec root, pid file, socket and
// an empty daemon.json: it shares nothing with a dockerd of the machine.
// It starts its own containerd (under ExecRoot/containerd), and its iptables
// rules (FORWARD policy DROP, DOCKER-* chains, MASQUERADE for its bridge)
// land in that namespace only.
//
// It runs through nsenter --net, not `ip netns exec`: the latter remounts
// /sys, the cgroup mounts vanish and dockerd refuses to start.
type Dockerd struct {
	e        *Env
	NS       string
	DataRoot string
	ExecRoot string
	Sock     string // unix socket path (-H unix://Sock)
	PidFile  string
	Restarts int
	// Containerd is the containerd socket dockerd uses (--containerd); ""
	// lets dockerd choose: /run/containerd/containerd.sock when a
	// containerd answers there (a cluster test's, which may stop under
	// it), else one it starts itself.
	Containerd string
	proc       *Proc
	procs      []*Proc // every dockerd process started, for the logs
}

// StartDockerd starts dockerd in the named network namespace and waits
// until it answers. When the test ends every container is removed, then
// dockerd is stopped (it stops its containerd) and reaped; its output is
// shown if the test failed.
func (e *Env) StartDockerd(ns string) *Dockerd {
	e.T.Helper()
	return e.StartDockerdOn(ns, "")
}

// StartDockerdOn is StartDockerd on the containerd at containerdSock (a
// Containerd's Sock; "" = dockerd's choice): a test that must not share
// /run/containerd/containerd.sock with a cluster test running beside it.
func (e *Env) StartDockerdOn(ns, containerdSock string) *Dockerd {
	e.T.Helper()
	for _, p := range []string{DockerdPath, DockerPath, "/usr/bin/nsenter"} {
		if _, err := os.Stat(p); err != nil {
			testenv.Skipf(e.T, "no %s: scripts/install-test-deps.sh installs docker.io and util-linux", p)
		}
	}
	short := e.shortDir()
	d := &Dockerd{
		e: e, NS: ns,
		DataRoot: e.Path("docker-data"),
		ExecRoot: filepath.Join(short, "x"),
		Sock:     filepath.Join(short, "docker.sock"),
		PidFile:  filepath.Join(short, "dockerd.pid"),

		Containerd: containerdSock,
	}
	e.T.Cleanup(d.stop)
	d.start()
	return d
}

// args are dockerd's arguments after nsenter's.
func (d *Dockerd) args() []string {
	conf := d.e.WriteFile("daemon.json", "{}\n")
	var ctd []string
	if d.Containerd != "" {
		ctd = []string{"--containerd", d.Containerd}
	}
	return append([]string{
		"--net=/run/netns/" + d.NS, DockerdPath,
		"--config-file", conf,
		"--data-root", d.DataRoot, "--exec-root", d.ExecRoot, "--pidfile", d.PidFile,
		"-H", "unix://" + d.Sock, "--bip", DockerBridge,
		"--userland-proxy=false", "--shutdown-timeout", "2", "--log-level", "warn",
	}, ctd...)
}

// start starts one dockerd process and waits until the API answers.
func (d *Dockerd) start() {
	t := d.e.T
	t.Helper()
	p, err := startProc(ProcSpec{Name: "dockerd", Path: "/usr/bin/nsenter", Args: d.args()})
	if err != nil {
		t.Fatal(err)
	}
	p.StopGrace = dockerdStopGrace
	d.proc, d.procs = p, append(d.procs, p)
	deadline := time.Now().Add(2 * readyTimeout)
	for {
		if r := d.e.Run(d.Docker("version", "--format", "{{.Server.Version}}")); r.Err == nil {
			return
		}
		if done, err := p.Exited(); done {
			t.Fatalf("dockerd exited while starting: %v\n%s", err, p.Logs())
		}
		if time.Now().After(deadline) {
			t.Fatalf("dockerd does not answer on %s after %v\n%s", d.Sock, 2*readyTimeout, p.Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Restart stops dockerd (its containers stop with it) and starts it again
// with the same roots, the way `systemctl restart docker` does; it returns
// how long dockerd was away.
func (d *Dockerd) Restart() time.Duration {
	d.e.T.Helper()
	start := time.Now()
	if err := d.proc.Stop(); err != nil {
		d.e.T.Fatalf("stop dockerd: %v", err)
	}
	d.Restarts++
	d.start()
	return time.Since(start)
}

// Pid is the running dockerd's pid.
func (d *Dockerd) Pid() int { return d.proc.Pid() }

// stop removes every container, stops dockerd and then makes sure the
// containerd it started is gone too (it is ours: dockerd started it).
func (d *Dockerd) stop() {
	t := d.e.T
	if d.proc == nil {
		return
	}
	if done, _ := d.proc.Exited(); !done {
		if ids := d.e.Run(d.Docker("ps", "-aq")); ids.Err == nil && strings.TrimSpace(ids.Stdout) != "" {
			rm := d.Docker(append([]string{"rm", "-f"}, strings.Fields(ids.Stdout)...)...)
			if r := d.e.Run(rm); r.Err != nil {
				t.Errorf("remove containers: %v", r)
			}
		}
	}
	ctrdPid := readPid(filepath.Join(d.ExecRoot, "containerd", "containerd.pid"))
	if err := d.proc.Stop(); err != nil {
		t.Errorf("stop dockerd: %v", err)
	}
	if ctrdPid > 0 && alive(ctrdPid) {
		t.Errorf("dockerd's containerd (pid %d) outlived dockerd: killing it", ctrdPid)
		_ = syscall.Kill(ctrdPid, syscall.SIGKILL)
	}
	if points, err := unmountUnder(d.ExecRoot, d.DataRoot); err != nil {
		t.Errorf("after dockerd: %v", err)
	} else if len(points) > 0 {
		t.Logf("dockerd left %d mounts; unmounted %s", len(points), strings.Join(points, ", "))
	}
	if t.Failed() {
		for _, p := range d.procs {
			t.Logf("%s", p.Logs())
		}
	}
}

// readPid reads a pid file; 0 when there is none.
func readPid(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// alive reports whether pid still runs (after a short grace for exiting).
func alive(pid int) bool {
	for i := 0; i < 50; i++ {
		if syscall.Kill(pid, 0) != nil {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// Docker is the docker CLI talking to this dockerd.
func (d *Dockerd) Docker(args ...string) Cmd {
	return Cmd{
		Name: "docker " + firstArg(args), Path: DockerPath,
		Args: append([]string{"-H", "unix://" + d.Sock}, args...),
		Env:  []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + d.e.Path("docker-home")},
	}
}

func firstArg(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return args[0]
}

// MustDocker runs the docker CLI and fails the test on error; it returns
// stdout without surrounding space.
func (d *Dockerd) MustDocker(args ...string) string {
	d.e.T.Helper()
	r := d.e.Run(d.Docker(args...))
	if r.Err != nil {
		d.e.T.Fatalf("%v", r)
	}
	return strings.TrimSpace(r.Stdout)
}

// Import makes image name from rootTar (`docker import`); changes are
// Dockerfile instructions (--change), e.g. `ENTRYPOINT ["/bin/sh"]`.
func (d *Dockerd) Import(rootTar, name string, changes ...string) {
	d.e.T.Helper()
	args := []string{"import"}
	for _, c := range changes {
		args = append(args, "--change", c)
	}
	d.MustDocker(append(args, rootTar, name)...)
}

// RunDetached starts a container (`docker run -d OPTS... IMAGE CMD...`; put
// the image in args) and returns its 64-hex id.
func (d *Dockerd) RunDetached(args ...string) string {
	d.e.T.Helper()
	id := d.MustDocker(append([]string{"run", "-d"}, args...)...)
	if len(id) != 64 {
		d.e.T.Fatalf("docker run -d: want a 64-hex container id, got %q", id)
	}
	return id
}

// Exec is `docker exec CONTAINER ARGS...` as a Cmd.
func (d *Dockerd) Exec(container string, args ...string) Cmd {
	c := d.Docker(append([]string{"exec", container}, args...)...)
	c.Name = "docker exec " + strings.Join(args, " ")
	return c
}

// Start runs `docker ARGS...` as a long-running child (docker run in the
// foreground: the container's output is the child's, and SIGTERM to the
// CLI is passed to the container). Stopped when the test ends.
func (d *Dockerd) Start(name string, args ...string) *Proc {
	d.e.T.Helper()
	c := d.Docker(args...)
	return StartProc(d.e.T, ProcSpec{Name: name, Path: c.Path, Args: c.Args, Env: c.Env})
}

// String names the daemon for messages.
func (d *Dockerd) String() string {
	return fmt.Sprintf("dockerd (pid %d, netns %s)", d.proc.Pid(), d.NS)
}

// unmountUnder detaches every mount below the directories (deepest first)
// and returns the mount points. dockerd leaves one on shutdown: the bind
// mount of the "default" sandbox at ExecRoot/netns/default, which would keep
// the test's host namespace alive and its directory busy.
func unmountUnder(dirs ...string) ([]string, error) {
	return unmountWhere(func(p string) bool {
		for _, d := range dirs {
			if strings.HasPrefix(p, d+"/") {
				return true
			}
		}
		return false
	})
}

// unmountWhere detaches every mount whose mount point matches (deepest
// first) and returns the mount points.
func unmountWhere(match func(point string) bool) ([]string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var points []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 5 && match(f[4]) {
			points = append(points, f[4])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(points)))
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil {
			return points, fmt.Errorf("unmount %s: %w", p, err)
		}
	}
	return points, nil
}
