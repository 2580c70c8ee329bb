// Package testenv decides what a test does when the machine lacks what it
// needs (root, a Debian package, a built tool): skip with the reason, so
// that `go test ./...` runs anywhere, except under `make test`, which
// installs everything first and sets NoSkipEnv: there a missing piece is a
// failure, so that a broken dependency install cannot pass CI as a row of
// skipped tests.
package testenv

import (
	"fmt"
	"os"
)

// TB is the part of testing.TB that the test harnesses (internal/netnstest,
// tools/testbed) use. A *testing.T is one; so is the runner of a program
// built on the same harness that is not a test (the demo, the benchmarks:
// tools/testbed.Main).
type TB interface {
	Helper()
	Cleanup(func())
	Error(args ...any)
	Errorf(format string, args ...any)
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Failed() bool
	Logf(format string, args ...any)
	Skip(args ...any)
	TempDir() string
}

// NoSkipEnv, set to 1 (make test and make e2e do), turns Skipf into a
// failure.
const NoSkipEnv = "IMDSGUARD_NO_SKIP"

// Strict reports whether NoSkipEnv is set.
func Strict() bool { return os.Getenv(NoSkipEnv) == "1" }

// Skipf skips t with the reason, or fails it with the same reason when
// Strict: the test could not run where every test must.
func Skipf(t TB, format string, args ...any) {
	t.Helper()
	reason := fmt.Sprintf(format, args...)
	if Strict() {
		t.Fatalf("cannot run here, and %s=1 forbids skipping: %s", NoSkipEnv, reason)
	}
	t.Skip(reason)
}
