package redirect

import (
	"fmt"
	"os"
	"testing"

	"github.com/vishvananda/netns"
)

// TestMain guards the machine: the privileged tests work in throwaway
// namespaces only, and this proves it by checking that the machine's own
// namespace holds no imdsguard chain after them (unless it did before).
func TestMain(m *testing.M) {
	root := os.Geteuid() == 0
	if h, err := netns.Get(); err == nil {
		hostNetns = h // no thread has switched namespace yet
	}
	var before bool
	if root {
		_, before = rootHasImdsguard()
	}
	code := m.Run()
	if root && !before {
		if where, after := rootHasImdsguard(); after {
			fmt.Fprintf(os.Stderr, "FAIL: the tests left imdsguard rules in the machine's own namespace (%s)\n", where)
			code = 1
		}
	}
	os.Exit(code)
}
