package testbed

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/imdsguard/imdsguard/internal/netnstest"
)

// Deadlines for stopping a child: SIGTERM, then SIGKILL.
const (
	stopGrace = 5 * time.Second
	killGrace = 2 * time.Second
	logTail   = 16 << 10
)

// ProcSpec says how to start a long-running child process.
type ProcSpec struct {
	Name string   // for messages; defaults to the base name of Path
	Path string   // executable
	Args []string // arguments
	Env  []string // added to this process's environment
	NS   string   // network namespace to run in (through `ip netns exec`); "" = this one
}

// Proc is a started child. A goroutine Waits for it from the start, so it
// is reaped whenever it exits; Stop ends it.
type Proc struct {
	Name      string
	StopGrace time.Duration // how long Stop waits after SIGTERM; default stopGrace
	cmd       *exec.Cmd
	stdout    logBuf
	stderr    logBuf
	done      chan struct{}
	err       error // Wait's result, set before done closes
}

// StartProc starts spec and registers a cleanup that stops it and, when the
// test failed, logs the tail of its output.
func StartProc(t TB, spec ProcSpec) *Proc {
	t.Helper()
	p, err := startProc(spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("stop %s: %v", p.Name, err)
		}
		if t.Failed() {
			t.Logf("%s", p.Logs())
		}
	})
	return p
}

func startProc(spec ProcSpec) (*Proc, error) {
	name := spec.Name
	if name == "" {
		name = spec.Path[strings.LastIndexByte(spec.Path, '/')+1:]
	}
	cmd := exec.Command(spec.Path, spec.Args...)
	if spec.NS != "" {
		cmd = netnstest.Command(spec.NS, spec.Path, spec.Args...)
	}
	cmd.Env = append(os.Environ(), spec.Env...)
	p := &Proc{Name: name, StopGrace: stopGrace, cmd: cmd, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &p.stdout, &p.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Pid is the child's process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Done is closed once the child has exited and been reaped.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the child has exited, and Wait's error if so.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Signal sends sig to the child unless it already exited.
func (p *Proc) Signal(sig os.Signal) error {
	if done, _ := p.Exited(); done {
		return nil
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal %s %v: %w", p.Name, sig, err)
	}
	return nil
}

// Stop sends SIGTERM, waits up to StopGrace, then SIGKILL and waits again.
// It is safe to call more than once. A child that exited by itself with an
// error, or that needed SIGKILL, is reported.
func (p *Proc) Stop() error {
	if done, err := p.Exited(); done {
		return exitErr(p.Name, err)
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-p.done:
		return exitErr(p.Name, p.err)
	case <-time.After(p.StopGrace):
	}
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
		return fmt.Errorf("%s ignored SIGTERM for %v; killed", p.Name, p.StopGrace)
	case <-time.After(killGrace):
		return fmt.Errorf("%s survived SIGKILL for %v", p.Name, killGrace)
	}
}

// exitErr accepts a clean exit and the SIGTERM we sent.
func exitErr(name string, err error) error {
	var ee *exec.ExitError
	if err == nil {
		return nil
	}
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM {
			return nil
		}
	}
	return fmt.Errorf("%s exited: %w", name, err)
}

// Stdout and Stderr return what the child wrote so far.
func (p *Proc) Stdout() string { return p.stdout.String() }
func (p *Proc) Stderr() string { return p.stderr.String() }

// Logs returns the tails of both outputs, labelled, for failure messages.
func (p *Proc) Logs() string {
	return fmt.Sprintf("--- %s (pid %d) stderr:\n%s\n--- %s stdout:\n%s",
		p.Name, p.Pid(), p.stderr.tail(logTail), p.Name, p.stdout.tail(logTail))
}
