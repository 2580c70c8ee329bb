package testbed

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/imdsguard/imdsguard/internal/testenv"
)

// Output is how a command run by RunCombined ended.
type Output struct {
	Out string // stdout and stderr, interleaved
	Err error  // nil when it exited 0
}

func (o Output) String() string { return fmt.Sprintf("err=%v\n%s", o.Err, o.Out) }

// RunCombined runs name to completion with env added to this process's
// environment; it is killed and reaped at timeout. Unlike Env.Run it keeps
// stdout and stderr in one stream, in the order the command wrote them, for
// tools (systemd-analyze, dpkg, iptables-save) whose messages go to either.
func RunCombined(timeout time.Duration, env []string, name string, args ...string) Output {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = time.Second
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s: killed after %v: %w", name, timeout, err)
	}
	return Output{Out: out.String(), Err: err}
}

// MustRun runs name (for two minutes at most) and fails t unless it exits
// 0; it returns stdout and stderr, interleaved.
func MustRun(t TB, name string, args ...string) string {
	t.Helper()
	r := RunCombined(2*time.Minute, nil, name, args...)
	if r.Err != nil {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), r)
	}
	return r.Out
}

// RequireTools skips t, saying which Debian packages to install, when any
// of the named programs is not on PATH.
func RequireTools(t TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			testenv.Skipf(t, "%s not found: apt-get install systemd util-linux curl (it is part of those)", n)
		}
	}
}
