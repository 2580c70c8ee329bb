package main

import (
	"fmt"
	"os"
	"runtime"
	"sync"

	"github.com/imdsguard/imdsguard/tools/testbed"
)

// scope is a TB for one measured run inside the program: its cleanups (the
// daemon, AEMM, the namespaces) run when the run ends, also when it
// failed, so that the next run starts on a clean machine; failures are
// passed on to the program's TB.
type scope struct {
	parent   testbed.TB
	name     string
	mu       sync.Mutex
	failed   bool
	cleanups testbed.Cleanups
}

// inScope runs body on a goroutine of its own with a fresh scope (Fatal
// ends that goroutine), then the scope's cleanups, last added first. It
// reports whether body finished without failing.
func inScope(parent testbed.TB, name string, body func(t testbed.TB)) bool {
	s := &scope{parent: parent, name: name}
	// Should the program end first (a signal: testbed.Main cleans up after
	// a grace period, under the body's feet), its cleanups run these too.
	parent.Cleanup(s.cleanup)
	done := make(chan struct{})
	go func() {
		defer close(done)
		body(s)
	}()
	<-done
	s.cleanup()
	return !s.Failed()
}

// cleanup runs the cleanups added so far, last added first, each once.
func (s *scope) cleanup() { s.cleanups.Run(func(f func()) { f() }) }

func (s *scope) Helper() {}

func (s *scope) Cleanup(f func()) { s.cleanups.Add(f) }

func (s *scope) Error(args ...any) { s.fail(fmt.Sprint(args...)) }

func (s *scope) Errorf(format string, args ...any) { s.fail(fmt.Sprintf(format, args...)) }

func (s *scope) fail(msg string) {
	s.mu.Lock()
	s.failed = true
	s.mu.Unlock()
	s.parent.Errorf("%s: %s", s.name, msg)
}

func (s *scope) Fatal(args ...any) { s.Error(args...); runtime.Goexit() }

func (s *scope) Fatalf(format string, args ...any) { s.Errorf(format, args...); runtime.Goexit() }

func (s *scope) Skip(args ...any) { s.Fatal(append([]any{"cannot run here:"}, args...)...) }

// Failed is true once this run failed, or the program did (a signal).
func (s *scope) Failed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed || s.parent.Failed()
}

func (s *scope) Logf(format string, args ...any) { s.parent.Logf(s.name+": "+format, args...) }

// TempDir makes a directory removed when the run ends.
func (s *scope) TempDir() string {
	dir, err := os.MkdirTemp("", "imdsguard-rules-")
	if err != nil {
		s.Fatalf("temporary directory: %v", err)
	}
	s.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
