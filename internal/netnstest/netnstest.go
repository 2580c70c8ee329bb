// Package netnstest gives privileged tests throwaway network namespaces: made
// with iproute2, entered on a locked OS thread, removed when the test ends,
// also when it fails. Tests that use it skip, with the reason, when not root.
package netnstest

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"

	"github.com/vishvananda/netns"

	"github.com/imdsguard/imdsguard/internal/testenv"
)

var seq atomic.Uint32

// RequireRoot skips t unless the test runs as root, which network namespaces
// and netfilter need. CI runs as root, so these tests run there.
func RequireRoot(t testenv.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Skipf(t, "needs root (network namespaces, netfilter); CI runs it as root: sudo make test")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		testenv.Skipf(t, "needs iproute2's ip: sudo make test installs it")
	}
}

// New makes a network namespace named after prefix, unique to this process,
// with lo up, and removes it when the test ends. It returns the name.
func New(t testenv.TB, prefix string) string {
	t.Helper()
	RequireRoot(t)
	name := fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), seq.Add(1))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	IP(t, name, "link", "set", "lo", "up")
	return name
}

// IP runs `ip -n ns ARGS...` and fails the test on error.
func IP(t testenv.TB, ns string, args ...string) {
	t.Helper()
	Run(t, "ip", append([]string{"-n", ns}, args...)...)
}

// Run runs a command to completion and fails the test on error.
func Run(t testenv.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Command returns a command that runs inside ns (through `ip netns exec`).
// The caller starts it and must Wait for it.
func Command(ns, name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

// Do runs f on an OS thread switched into ns and switches back afterwards.
// Sockets made inside f stay in ns after it returns.
func Do(ns string, f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return fmt.Errorf("get current netns: %w", err)
	}
	defer orig.Close()
	target, err := netns.GetFromName(ns)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", ns, err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		return fmt.Errorf("enter netns %s: %w", ns, err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			panic(fmt.Sprintf("netnstest: cannot return to the original netns: %v", err))
		}
	}()
	return f()
}

// Veth joins namespaces a and b with a veth pair named ifA (in a) and ifB (in
// b), gives each end its address (CIDR form, e.g. "192.0.2.1/24"; "" for
// none) and brings both up. Removing either namespace removes the pair.
func Veth(t testenv.TB, a, ifA, addrA, b, ifB, addrB string) {
	t.Helper()
	IP(t, a, "link", "add", ifA, "type", "veth", "peer", "name", ifB, "netns", b)
	for _, end := range []struct{ ns, dev, addr string }{{a, ifA, addrA}, {b, ifB, addrB}} {
		if end.addr != "" {
			args := []string{"addr", "add", end.addr, "dev", end.dev}
			if strings.Contains(end.addr, ":") {
				args = []string{"-6", "addr", "add", end.addr, "dev", end.dev, "nodad"}
			}
			IP(t, end.ns, args...)
		}
		IP(t, end.ns, "link", "set", end.dev, "up")
	}
}
