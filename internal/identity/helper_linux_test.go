package identity

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/internal/netnstest"
)

// The privileged tests' client processes are this test binary, re-executed
// with helperEnv set: TestMain runs the helper instead of the tests.
const helperEnv = "IDENTITY_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		if err := runHelper(mode, os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	code := m.Run()
	if helperDir != "" {
		os.RemoveAll(helperDir)
	}
	os.Exit(code)
}

// runHelper is the client process. Modes:
//
//	dial ADDR                  connect to ADDR
//	dial-setuid ADDR UID GID   connect as who it is, then become UID:GID
//	idle N ADDR                open N connections to ADDR
//
// It prints "ready" and holds its connections until stdin closes, then exits
// without closing them (the kernel does, at exit).
func runHelper(mode string, args []string) error {
	var conns []net.Conn
	switch {
	case mode == "dial" && len(args) == 1:
		c, err := net.Dial("tcp", args[0])
		if err != nil {
			return err
		}
		conns = append(conns, c)
	case mode == "dial-setuid" && len(args) == 3:
		c, err := net.Dial("tcp", args[0])
		if err != nil {
			return err
		}
		conns = append(conns, c)
		if err := becomeUser(args[1], args[2]); err != nil {
			return err
		}
	case mode == "idle" && len(args) == 2:
		n, _ := strconv.Atoi(args[0])
		for range n {
			c, err := net.Dial("tcp", args[1])
			if err != nil {
				return err
			}
			conns = append(conns, c)
		}
	default:
		return fmt.Errorf("unknown mode %q %q", mode, args)
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	runtime.KeepAlive(conns)
	return nil
}

func becomeUser(uid, gid string) error {
	u, _ := strconv.Atoi(uid)
	g, _ := strconv.Atoi(gid)
	if err := syscall.Setgroups([]int{g}); err != nil {
		return err
	}
	if err := syscall.Setgid(g); err != nil {
		return err
	}
	return syscall.Setuid(u)
}

var (
	helperOnce sync.Once
	helperDir  string
	helperPath string
	helperErr  error
)

// helperBinary is a copy of the test binary that other users may run: go
// test's own copy sits in a directory only root may enter.
func helperBinary(t testing.TB) string {
	t.Helper()
	helperOnce.Do(func() {
		self, err := os.Executable()
		if err != nil {
			helperErr = err
			return
		}
		if helperDir, helperErr = os.MkdirTemp("", "identity-helper-"); helperErr != nil {
			return
		}
		if helperErr = os.Chmod(helperDir, 0o755); helperErr != nil {
			return
		}
		helperPath = filepath.Join(helperDir, "idhelper")
		helperErr = copyFile(self, helperPath)
	})
	if helperErr != nil {
		t.Fatalf("helper binary: %v", helperErr)
	}
	return helperPath
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o755)
}

// client is a running helper process.
type client struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  bool
}

// Pid is the helper's pid.
func (c *client) Pid() int { return c.cmd.Process.Pid }

// Exit tells the helper to exit and waits for it.
func (c *client) Exit(t testing.TB) {
	t.Helper()
	if c.done {
		return
	}
	c.done = true
	c.stdin.Close()
	if err := c.cmd.Wait(); err != nil {
		t.Errorf("helper %d: %v", c.Pid(), err)
	}
}

// startClient starts the helper inside network namespace ns (it is forked
// from a thread in ns), as cred (nil: root), and waits for it to be ready.
func startClient(t testing.TB, ns string, cred *syscall.Credential, mode string, args ...string) *client {
	t.Helper()
	cmd := exec.Command(helperBinary(t), args...)
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, "GORACE=atexit_sleep_ms=0")
	cmd.Dir = "/"
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := netnstest.Do(ns, cmd.Start); err != nil {
		t.Fatalf("start helper %s in %s: %v", mode, ns, err)
	}
	c := &client{cmd: cmd, stdin: stdin}
	t.Cleanup(func() { c.Exit(t) })
	line, err := readLine(stdout, 10*time.Second)
	if err != nil || line != "ready" {
		t.Fatalf("helper %s %v: %q, %v", mode, args, line, err)
	}
	return c
}

func readLine(r io.Reader, timeout time.Duration) (string, error) {
	type res struct {
		s   string
		err error
	}
	ch := make(chan res, 1)
	go func() {
		s, err := bufio.NewReader(r).ReadString('\n')
		ch <- res{strings.TrimSpace(s), err}
	}()
	select {
	case r := <-ch:
		return r.s, r.err
	case <-time.After(timeout):
		return "", fmt.Errorf("no line in %s", timeout)
	}
}

// nobody is the unprivileged user the clients run as, with one extra group.
var nobody = &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{65534, 100}}

// listen makes a TCP listener inside ns.
func listen(t testing.TB, ns, network, addr string) *net.TCPListener {
	t.Helper()
	var l net.Listener
	err := netnstest.Do(ns, func() (err error) {
		l, err = net.Listen(network, addr)
		return err
	})
	if err != nil {
		t.Fatalf("listen %s in %s: %v", addr, ns, err)
	}
	t.Cleanup(func() { l.Close() })
	return l.(*net.TCPListener)
}

// accept takes the next connection, within a deadline.
func accept(t testing.TB, l *net.TCPListener) *net.TCPConn {
	t.Helper()
	l.SetDeadline(time.Now().Add(10 * time.Second))
	c, err := l.AcceptTCP()
	if err != nil {
		t.Fatalf("accept on %s: %v", l.Addr(), err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// nsExec runs a command inside ns (iptables, sysctl) and fails the test on error.
func nsExec(t testing.TB, ns string, args ...string) {
	t.Helper()
	netnstest.Run(t, "ip", append([]string{"netns", "exec", ns}, args...)...)
}

// newResolver makes a Resolver for namespace ns.
func newResolver(t testing.TB, ns string, o Options) *Resolver {
	t.Helper()
	var r *Resolver
	if err := netnstest.Do(ns, func() error { r = NewResolver(o); return nil }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if r.hostErr != nil || r.selfErr != nil || r.procs.err != nil {
		t.Fatalf("resolver degraded: %v / %v / %v", r.hostErr, r.selfErr, r.procs.err)
	}
	return r
}

// netnsInode is the inode of the namespace ip netns made under that name.
func netnsInode(t testing.TB, ns string) uint64 {
	t.Helper()
	fi, err := os.Stat(filepath.Join(netnsDir, ns))
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}
