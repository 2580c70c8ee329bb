package testbed

import (
	"os"
	"testing"
)

// TargetTestsEnv names the variable that turns on the tests of targets the
// daemon does not meet yet (make target-tests sets it).
const TargetTestsEnv = "IMDSGUARD_TARGET_TESTS"

// RequireTargetTests skips t unless TargetTestsEnv is 1. It is for real
// tests of an open issue's target that the daemon misses today (what says
// why): they stay runnable and honest, outside `make test` until the
// daemon meets them. Never for a test that passes.
func RequireTargetTests(t testing.TB, what string) {
	t.Helper()
	if os.Getenv(TargetTestsEnv) != "1" {
		t.Skipf("target not met yet (%s): run it with %s=1 (make target-tests)", what, TargetTestsEnv)
	}
}
