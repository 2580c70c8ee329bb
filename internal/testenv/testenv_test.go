package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestSkipfFailsWhenStrict runs a child test twice: without NoSkipEnv it is
// skipped, with it it fails, both with the reason.
func TestSkipfFailsWhenStrict(t *testing.T) {
	if os.Getenv("TESTENV_CHILD") == "1" {
		Skipf(t, "no %s here", "widget")
		return
	}
	for _, c := range []struct {
		strict string
		want   string
		fails  bool
	}{
		{"", "--- SKIP", false},
		{"1", "--- FAIL", true},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSkipfFailsWhenStrict$", "-test.v")
		cmd.Env = append(os.Environ(), "TESTENV_CHILD=1", NoSkipEnv+"="+c.strict)
		out, err := cmd.CombinedOutput()
		if (err != nil) != c.fails || !strings.Contains(string(out), c.want) || !strings.Contains(string(out), "no widget here") {
			t.Errorf("%s=%q: err %v, want %s with the reason; output:\n%s", NoSkipEnv, c.strict, err, c.want, out)
		}
	}
}
