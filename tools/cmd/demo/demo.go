package main

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/imdsguard/imdsguard/tools/testbed"
)

// userName is the demo's non-root user, made for the run when missing.
const userName = "imdstest-demo"

// demo is one run: the harness, the namespaces, the user and the daemon.
type demo struct {
	t     testbed.TB
	e     *testbed.Env
	h     *testbed.Host
	p     *printer
	user  testbed.User
	made  bool           // the user was made for this run (and is removed after it)
	guard *testbed.Guard // nil before step 2
	shown int            // audit events of guard already shown
	token string         // taken before the kill (step 6), used after the restart (step 7)

	hostUser, hostRoot, c1Root caller
}

// caller is where and as whom a client runs: "host" or "c1" (a
// container), the user or root.
type caller struct {
	where, who string
	in         func(testbed.Cmd) testbed.Cmd
}

// newDemo builds the instance: the user, the three namespaces and AEMM.
func newDemo(t testbed.TB, p *printer) *demo {
	if os.Geteuid() != 0 {
		t.Fatal("needs root (network namespaces, iptables): sudo make demo")
	}
	e := testbed.New(t)
	e.RequireBins("aemm", "imdsguard", "imdsclient")
	d := &demo{t: t, e: e, p: p}
	d.user, d.made = testbed.TempUser(t, userName)
	d.h = e.NewHost(testbed.HostOptions{})
	d.hostUser = caller{"host", d.user.Name, func(c testbed.Cmd) testbed.Cmd { return e.AsUser(d.user, d.h.InHost(c)) }}
	d.hostRoot = caller{"host", "root", d.h.InHost}
	d.c1Root = caller{"c1", "root", d.h.InC1}
	return d
}

// run shows c running cl, runs it and shows its output and, when it
// failed, how. A client failing is part of the story, not an error. After
// Ctrl-C (the harness then reports Failed), or once the output cannot be
// written, the demo stops here.
func (d *demo) run(c caller, cl client) testbed.Result {
	if d.t.Failed() {
		d.t.Fatal("stopped before: " + cl.label)
	}
	if d.p.err != nil {
		d.t.Fatalf("write the demo's output: %v", d.p.err)
	}
	cmd := c.in(cl.cmd)
	if cmd.NS == "" { // the metadata addresses exist only in the namespaces made here
		d.t.Fatalf("run %s: no network namespace", cl.label)
	}
	d.p.command(c.where, c.who, cl.label, cl.note)
	r := d.e.Run(cmd)
	d.p.output(joinLines(r.Stderr, r.Stdout), cmp.Or(cl.lines, maxLines))
	if r.Err != nil {
		d.p.failed(exitStatus(r.Err))
	}
	return r
}

// joinLines joins a command's stderr and stdout, in that order: the
// clients write their complaints on stderr before they end, and curl's last
// line (stdout) is always the HTTP status.
func joinLines(stderr, stdout string) string {
	stdout = strings.TrimLeft(stdout, "\n") // curl's status line after an empty body
	if stderr != "" && !strings.HasSuffix(stderr, "\n") {
		stderr += "\n"
	}
	return stderr + stdout
}

// exitStatus says how a command failed: "exit N", or the error.
func exitStatus(err error) string {
	if ee, ok := errors.AsType[*exec.ExitError](err); ok && ee.ExitCode() > 0 {
		return fmt.Sprintf("exit %d", ee.ExitCode())
	}
	return err.Error()
}
