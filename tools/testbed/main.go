package testbed

import (
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/imdsguard/imdsguard/internal/testenv"
)

// TB is what the harness needs of its caller: a *testing.T in the tests,
// the runner of Main in the programs built on it (the demo, the benchmarks).
type TB = testenv.TB

// bodyGrace bounds how long Main waits, after a signal, for the body to
// stop before it cleans up under the body's feet.
const bodyGrace = 10 * time.Second

// Main runs body as a program, not a test, on the same harness the tests
// use: Fatal ends body, Cleanup functions run in reverse order once body
// has ended, also after a failure or on SIGINT/SIGTERM. It returns the exit
// status: 0, 1 when body failed, 130 or 143 after a signal. Harness
// messages (Logf, Error) go to stderr.
//
// After a signal, Failed reports true and Logf prints nothing (the output
// of children stopped on purpose is no news): a body that checks Failed
// between its steps stops at the next one, and the cleanups run once it
// has ended, so that nothing it starts meanwhile is left behind. Main
// waits for that at most bodyGrace, or until a second signal.
func Main(body func(t TB)) int {
	p := &program{}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	done := make(chan struct{})
	go func() {
		defer close(done)
		body(p)
	}()
	status := 0
	select {
	case <-done:
	case s := <-sigs:
		status = p.interrupt(s, done, sigs)
	}
	p.cleanup()
	if status == 0 && p.Failed() {
		status = 1
	}
	return status
}

// interrupt marks the program interrupted by s and waits for the body to
// end (done), at most bodyGrace or until another signal. It returns the
// exit status for s.
func (p *program) interrupt(s os.Signal, done <-chan struct{}, sigs <-chan os.Signal) int {
	fmt.Fprintf(os.Stderr, "%v: stopping, and removing what was made\n", s)
	p.mu.Lock()
	p.interrupted = true
	p.mu.Unlock()
	select {
	case <-done:
	case <-sigs:
	case <-time.After(bodyGrace):
	}
	return 128 + int(s.(syscall.Signal))
}

// program is Main's TB.
type program struct {
	mu          sync.Mutex
	failed      bool
	interrupted bool // by a signal: Failed, and Logf is silent
	cleanups    Cleanups
	once        sync.Once
}

func (p *program) Helper() {}

func (p *program) Cleanup(f func()) { p.cleanups.Add(f) }

// cleanup runs the cleanups, last added first, once.
func (p *program) cleanup() {
	p.once.Do(func() { p.cleanups.Run(p.runCleanup) })
}

// runCleanup runs f; a panic in it is reported, and the others still run.
func (p *program) runCleanup(f func()) {
	defer func() {
		if r := recover(); r != nil {
			p.Errorf("cleanup panicked: %v", r)
		}
	}()
	f()
}

func (p *program) Logf(format string, args ...any) {
	p.mu.Lock()
	quiet := p.interrupted
	p.mu.Unlock()
	if !quiet {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
	}
}

func (p *program) Error(args ...any) { p.fail(fmt.Sprintln(args...)) }

func (p *program) Errorf(format string, args ...any) { p.fail(fmt.Sprintf(format, args...) + "\n") }

func (p *program) fail(msg string) {
	p.mu.Lock()
	p.failed = true
	p.mu.Unlock()
	fmt.Fprint(os.Stderr, "error: "+msg)
}

func (p *program) Failed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failed || p.interrupted
}

// Fatal, Fatalf and Skip end the body's goroutine: like a test, a program
// may call them only from the goroutine that runs body. A program cannot
// be skipped: what a test would skip for (no root, a missing tool) fails it.
func (p *program) Fatal(args ...any) { p.Error(args...); runtime.Goexit() }

func (p *program) Fatalf(format string, args ...any) { p.Errorf(format, args...); runtime.Goexit() }

func (p *program) Skip(args ...any) {
	p.Error(append([]any{"cannot run here:"}, args...)...)
	runtime.Goexit()
}

// TempDir makes a directory that the cleanups remove.
func (p *program) TempDir() string {
	dir, err := os.MkdirTemp("", "imdsguard-")
	if err != nil {
		p.Fatalf("temporary directory: %v", err)
	}
	p.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
