package testbed

import (
	"os"
	"strings"
	"time"
)

// Looking into a Boot: commands in its namespaces, unit properties, the
// journal, and the daemon's pid as this machine sees it.

// In runs a command inside every namespace of the boot (nsenter -a), for a
// minute at most.
func (b *Boot) In(args ...string) Output {
	return RunCombined(time.Minute, nil, "nsenter", append([]string{"-t", b.pid1, "-a"}, args...)...)
}

// MustIn runs a command like In and fails b.T, with the journal of
// imdsguard.service, unless it exits 0; it returns the output.
func (b *Boot) MustIn(args ...string) string {
	b.T.Helper()
	r := b.In(args...)
	if r.Err != nil {
		b.T.Fatalf("in the boot: %s: %v\njournal:\n%s", strings.Join(args, " "), r, b.Journal("imdsguard.service"))
	}
	return r.Out
}

// Show is a property of unit (systemctl show), "" while systemd cannot say
// (still booting).
func (b *Boot) Show(unit, prop string) string {
	r := b.In("systemctl", "show", "-p", prop, "--value", unit)
	if r.Err != nil {
		return ""
	}
	return strings.TrimSpace(r.Out)
}

// Journal is what unit logged, messages only.
func (b *Boot) Journal(unit string) string {
	return b.In("journalctl", "-u", unit, "-o", "cat", "--no-pager").Out
}

// DaemonPid is the pid, as this machine numbers it, of imdsguard.service's
// main process; it fails b.T when there is none.
func (b *Boot) DaemonPid() string {
	b.T.Helper()
	inner := []string{b.Show("imdsguard.service", "MainPID")}
	if inner[0] == "" || inner[0] == "0" {
		b.T.Fatalf("imdsguard.service has no main process:\n%s", b.Journal("imdsguard.service"))
	}
	// The boot's pids are translated through NSpid in /proc/PID/status.
	ents, _ := os.ReadDir("/proc")
	for _, d := range ents {
		st, err := os.ReadFile("/proc/" + d.Name() + "/status")
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(st), "\n") {
			if f := strings.Fields(l); len(f) == 3 && f[0] == "NSpid:" && f[2] == inner[0] {
				if ns, _ := os.Readlink("/proc/" + d.Name() + "/ns/pid"); ns != "" {
					if own, _ := os.Readlink("/proc/" + b.pid1 + "/ns/pid"); own == ns {
						return d.Name()
					}
				}
			}
		}
	}
	b.T.Fatalf("no host pid for the daemon (pid %s in the boot)", inner[0])
	return ""
}

// WaitFor polls ok every 250 ms until it holds; after d it fails b.T,
// naming what and showing the journal of imdsguard.service.
func (b *Boot) WaitFor(d time.Duration, what string, ok func() bool) {
	b.T.Helper()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		if ok() {
			return
		}
	}
	b.T.Fatalf("no %s within %v:\n%s", what, d, b.Journal("imdsguard.service"))
}
