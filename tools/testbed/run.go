package testbed

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// runTimeout bounds any client run by Run unless Cmd.Timeout says otherwise.
const runTimeout = 20 * time.Second

// Cmd is a short-lived command, typically an IMDS client.
type Cmd struct {
	Name    string // for messages
	Path    string
	Args    []string
	Env     []string            // the whole environment (see Env.ClientEnv)
	NS      string              // network namespace; "" = this one
	Cred    *syscall.Credential // run as this uid/gid and supplementary Groups (policy tests); nil = as the test
	Timeout time.Duration       // default runTimeout
}

// Result is how a Cmd ended.
type Result struct {
	Cmd    Cmd
	Stdout string
	Stderr string
	Err    error // nil when it exited 0
}

func (r Result) String() string {
	return fmt.Sprintf("%s %s: err=%v\nstdout: %s\nstderr: %s",
		r.Cmd.Name, strings.Join(r.Cmd.Args, " "), r.Err, r.Stdout, r.Stderr)
}

// argv is what to execute: c itself, or, in a namespace, `ip netns exec`
// (which must run as root) and then setpriv to drop to c.Cred.
func (c Cmd) argv() (string, []string) {
	if c.NS == "" {
		return c.Path, c.Args
	}
	argv := []string{"netns", "exec", c.NS}
	if c.Cred != nil {
		argv = append(argv, "setpriv",
			"--reuid="+strconv.FormatUint(uint64(c.Cred.Uid), 10),
			"--regid="+strconv.FormatUint(uint64(c.Cred.Gid), 10), setprivGroups(c.Cred.Groups))
	}
	return "ip", append(append(argv, c.Path), c.Args...)
}

// setprivGroups is setpriv's option for the supplementary groups of a
// Cred: none (--clear-groups) unless Cred.Groups lists some, as
// SysProcAttr.Credential does outside a namespace.
func setprivGroups(groups []uint32) string {
	if len(groups) == 0 {
		return "--clear-groups"
	}
	ids := make([]string, len(groups))
	for i, g := range groups {
		ids[i] = strconv.FormatUint(uint64(g), 10)
	}
	return "--groups=" + strings.Join(ids, ",")
}

// Run runs c to completion (it is killed and reaped at its deadline).
func (e *Env) Run(c Cmd) Result {
	e.T.Helper()
	if c.Timeout == 0 {
		c.Timeout = runTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
	defer cancel()
	path, args := c.argv()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env, cmd.WaitDelay = c.Env, time.Second
	if c.Cred != nil && c.NS == "" {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.Cred}
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s: killed after %v: %w", c.Name, c.Timeout, err)
	}
	return Result{Cmd: c, Stdout: stdout.String(), Stderr: stderr.String(), Err: err}
}
