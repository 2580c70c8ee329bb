package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/internal/netnstest"
	"github.com/imdsguard/imdsguard/internal/testenv"
	"github.com/imdsguard/imdsguard/tools/testbed"
)

// demoUser is the non-root user the demo makes (tools/cmd/demo).
const demoUser = "imdstest-demo"

// demoTimeout bounds one run of the demo (about 6 s on an idle machine).
const demoTimeout = 3 * time.Minute

// demoRun is bin/demo running in a process group of its own: whatever it
// leaves running can be found by that group.
type demoRun struct {
	cmd            *exec.Cmd
	stdout, stderr syncBuffer
	done           chan struct{}
	err            error // Wait's result, set before done closes
}

// startDemo checks what the demo needs (skipping without it) and starts it.
func startDemo(t *testing.T) *demoRun {
	t.Helper()
	e := testbed.New(t)
	netnstest.RequireRoot(t)
	e.RequireBins("demo", "aemm", "imdsguard", "imdsclient")
	for _, p := range []string{testbed.CurlPath, testbed.Python, testbed.AWSCLI, testbed.EC2MetadataPath, testbed.EC2MetadataCU} {
		if _, err := os.Stat(p); err != nil {
			testenv.Skipf(t, "no %s: run scripts/install-test-deps.sh", p)
		}
	}
	r := &demoRun{cmd: exec.Command(e.Bin("demo")), done: make(chan struct{})}
	r.cmd.Dir = e.Root
	r.cmd.Stdout, r.cmd.Stderr = &r.stdout, &r.stderr
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", e.Bin("demo"), err)
	}
	go func() {
		r.err = r.cmd.Wait()
		close(r.done)
	}()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// wait waits for the demo to end and returns its exit status.
func (r *demoRun) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(demoTimeout):
		t.Fatalf("demo still running after %v; output so far:\n%s\n%s", demoTimeout, r.stdout.String(), r.stderr.String())
	}
	return r.cmd.ProcessState.ExitCode()
}

// exited reports whether the demo has ended.
func (r *demoRun) exited() (bool, error) {
	select {
	case <-r.done:
		return true, r.err
	default:
		return false, nil
	}
}

// stop interrupts a demo still running (it then removes what it made) and
// kills it when it does not end within 20 s.
func (r *demoRun) stop(t *testing.T) {
	select {
	case <-r.done:
		return
	default:
	}
	_ = r.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-r.done:
	case <-time.After(20 * time.Second):
		t.Errorf("demo (pid %d) ignored SIGINT for 20 s; killing it", r.cmd.Process.Pid)
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

// syncBuffer is a bytes.Buffer the child's output goroutine and the test
// can use at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// userExists reports whether the Unix user name exists.
func userExists(name string) bool {
	_, err := user.Lookup(name)
	return err == nil
}

// checkNothingLeft: after the demo (pid) ended, no namespace of its (named
// "<role>-PID-N") exists, no process of its process group runs (any found
// is killed), and its user exists only if it existed before.
func checkNothingLeft(t *testing.T, pid int, userBefore bool) {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Errorf("ip netns list: %v: %s", err, out)
	}
	if ns := regexp.MustCompile(`(?m)^\S+-`+strconv.Itoa(pid)+`-\d+\b.*$`).FindAllString(string(out), -1); ns != nil {
		t.Errorf("namespaces left behind: %q", ns)
	}
	for _, p := range processGroup(pid) {
		t.Errorf("process left behind: pid %d (%s); killing it", p.pid, p.comm)
		_ = syscall.Kill(p.pid, syscall.SIGKILL)
	}
	if userExists(demoUser) && !userBefore {
		t.Errorf("user %s left behind", demoUser)
	}
}

// groupProc is a process found by processGroup.
type groupProc struct {
	pid  int
	comm string
}

// processGroup lists the running processes whose process group is pgid.
func processGroup(pgid int) []groupProc {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []groupProc
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil { // it exited meanwhile
			continue
		}
		s := string(b)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open {
			continue
		}
		// After "(comm)": state, ppid, pgrp, ...
		fields := strings.Fields(s[end+1:])
		if len(fields) < 3 || fields[2] != strconv.Itoa(pgid) {
			continue
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(s[:open]))
		out = append(out, groupProc{pid: pid, comm: s[open+1 : end]})
	}
	return out
}
