package testbed

import (
	"time"
)

// WaitFor polls cond every 20 ms until it holds; it fails t, naming what,
// after readyTimeout.
func WaitFor(t TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(readyTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v", what, readyTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
