package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/imdsguard/imdsguard/tools/testbed"
)

// backend is an iptables backend imdsguard can be made to pick, with the
// tools that write to it.
type backend struct {
	Name               string // as the daemon logs it ("iptables backend detected")
	Label              string // for the report
	IPT, Save, Restore string
}

var backends = []backend{
	{Name: "nft", Label: "iptables-nft (the default)", IPT: "iptables-nft", Save: "iptables-nft-save", Restore: "iptables-nft-restore"},
	// The daemon picks legacy when the legacy rule set holds more rules
	// (internal/redirect/detect.go): the extra rules are loaded there.
	{Name: "legacy", Label: "iptables-legacy", IPT: "iptables-legacy", Save: "iptables-legacy-save", Restore: "iptables-legacy-restore"},
}

// result is one backend at one size.
type result struct {
	Backend       string
	Build         string        // "A" or "B"
	Extra         int           // extra nat rules asked for
	Rules         int           // "-A" lines of the nat table with the daemon's rules in
	Start         time.Duration // exec to the proxy port accepting
	CPU           cpuStat
	Save, SaveNAT timing // one iptables-save, and of -t nat
	Status, Check timing // imdsguard rules status, check --ready
	Repairs       []repair
	Notes         []string // what failed but was measured
}

// runner measures one backend at one size on a test host of its own.
type runner struct {
	t   testbed.TB
	o   options
	b   backend
	e   *testbed.Env
	h   *testbed.Host
	g   *testbed.Guard
	bin string
}

// measure builds the host, loads the extra rules, starts the daemon and
// measures it.
func measure(t testbed.TB, o options, b backend, extra int, bd build) result {
	rn := &runner{t: t, o: o, b: b, e: testbed.New(t), bin: bd.Path}
	rn.h = rn.e.NewHost(testbed.HostOptions{})
	res := result{Backend: b.Name, Build: bd.ID, Extra: extra}
	took, _, err := nsCmd(rn.h.HostNS, kubeRules(extra), b.Restore, "--noflush")
	if err != nil {
		t.Fatalf("load %d extra rules: %v", extra, err)
	}
	t.Logf("loaded %d extra nat rules with %s in %v", extra, b.Restore, took.Round(time.Millisecond))
	if t.Failed() { // interrupted
		return res
	}
	start := time.Now()
	rn.g = rn.h.StartGuardWith(testbed.HostGuardConfig{NoIPv6: true}, testbed.GuardOptions{Bin: rn.bin})
	res.Start = time.Since(start)
	rn.checkBackend(t)
	rn.checkServed(t)
	daemonPid(t, rn.g.Pid(), rn.bin)
	time.Sleep(o.Settle)
	if res.CPU, err = sampleCPU(rn.g.Pid(), o.Window); err != nil {
		t.Fatal(err)
	}
	t.Logf("CPU per second over %v: %s (%s–%s)", res.CPU.Window.Round(time.Millisecond), ms(res.CPU.Mean), ms(res.CPU.Min), ms(res.CPU.Max))
	if t.Failed() {
		return res
	}
	rn.commandTimes(t, &res)
	res.Repairs = rn.measureRepairs(t)
	rn.checkServed(t)
	return res
}

// checkBackend fails t unless the daemon logged that it picked rn.b.
func (rn *runner) checkBackend(t testbed.TB) {
	for _, ev := range rn.g.Events() {
		if ev["msg"] == "iptables backend detected" {
			if ev["backend"] != rn.b.Name {
				t.Fatalf("the daemon picked the %v backend, want %s: %v", ev["backend"], rn.b.Name, ev)
			}
			return
		}
	}
	t.Fatalf("the daemon logged no backend:\n%s", rn.g.Logs())
}

// checkServed fails t unless a plain v1 GET from the host and from c1 is
// answered by imdsguard (AEMM itself refuses v1 with 401).
func (rn *runner) checkServed(t testbed.TB) {
	for _, ns := range []string{rn.h.HostNS, rn.h.C1NS} {
		testbed.WaitFor(t, "imdsguard serves "+ns, func() bool {
			r, err := testbed.RawRequestIn(ns, testbed.IMDSAddr(4), "GET", "/latest/meta-data/instance-id", nil)
			return err == nil && r.Status == 200 && string(r.Body) == testbed.AEMMInstanceID
		})
	}
}

// commandTimes times iptables-save, rules status and check --ready (each
// the median of 3). A failing imdsguard command is a finding: it is
// reported, and the run goes on.
func (rn *runner) commandTimes(t testbed.TB, res *result) {
	ns := rn.h.HostNS
	res.Save, res.SaveNAT = timeRuns(3, ns, rn.b.Save), timeRuns(3, ns, rn.b.Save, "-t", "nat")
	for _, tm := range []timing{res.Save, res.SaveNAT} {
		if tm.Failed != "" {
			t.Fatal(tm.Failed)
		}
	}
	_, nat, _ := nsCmd(ns, "", rn.b.Save, "-t", "nat")
	res.Rules = strings.Count(nat, "\n-A ")
	res.Status = timeRuns(3, ns, rn.guardArgv("rules", "status")...)
	res.Check = timeRuns(3, ns, rn.guardArgv("check", "--ready")...)
	if res.Status.Failed != "" {
		t.Fatalf("rules status before the repairs: %s", res.Status.Failed)
	}
	for _, c := range []struct {
		name string
		tm   timing
	}{{"rules status", res.Status}, {"check --ready", res.Check}} {
		if name, tm := c.name, c.tm; tm.Failed != "" {
			note := fmt.Sprintf("`imdsguard %s` failed (%s)", name, tm.Failed)
			res.Notes = append(res.Notes, note)
			rn.t.Logf("note: %s", note)
		}
	}
}

// guardArgv is the imdsguard command line with the daemon's configuration.
func (rn *runner) guardArgv(args ...string) []string {
	return append(append([]string{rn.bin}, args...), "--config", rn.g.ConfigPath)
}

// imdsguard runs an imdsguard command in the host namespace.
func (rn *runner) imdsguard(args ...string) (time.Duration, string, error) {
	return nsCmd(rn.h.HostNS, "", rn.guardArgv(args...)...)
}

// shell runs script in the host namespace with the backend's tools named
// $IPT, $SAVE and $RESTORE.
func (rn *runner) shell(t testbed.TB, script string) {
	env := fmt.Sprintf("IPT=%s SAVE=%s RESTORE=%s", rn.b.IPT, rn.b.Save, rn.b.Restore)
	if _, out, err := nsCmd(rn.h.HostNS, "", "sh", "-ec", env+"\n"+script); err != nil {
		t.Fatalf("%s: %v", strings.TrimSpace(script), err)
	} else if strings.TrimSpace(out) != "" {
		rn.t.Logf("%s: %s", strings.TrimSpace(script), strings.TrimSpace(out))
	}
}

// daemonPid checks that pid runs the binary bin itself (ip netns exec
// execs it): its CPU is what is read.
func daemonPid(t testbed.TB, pid int, bin string) {
	if err := runsBinary(pid, bin); err != nil {
		t.Fatal(err)
	}
}

// runsBinary fails unless pid's executable is the file bin. The file is
// compared, not the command name: a build under test may be named
// anything (/tmp/ig-old).
func runsBinary(pid int, bin string) error {
	exe, err := os.Stat("/proc/" + strconv.Itoa(pid) + "/exe")
	if err != nil {
		return fmt.Errorf("executable of pid %d: %w", pid, err)
	}
	want, err := os.Stat(bin)
	if err != nil {
		return fmt.Errorf("executable of pid %d: %w", pid, err)
	}
	if !os.SameFile(exe, want) {
		return fmt.Errorf("pid %d does not run %s", pid, bin)
	}
	return nil
}
