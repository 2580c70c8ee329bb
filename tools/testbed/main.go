package testbed

import (
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"

	"github.com/imdsguard/imdsguard/internal/testenv"
)

// TB is what the harness needs of its caller: a *testing.T in the tests,
// the runner of Main in the programs built on it (the demo, the benchmarks).
type TB = testenv.TB

// Main runs body as a program, not a test, on the same harness the tests
// use: Fatal ends body, Cleanup functions run in reverse order once body
// has ended, also after a failure or on SIGINT/SIGTERM (then the exit
// status is 130 or 143). It returns the exit status: 0, or 1 when body
// failed. Harness messages (Logf, Error) go to stderr.
func Main(body func(t TB)) int {
	p := &program{}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	done := make(chan struct{})
	go func() {
		defer close(done)
		body(p)
	}()
	select {
	case <-done:
	case s := <-sigs:
		fmt.Fprintf(os.Stderr, "%v: stopping, and removing what was made\n", s)
		p.cleanup()
		return 128 + int(s.(syscall.Signal))
	}
	p.cleanup()
	if p.Failed() {
		return 1
	}
	return 0
}

// program is Main's TB.
type program struct {
	mu       sync.Mutex
	failed   bool
	cleanups []func()
	once     sync.Once
}

func (p *program) Helper() {}

func (p *program) Cleanup(f func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cleanups = append(p.cleanups, f)
}

// cleanup runs the cleanups, last added first, once.
func (p *program) cleanup() {
	p.once.Do(func() {
		for {
			p.mu.Lock()
			n := len(p.cleanups)
			if n == 0 {
				p.mu.Unlock()
				return
			}
			f := p.cleanups[n-1]
			p.cleanups = p.cleanups[:n-1]
			p.mu.Unlock()
			p.runCleanup(f)
		}
	})
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
	fmt.Fprintf(os.Stderr, format+"\n", args...)
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
	return p.failed
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
