// Command bench measures imdsguard against nginx and writes
// docs/BENCHMARKS.md. In one network namespace it makes, it starts
// fakeimds (a fast tokens-required fake IMDS) and in front of it nginx
// (plain, and with proxy_cache) and imdsguard (endpoint mode, uncached and
// cached; with -imdsguard-b a second build the same way), then runs wrk
// against each, fakeimds itself included, at every concurrency, round
// after round, interleaved. It runs on tools/testbed: every process it
// starts is waited for and stopped by pid, and the namespace is removed,
// also on failure or Ctrl-C. It needs root.
//
//	bin/bench [-rounds 3] [-duration 4s] [-warmup 2s] [-concurrency 1,16,256,1000]
//	          [-path /latest/meta-data/instance-id] [-out docs/BENCHMARKS.md]
//	          [-imdsguard bin/imdsguard] [-imdsguard-b OTHER] [-redirect]
//
// Performance is reported, never asserted: the command fails only on
// correctness (a failed request, an upstream 401, other than one token PUT
// per daemon, an uncached target not asking upstream once per request),
// after writing the report.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/imdsguard/imdsguard/internal/netnstest"
	"github.com/imdsguard/imdsguard/tools/testbed"
)

func main() {
	root, err := testbed.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	o, err := parseOptions(os.Args[1:], root, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	os.Exit(testbed.Main(func(t testbed.TB) { run(t, o) }))
}

// run measures, writes the report, then fails t on every failed check.
func run(t testbed.TB, o options) {
	netnstest.RequireRoot(t)
	tools := findTools(t)
	bins := readBinaries(t, o)
	// wrk holds every connection open at once, each proxy as many again
	// plus its upstream ones; the children inherit the limit.
	testbed.RaiseNOFILE(t, uint64(max(16384, 4*slices.Max(o.Conc)+1024)))
	m := readMachine(tools)
	b := newBed(t, o, tools)
	var rb *redirectBed
	if o.Redirect {
		rb = newRedirectBed(t, b.e, o.GuardA, o.Path)
	}
	warm, runs := b.rounds(t, b.targets, o.Conc, o)
	rep := report{Command: o.commandLine(), Opts: o, Machine: m, Binaries: bins, Targets: b.targets, Runs: runs}
	ups := []upstreamCounts{b.upstream(t)}
	if rb != nil {
		rwarm, rruns := b.rounds(t, rb.targets, redirectConcs(), o)
		rep.RedirectTargets, rep.RedirectRuns = rb.targets, rruns
		warm, runs = append(warm, rwarm...), append(runs, rruns...)
		ups = append(ups, rb.upstream(t)...)
	}
	rep.Machine.LoadAfter = loadAverage()
	rep.Checks = checks(append(warm, runs...), rep.cached, rep.label, ups)
	writeReport(t, o.Out, rep)
	for _, c := range failedChecks(rep.Checks) {
		t.Errorf("%s: %s", c.What, c.Detail)
	}
}

// readBinaries checks that the imdsguard builds exist and reads what they
// are.
func readBinaries(t testbed.TB, o options) []binary {
	t.Helper()
	paths := [][2]string{{"A", o.GuardA}}
	if o.GuardB != "" {
		paths = append(paths, [2]string{"B", o.GuardB})
	}
	var out []binary
	for _, p := range paths {
		if _, err := os.Stat(p[1]); err != nil {
			t.Fatalf("imdsguard %s: %v (make build makes bin/imdsguard)", p[0], err)
		}
		b := readBinary(p[0], p[1])
		b.Path = o.shown(p[1])
		out = append(out, b)
	}
	return out
}

func writeReport(t testbed.TB, path string, rep report) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatalf("write report: %v", err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatalf("write report: %v", err)
	}
	if err := render(f, rep); err != nil {
		f.Close()
		t.Fatalf("write report %s: %v", path, err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("write report %s: %v", path, err)
	}
	fmt.Println("bench: wrote", path)
}
