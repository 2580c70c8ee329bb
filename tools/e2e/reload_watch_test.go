package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/tools/testbed"
)

// watchPolicy is the policy of TestReloadOnFileChange, with deny as root's
// deny list.
func watchPolicy(deny string) string {
	return "policy: {mode: enforce, default: deny, rules: [{name: root, match: {users: [root]}, allow: [\"/**\"], deny: [" + deny + "]}]}\n"
}

// TestReloadOnFileChange: the configuration file is a ConfigMap volume's
// (imdsguard.yaml → ..data/imdsguard.yaml, ..data → a dated directory) and
// is changed the way the kubelet changes it, a new directory and an atomic
// swap of ..data, with no signal: within a few seconds the daemon applies
// the new policy. A broken file swapped in the same way is refused and the
// policy in force stays.
func TestReloadOnFileChange(t *testing.T) {
	e := testbed.New(t)
	e.RequireBins("aemm", "imdsguard")
	h := e.NewHost(testbed.HostOptions{})
	dir := t.TempDir()
	write := func(version, yaml string) {
		t.Helper()
		d := filepath.Join(dir, "..2026_12_07_"+version)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "imdsguard.yaml"), []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(filepath.Base(d), tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	base := testbed.HostGuardConfig{}
	g0 := h.StartGuard(base) // only to learn the file the Host writes for it
	config := func(policy string) string {
		data, err := os.ReadFile(g0.ConfigPath)
		if err != nil {
			t.Fatal(err)
		}
		return string(data) + policy
	}
	open := config(watchPolicy(""))
	if err := g0.Stop(); err != nil {
		t.Fatal(err)
	}
	write("1", open)
	if err := os.Symlink("..data/imdsguard.yaml", filepath.Join(dir, "imdsguard.yaml")); err != nil {
		t.Fatal(err)
	}
	g := h.StartGuardWith(base, testbed.GuardOptions{Args: []string{"--config", filepath.Join(dir, "imdsguard.yaml")}})
	status := func() int {
		r, err := testbed.RawRequestIn(h.HostNS, testbed.IMDSAddr(4), "GET", "/latest/meta-data/instance-id", nil)
		if err != nil {
			t.Fatal(err)
		}
		return r.Status
	}
	if s := status(); s != 200 {
		t.Fatalf("instance-id as root before the change: %d", s)
	}
	waitStatus := func(want int, within time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		for status() != want {
			if time.Since(start) > within {
				t.Fatalf("no %d within %v", want, within)
			}
			time.Sleep(100 * time.Millisecond)
		}
		return time.Since(start)
	}

	write("2", config(watchPolicy(`"/meta-data/instance-id"`)))
	took := waitStatus(403, 10*time.Second)
	t.Logf("the new policy applied %v after the swap, no signal sent", took.Round(time.Millisecond))
	if !strings.Contains(g.Stderr(), "configuration file changed; reloading") {
		t.Error("the daemon did not log the change it reloaded for")
	}

	write("3", config(watchPolicy(`"/meta-data/instance-id"`))+"bogus: 1\n")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(g.Stderr(), "reload refused") {
		if time.Now().After(deadline) {
			t.Fatal("the broken file was not refused within 10 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if s := status(); s != 403 {
		t.Errorf("after a refused reload: %d, want the policy in force's 403", s)
	}
}

// TestHangupAtStart: SIGHUP sent again and again from the daemon's first
// moments (a reload right after a start) never kills it: it is caught
// before the configuration is even read, let alone the port opened. (In
// the very first milliseconds of the process, before the Go runtime has
// run main, SIGHUP's default action kills any program; systemd sends none
// before READY=1.)
func TestHangupAtStart(t *testing.T) {
	e := testbed.New(t)
	e.RequireBins("aemm", "imdsguard")
	h := e.NewHost(testbed.HostOptions{})
	g0 := h.StartGuard(testbed.HostGuardConfig{})
	if err := g0.Stop(); err != nil {
		t.Fatal(err)
	}
	p := testbed.StartProc(t, testbed.ProcSpec{Name: "imdsguard", Path: e.Bin("imdsguard"), NS: h.HostNS,
		Args: []string{"run", "--config", g0.ConfigPath}})
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", p.Pid())); strings.HasSuffix(exe, "/imdsguard") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("imdsguard did not start")
		}
	}
	time.Sleep(20 * time.Millisecond) // the Go runtime's start, up to main
	sent := 0
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if err := p.Signal(syscall.SIGHUP); err == nil {
			sent++
		}
		if done, err := p.Exited(); done {
			t.Fatalf("imdsguard died after %d SIGHUPs from its start: %v\n%s", sent, err, p.Logs())
		}
	}
	testbed.WaitListening(t, p, h.HostNS, g0.Addr)
	if done, err := p.Exited(); done {
		t.Fatalf("imdsguard died: %v", err)
	}
	t.Logf("%d SIGHUPs in the daemon's first second: it started, serves, and reloaded", sent)
}
