// Command rulesbench measures what imdsguard's rule upkeep costs on a busy
// node (issue 24) and writes docs/RULES_BENCH.md. For each iptables backend
// (nft, the default, and legacy) and each size (0, 20,000 and 60,000 extra
// nat rules shaped like kube-proxy's iptables mode, loaded before the
// daemon starts) it builds a test host (tools/testbed: namespaces, AEMM,
// the daemon as a child, default configuration, IPv4 only) and measures
// the daemon's CPU per second (its own and its reaped children's, over a
// steady window), one iptables-save, the wall time of `rules status`,
// `check --ready` and the daemon's start, and how long after an outside
// change the rules are whole again as `rules status` sees it (a flush of
// its chains, a deleted jump, a rule put before a jump, a reload of the
// nat table, a deleted landing address). Every process is stopped by pid
// and every namespace removed after each run, also on failure or Ctrl-C.
// It needs root.
//
// With -imdsguard-b a second build (B) is measured in the same run: every
// (backend, size) cell is measured for A (-imdsguard) and B right after
// each other, on hosts of their own, the order alternating from cell to
// cell, and the report puts them side by side with issue 24's envelope
// for each.
//
//	bin/rulesbench [-sizes 0,20000,60000] [-backends nft,legacy] [-window 10s]
//	               [-settle 3s] [-imdsguard bin/imdsguard] [-imdsguard-b OTHER]
//	               [-out docs/RULES_BENCH.md]
//
// Costs are reported, never asserted: the command fails only when a run
// cannot be measured (the daemon does not serve, picks the wrong backend,
// or a repair is not seen within 20 s), and then leaves the report as it
// was (the runs that finished are logged). A
// `rules status` or `check --ready` that exits non-zero is a finding: it
// is marked in the table and explained under it.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/imdsguard/imdsguard/internal/netnstest"
	"github.com/imdsguard/imdsguard/tools/testbed"
)

// options are the command's flags.
type options struct {
	Sizes    []int
	Backends []backend
	Window   time.Duration // CPU is read over this
	Settle   time.Duration // after the daemon serves, before the window
	Guard    string        // the imdsguard binary (A)
	GuardB   string        // a second binary measured beside it; "": no A/B
	Out      string
	Args     []string // the command line, for the report
	Root     string   // the repository (its commit is reported)
}

func main() {
	root, err := testbed.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "rulesbench:", err)
		os.Exit(2)
	}
	o, err := parseOptions(os.Args[1:], root)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rulesbench:", err)
		os.Exit(2)
	}
	os.Exit(testbed.Main(func(t testbed.TB) { run(t, o) }))
}

func parseOptions(args []string, root string) (options, error) {
	fs := flag.NewFlagSet("rulesbench", flag.ContinueOnError)
	sizes := fs.String("sizes", "0,20000,60000", "extra nat rules, comma-separated")
	names := fs.String("backends", "nft,legacy", "iptables backends, comma-separated")
	o := options{Args: args, Root: root}
	fs.DurationVar(&o.Window, "window", 10*time.Second, "how long the daemon's CPU is read")
	fs.DurationVar(&o.Settle, "settle", 3*time.Second, "wait after the daemon serves, before reading its CPU")
	fs.StringVar(&o.Guard, "imdsguard", filepath.Join(root, "bin", "imdsguard"), "imdsguard binary")
	fs.StringVar(&o.GuardB, "imdsguard-b", "", "a second imdsguard binary measured in the same run, cell by cell (A/B)")
	fs.StringVar(&o.Out, "out", filepath.Join(root, "docs", "RULES_BENCH.md"), "report file")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 0 {
			return o, fmt.Errorf("-sizes: %q is not a rule count", s)
		}
		o.Sizes = append(o.Sizes, n)
	}
	for _, name := range strings.Split(*names, ",") {
		b, ok := backendNamed(strings.TrimSpace(name))
		if !ok {
			return o, fmt.Errorf("-backends: %q: want nft or legacy", name)
		}
		o.Backends = append(o.Backends, b)
	}
	return o, nil
}

// build is one imdsguard binary under measure: A (-imdsguard) or B
// (-imdsguard-b).
type build struct {
	ID, Path string
	Version  string // first line of `imdsguard version`, and a digest of the file
}

// builds are the binaries the run measures: A, and B when asked for.
func (o options) builds() []build {
	out := []build{{ID: "A", Path: o.Guard}}
	if o.GuardB != "" {
		out = append(out, build{ID: "B", Path: o.GuardB})
	}
	return out
}

// cellOrder is the order the builds are measured in cell number i: A first
// in even cells, B first in odd ones, so that neither always has the
// machine in the state the other left it.
func cellOrder(builds []build, i int) []build {
	if len(builds) < 2 || i%2 == 0 {
		return builds
	}
	return []build{builds[1], builds[0]}
}

// measureCell measures build bd on backend b with n extra rules on a host
// of its own, and returns the result when the run succeeded.
func measureCell(t testbed.TB, o options, b backend, n int, bd build) []result {
	name := fmt.Sprintf("%s/%d", b.Name, n)
	if o.GuardB != "" {
		name += "/" + bd.ID
	}
	var out []result
	inScope(t, name, func(st testbed.TB) {
		res := measure(st, o, b, n, bd)
		if !st.Failed() {
			out = append(out, res)
			st.Logf("%s", res.summary())
		}
	})
	return out
}

func backendNamed(name string) (backend, bool) {
	for _, b := range backends {
		if b.Name == name {
			return b, true
		}
	}
	return backend{}, false
}

// run measures every backend at every size, each on a host of its own,
// then writes the report when every run succeeded.
func run(t testbed.TB, o options) {
	netnstest.RequireRoot(t)
	builds := o.builds()
	for _, bd := range builds {
		if _, err := os.Stat(bd.Path); err != nil {
			t.Fatalf("imdsguard %s: %v (make build makes bin/imdsguard)", bd.ID, err)
		}
	}
	rep := report{Machine: readMachine(o.Guard, o.Root), Opts: o, Builds: describeBuilds(builds)}
	cell := 0
	for _, b := range o.Backends {
		for _, n := range o.Sizes {
			for _, bd := range cellOrder(builds, cell) {
				if t.Failed() {
					break
				}
				rep.Results = append(rep.Results, measureCell(t, o, b, n, bd)...)
			}
			cell++
		}
	}
	if t.Failed() {
		t.Fatalf("not writing %s: a run failed or was interrupted (the runs that finished are logged above)", o.Out)
	}
	rep.Machine.LoadAfter = loadAverage()
	if err := writeReport(o.Out, rep); err != nil {
		t.Fatal(err)
	}
	fmt.Println("rulesbench: wrote", o.Out)
}
