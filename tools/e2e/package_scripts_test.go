package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/internal/netnstest"
	"github.com/imdsguard/imdsguard/tools/testbed"
)

// TestPackageScripts runs the maintainer scripts as the packages hold them
// (the .rpm's scriptlets, the .deb's control scripts: one source,
// packaging/scripts) the way rpm and dpkg call them, for install, upgrade
// and removal, with systemd running or not, against fake systemctl,
// systemd-tmpfiles, deb-systemd-helper and /usr/sbin/imdsguard that record
// their calls. Each run is in a mount namespace of its own with tmpfs over
// /run (holding /run/systemd/system when "systemd runs"), /var/lib and
// /usr/sbin and /etc, so nothing of this machine is read or changed.

// scriptHarness sets the namespace up, then runs each line of $STEPS
// ("INTERPRETER SCRIPT ARGS...") in order, as a package manager's
// transaction would, and says whether the token key and the (empty)
// configuration directory survived.
const scriptHarness = `set -eu
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /var/lib
mount -t tmpfs tmpfs /usr/sbin
mount -t tmpfs tmpfs /etc
[ "$SYSTEMD" != yes ] || mkdir -p /run/systemd/system
mkdir /var/lib/imdsguard /run/imdsguard /etc/imdsguard
echo key >/var/lib/imdsguard/token.key
cp "$FAKES/imdsguard" /usr/sbin/imdsguard
PATH=$FAKES:$PATH
while read -r prog script args <&3; do
	"$prog" "$script" $args
done 3<"$STEPS"
if [ -e /var/lib/imdsguard/token.key ]; then echo "state: kept"; else echo "state: gone"; fi
if [ -d /etc/imdsguard ]; then echo "config dir: kept"; else echo "config dir: gone"; fi
`

// scriptFakes: each records "NAME ARGS" in $CALLS. systemctl is-active
// says yes for the units in $ACTIVE; deb-systemd-helper was-enabled says
// yes (a first install, or enabled before).
var scriptFakes = map[string]string{
	"systemctl": `echo "systemctl $*" >>"$CALLS"
case "$*" in *is-active*)
	for u; do :; done
	case " $ACTIVE " in *" $u "*) exit 0 ;; esac
	exit 3
esac`,
	"systemd-tmpfiles":   `echo "systemd-tmpfiles $*" >>"$CALLS"`,
	"deb-systemd-helper": `echo "deb-systemd-helper $*" >>"$CALLS"`,
	"imdsguard":          `echo "imdsguard $*" >>"$CALLS"`,
}

type scriptCase struct {
	name    string
	systemd bool   // systemd runs (PID 1): /run/systemd/system exists
	active  string // the units systemctl is-active reports active
	steps   []string
	want    []string // the calls, in order
	keyGone bool     // the token key (/var/lib/imdsguard) and /etc/imdsguard are deleted
	say     string   // printed to the administrator ("" if nothing must be)
}

const (
	both      = "imdsguard.socket imdsguard.service"
	tryRestrt = "systemctl try-restart imdsguard.service"
	tmpfiles  = "systemd-tmpfiles --create imdsguard.conf"
	reload    = "systemctl --system daemon-reload"
	rmRules   = "imdsguard rules remove"
	startNow  = "start it now with: systemctl start imdsguard"
	isActive  = "systemctl --quiet is-active "
)

// rpmScriptCases: rpm's order on an upgrade is the new package's %post 2,
// then the old one's %preun 1 and %postun 1; on erase %preun 0, %postun 0.
var rpmScriptCases = []scriptCase{
	{name: "install, no systemd (image build)", steps: []string{"post 1"},
		want: []string{"systemctl --quiet --no-reload enable " + both}},
	{name: "install, systemd running", systemd: true, steps: []string{"post 1"},
		want: []string{"systemctl --quiet --no-reload enable " + both, tmpfiles, reload}, say: startNow},
	{name: "upgrade, daemon running", systemd: true, active: both, steps: []string{"post 2", "preun 1", "postun 1"},
		want: []string{tmpfiles, reload, isActive + "imdsguard.socket", tryRestrt}},
	{name: "upgrade, daemon without its socket unit", systemd: true, active: "imdsguard.service", steps: []string{"post 2", "preun 1", "postun 1"},
		want: []string{tmpfiles, reload, isActive + "imdsguard.socket", isActive + "imdsguard.service",
			"systemctl stop imdsguard.service", "systemctl start " + both}},
	{name: "upgrade, daemon stopped", systemd: true, steps: []string{"post 2", "preun 1", "postun 1"},
		want: []string{tmpfiles, reload, isActive + "imdsguard.socket", isActive + "imdsguard.service"}},
	{name: "upgrade, no systemd", steps: []string{"post 2", "preun 1", "postun 1"}},
	{name: "erase, systemd running", systemd: true, active: both, steps: []string{"preun 0", "postun 0"},
		want: []string{"systemctl --quiet --no-reload disable --now " + both, rmRules, reload}, keyGone: true},
	{name: "erase, no systemd", steps: []string{"preun 0", "postun 0"},
		want: []string{"systemctl --quiet --no-reload disable " + both, rmRules}, keyGone: true},
}

// debScriptCases: dpkg's calls, for the same scripts. An upgrade runs the
// old prerm upgrade, the new postinst configure OLD, the old postrm upgrade
// (in this order here: the fakes keep no state between them).
var debScriptCases = []scriptCase{
	{name: "install, systemd running", systemd: true, steps: []string{"postinst configure"},
		want: append(debEnable(), tmpfiles, reload), say: startNow},
	{name: "upgrade, daemon running", systemd: true, active: both,
		steps: []string{"prerm upgrade 9.9", "postinst configure 1.0", "postrm upgrade 9.9"},
		want:  append(debEnable(), tmpfiles, reload, isActive+"imdsguard.socket", tryRestrt)},
	{name: "remove, systemd running", systemd: true, active: both, steps: []string{"prerm remove", "postrm remove"},
		want: []string{"systemctl stop " + both, "deb-systemd-helper disable imdsguard.socket",
			"deb-systemd-helper disable imdsguard.service", rmRules, reload}},
	{name: "purge", steps: []string{"postrm purge"}, keyGone: true,
		want: []string{"deb-systemd-helper purge imdsguard.socket", "deb-systemd-helper unmask imdsguard.socket",
			"deb-systemd-helper purge imdsguard.service", "deb-systemd-helper unmask imdsguard.service"}},
}

// debEnable: what postinst configure asks deb-systemd-helper, per unit.
func debEnable() []string {
	var calls []string
	for _, u := range strings.Fields(both) {
		calls = append(calls, "deb-systemd-helper unmask "+u, "deb-systemd-helper --quiet was-enabled "+u, "deb-systemd-helper enable "+u)
	}
	return calls
}

func TestPackageScripts(t *testing.T) {
	netnstest.RequireRoot(t)
	testbed.RequireTools(t, "rpm", "dpkg-deb", "mount")
	e := testbed.New(t)
	fakes := t.TempDir()
	for name, body := range scriptFakes {
		if err := os.WriteFile(filepath.Join(fakes, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	pkg, _ := buildRPM(t, e)
	rpmScripts := rpmScriptletFiles(t, pkg)
	deb, _ := buildDeb(t, e)
	debScripts := t.TempDir()
	testbed.MustRun(t, "dpkg-deb", "-e", deb, debScripts)
	for _, c := range rpmScriptCases {
		t.Run("rpm/"+c.name, func(t *testing.T) { runScriptCase(t, fakes, c, rpmScripts) })
	}
	for _, c := range debScriptCases {
		t.Run("dpkg/"+c.name, func(t *testing.T) {
			runScriptCase(t, fakes, c, map[string]string{"postinst": "/bin/sh " + filepath.Join(debScripts, "postinst"),
				"prerm": "/bin/sh " + filepath.Join(debScripts, "prerm"), "postrm": "/bin/sh " + filepath.Join(debScripts, "postrm")})
		})
	}
}

// rpmScriptletFiles writes the package's %post, %preun and %postun to
// files and returns "INTERPRETER FILE" for each (post, preun, postun).
func rpmScriptletFiles(t *testing.T, pkg string) map[string]string {
	t.Helper()
	dir := t.TempDir()
	m := map[string]string{}
	for step, tag := range map[string]string{"post": "POSTIN", "preun": "PREUN", "postun": "POSTUN"} {
		prog := strings.TrimSpace(rpmQuery(t, pkg, "--qf", "%{"+tag+"PROG}"))
		f := filepath.Join(dir, step)
		if err := os.WriteFile(f, []byte(rpmQuery(t, pkg, "--qf", "%{"+tag+"}")), 0o644); err != nil {
			t.Fatal(err)
		}
		m[step] = prog + " " + f
	}
	return m
}

// runScriptCase runs c's steps (scripts maps a step's first word to
// "INTERPRETER FILE") in a mount namespace and checks the recorded calls.
func runScriptCase(t *testing.T, fakes string, c scriptCase, scripts map[string]string) {
	dir := t.TempDir()
	var steps strings.Builder
	for _, s := range c.steps {
		which, args, _ := strings.Cut(s, " ")
		steps.WriteString(scripts[which] + " " + args + "\n")
	}
	stepsFile, calls := filepath.Join(dir, "steps"), filepath.Join(dir, "calls")
	if err := os.WriteFile(stepsFile, []byte(steps.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	sd := map[bool]string{true: "yes", false: "no"}[c.systemd]
	cmd := exec.Command("sh", "-c", scriptHarness)
	cmd.Env = append(os.Environ(), "FAKES="+fakes, "STEPS="+stepsFile, "CALLS="+calls, "ACTIVE="+c.active, "SYSTEMD="+sd)
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	out, err := runTimed(cmd, time.Minute)
	if err != nil {
		t.Fatalf("steps %q: %v\n%s", steps.String(), err, out)
	}
	recorded, _ := os.ReadFile(calls)
	got := strings.Split(strings.TrimSpace(string(recorded)), "\n")
	if len(recorded) == 0 {
		got = nil
	}
	if !reflect.DeepEqual(got, c.want) {
		t.Errorf("steps %q: calls\n  %s\nwant\n  %s", steps.String(), strings.Join(got, "\n  "), strings.Join(c.want, "\n  "))
	}
	state := map[bool]string{true: "gone", false: "kept"}[c.keyGone]
	for _, want := range []string{"state: " + state, "config dir: " + state} {
		if !strings.Contains(out, want) {
			t.Errorf("want %q:\n%s", want, out)
		}
	}
	if c.say != "" && !strings.Contains(out, c.say) || c.say == "" && strings.Contains(out, startNow) {
		t.Errorf("output %q, want it to say %q", out, c.say)
	}
}

// runTimed runs cmd to completion (killed at timeout) and returns its
// output, stdout and stderr interleaved.
func runTimed(cmd *exec.Cmd, timeout time.Duration) (string, error) {
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	timer := time.AfterFunc(timeout, func() { cmd.Process.Kill() })
	defer timer.Stop()
	err := cmd.Wait()
	return out.String(), err
}
