package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// report is everything docs/RULES_BENCH.md says.
type report struct {
	Machine machine
	Opts    options
	Results []result
}

// machine is where and what ran.
type machine struct {
	Date, CPU, Kernel, Iptables, Guard string
	Cores                              int
	LoadBefore, LoadAfter              string
}

func readMachine(guard, root string) machine {
	return machine{
		Date:       time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		CPU:        cpuModel(),
		Cores:      runtime.NumCPU(),
		Kernel:     strings.TrimSpace(readText("/proc/sys/kernel/osrelease")),
		Iptables:   firstLine(output("iptables", "--version")),
		Guard:      firstLine(output(guard, "version")) + ", tree " + firstLine(output("git", "-C", root, "describe", "--always", "--dirty")),
		LoadBefore: loadAverage(),
	}
}

func (r result) summary() string {
	return fmt.Sprintf("%s, %d extra rules (%d nat rules): start %s, CPU %s per s (%s–%s), iptables-save %s (-t nat %s), rules status %s, check --ready %s",
		r.Backend, r.Extra, r.Rules, ms(r.Start), ms(r.CPU.Mean), ms(r.CPU.Min), ms(r.CPU.Max), r.Save, r.SaveNAT, r.Status, r.Check)
}

func writeReport(path string, rep report) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	render(f, rep)
	if err := f.Close(); err != nil {
		return fmt.Errorf("write report %s: %w", path, err)
	}
	return nil
}

func render(w io.Writer, rep report) {
	m := rep.Machine
	fmt.Fprintf(w, "# Rule upkeep on a busy node: benchmark (issue 24)\n\n")
	fmt.Fprintf(w, "Command: `bin/rulesbench %s` (as root; `make bench` runs it through `scripts/bench-rules.sh`; source: tools/cmd/rulesbench)\n\n", strings.Join(rep.Opts.Args, " "))
	fmt.Fprintf(w, "Date: %s; machine: %s, %d CPUs, kernel %s, %s; imdsguard: %s; load average before %s, after %s (the machine is shared: read the figures as a curve, not to the millisecond)\n\n",
		m.Date, m.CPU, m.Cores, m.Kernel, m.Iptables, m.Guard, m.LoadBefore, m.LoadAfter)
	fmt.Fprint(w, method)
	for _, b := range rep.Opts.Backends {
		renderBackend(w, b, rep.Results)
	}
}

const method = `Each row is a test host of its own (tools/testbed: network namespaces, AEMM as IMDS, the
daemon as a child process, default configuration, IPv4 only). Before the daemon starts, the
extra nat rules are loaded with one ` + "`iptables-restore --noflush`" + `, shaped like kube-proxy's
iptables mode: a KUBE-SERVICES chain hooked from PREROUTING and OUTPUT, per service a
` + "`-d CLUSTERIP/32 -p tcp --dport N -j KUBE-SVC-x`" + ` rule in it and a KUBE-SVC-x chain of nine
DNATs to endpoints, eight behind ` + "`-m statistic --mode random --probability`" + ` (ten rules per
service). The legacy rows load them with iptables-legacy-restore, which makes the daemon pick
the legacy backend (checked in its log).

- CPU per second: utime+stime+cutime+cstime of the daemon (/proc/PID/stat: its own and its
  reaped children's, the iptables tools it runs), read every second over a steady window after
  the daemon served and settled; the mean, and the least and most of the one-second slices.
- iptables-save: one run of the backend's save tool in the host namespace, all tables and
  ` + "`-t nat`" + ` (median of 3), for reference.
- rules status, check --ready: wall time of ` + "`imdsguard rules status`" + ` and ` + "`imdsguard check --ready`" + `
  with the daemon's configuration (median of 3; "(failed)": it exited non-zero, the note under
  the tables says why). Start: exec of ` + "`imdsguard run`" + ` until its
  port accepts a connection (polled every 50 ms).
- Repairs: from the moment an outside change returned, until ` + "`imdsguard rules status`" + `
  (polled every 20 ms) first exits 0, and in brackets when the daemon logged the restore.
  Changes: ` + "`iptables -F`" + ` of each of its five chains; its PREROUTING jump deleted; ` + "`-I PREROUTING 1 -p tcp -j ACCEPT`" + `
  put before it; the nat table reloaded firewalld-like (save, drop imdsguard's lines,
  ` + "`iptables-restore -T nat`" + `, kube-proxy's rules kept); its landing address deleted from lo.

`

func renderBackend(w io.Writer, b backend, results []result) {
	fmt.Fprintf(w, "## %s\n\n", b.Label)
	fmt.Fprintf(w, "| extra nat rules (≈ services × 10) | nat rules in all | one `iptables-save` (`-t nat`) | imdsguard CPU per second (1 s slices) | `rules status` | `check --ready` | start |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		if r.Backend == b.Name {
			fmt.Fprintf(w, "| %s | %s | %s (%s) | %s (%s–%s) | %s | %s | %s |\n", thousands(r.Extra), thousands(r.Rules),
				r.Save, r.SaveNAT, ms(r.CPU.Mean), ms(r.CPU.Min), ms(r.CPU.Max), r.Status, r.Check, ms(r.Start))
		}
	}
	fmt.Fprintf(w, "\nRepaired, as `rules status` sees it (daemon's log):\n\n| extra nat rules |")
	for _, c := range repairCases {
		fmt.Fprintf(w, " %s |", c.Name)
	}
	fmt.Fprintf(w, "\n|---|%s\n", strings.Repeat("---|", len(repairCases)))
	for _, r := range results {
		if r.Backend != b.Name {
			continue
		}
		fmt.Fprintf(w, "| %s |", thousands(r.Extra))
		for i := range repairCases {
			if i < len(r.Repairs) {
				fmt.Fprintf(w, " %s (%s) |", fmtMS(r.Repairs[i].Status), fmtMS(r.Repairs[i].Logged))
			} else {
				fmt.Fprint(w, " not run |")
			}
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
	for _, r := range results {
		for _, n := range r.Notes {
			fmt.Fprintf(w, "- %s, %s extra rules: %s\n", b.Name, thousands(r.Extra), strings.Join(strings.Fields(n), " "))
		}
	}
	fmt.Fprintln(w)
}

// ms is d in whole milliseconds.
func ms(d time.Duration) string {
	return thousands(int(d.Round(time.Millisecond).Milliseconds())) + " ms"
}

// thousands writes n with commas between groups of three digits.
func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// loadAverage is /proc/loadavg's first three fields.
func loadAverage() string {
	f := strings.Fields(readText("/proc/loadavg"))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func readText(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func output(name string, args ...string) string {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return "unknown " + name
	}
	return string(out)
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return first
}
