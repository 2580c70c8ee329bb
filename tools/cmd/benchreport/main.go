// Command benchreport turns the raw wrk runs of scripts/bench.sh into
// docs/BENCHMARKS.md: per target and concurrency the median over rounds of
// requests/s, p50 and p99 latency; the imdsguard/bareproxy ratios against
// their targets; and the correctness checks (no non-2xx or socket errors,
// exactly one upstream token PUT). It prints the table to stdout as well.
//
//	benchreport -runs runs.tsv -out docs/BENCHMARKS.md -upstream-puts 1 ...
//
// With -section redirect it reports the second part of the benchmark
// (scripts/bench-redirect.sh: direct vs imdsguard through the redirect rules,
// in network namespaces) as the section "Through the redirect (namespaces)"
// of -out: an existing section of that name is replaced, otherwise the
// section is appended; the rest of the file is kept. Its targets are direct,
// imdsguard-v1, imdsguard-v2 and imdsguard-v1-endpoint, and its ratios are
// proxied/direct and redirected/endpoint, reported without targets.
//
// The runs file has one line per wrk run, tab-separated:
//
//	round conc target requests duration_us p50_us p99_us err_connect err_read err_write err_status err_timeout proxy_cpu_ticks fakeimds_cpu_ticks
//
// The CPU ticks are user+system time of the proxy process (0 for the direct
// target) and of fakeimds over the run, in units of 1/-clk-tck seconds.
//
// Performance is reported, never asserted. The exit status is 1 when a
// correctness check fails (after the report is written), 2 on bad input.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Targets in the order they are run and shown.
type target struct{ id, label, what string }

// targetIndex is the position of id in ts, -1 if absent.
func targetIndex(ts []target, id string) int {
	return slices.IndexFunc(ts, func(t target) bool { return t.id == id })
}

var targets = []target{
	{"direct", "(a) fakeimds direct", "v2, fakeimds token"},
	{"bareproxy", "(b) bareproxy", "v2, fakeimds token forwarded"},
	{"imdsguard-v1", "(c) imdsguard v1", "no token: upgraded upstream"},
	{"imdsguard-v2", "(d) imdsguard v2", "imdsguard token"},
}

// Targets of the ratios imdsguard/bareproxy (see docs/BENCHMARKS.md).
const (
	maxP50Ratio = 1.15 // imdsguard p50 at c=1 over bareproxy's
	minRPSRatio = 0.85 // imdsguard req/s at c=16 over bareproxy's
)

type run struct {
	round, conc int
	target      string
	requests    int64
	durationUS  float64
	p50, p99    float64 // µs
	errs        [5]int64
	proxyTicks  int64
	fakeTicks   int64
}

func (r run) rps() float64 { return float64(r.requests) / (r.durationUS / 1e6) }

func (r run) errors() int64 {
	var n int64
	for _, e := range r.errs {
		n += e
	}
	return n
}

// clkTck is the unit of the CPU ticks: ticks a second.
var clkTck = 100.0

// cpuPerRequest is the CPU time a process spent per request, in µs.
func cpuPerRequest(ticks, requests int64) float64 {
	if requests == 0 {
		return 0
	}
	return float64(ticks) / clkTck / float64(requests) * 1e6
}

var errNames = [5]string{"connect", "read", "write", "status", "timeout"}

type meta struct {
	runsFile, out                              string
	command, date, machine, kernel, goVer      string
	cpu, revision, path                        string
	rounds, seconds, warmup                    int
	upstreamPuts, putsBefore, upstreamGets     int64
	upstreamUnauthorized, auditBytes           int64
	auditLines, extraRequests, inFlightMax     int64
	fakeimdsAddr, bareproxyAddr, imdsguardAddr string
	guardRule, guardCaller                     string
	withRedirect                               bool   // loopback report: the redirect section follows
	section                                    string // "" (the loopback report) or "redirect"
	imdsNS, directNS, guardNS                  string // redirect: the namespaces
	directLink, guardLink                      string // redirect: their links to imdsNS
	guardConfigFile, rulesFile                 string // redirect: imdsguard's configuration, its nat rules
}

func main() {
	var m meta
	flag.StringVar(&m.runsFile, "runs", "", "raw runs, tab-separated (see the package doc)")
	flag.StringVar(&m.out, "out", "", "markdown file to write (empty: stdout only)")
	flag.StringVar(&m.command, "command", "scripts/bench.sh", "the command that produced the runs")
	flag.StringVar(&m.date, "date", "", "date of the run")
	flag.StringVar(&m.machine, "nproc", "", "nproc")
	flag.StringVar(&m.kernel, "kernel", "", "uname -r")
	flag.StringVar(&m.goVer, "go", "", "go version")
	flag.StringVar(&m.cpu, "cpu", "", "CPU model")
	flag.StringVar(&m.revision, "revision", "", "git revision of the daemon measured")
	flag.StringVar(&m.path, "path", "", "the metadata path requested")
	flag.IntVar(&m.rounds, "rounds", 0, "rounds")
	flag.IntVar(&m.seconds, "seconds", 0, "seconds per run")
	flag.IntVar(&m.warmup, "warmup", 0, "warm-up seconds per target")
	flag.Int64Var(&m.upstreamPuts, "upstream-puts", -1, "token PUTs fakeimds counted after the direct token was fetched")
	flag.Int64Var(&m.putsBefore, "puts-before", -1, "token PUTs fakeimds had counted before imdsguard started")
	flag.Int64Var(&m.upstreamGets, "upstream-gets", -1, "metadata GETs fakeimds counted over the whole run")
	flag.Int64Var(&m.extraRequests, "extra-requests", 0, "requests sent to the targets outside the measured runs (pre-flight, warm-up)")
	flag.Int64Var(&m.inFlightMax, "in-flight-max", 0, "sum of the concurrencies of all wrk runs: requests in flight when runs ended, at most")
	flag.Int64Var(&m.upstreamUnauthorized, "upstream-unauthorized", -1, "401s fakeimds answered")
	flag.Int64Var(&m.auditBytes, "audit-bytes", -1, "size of imdsguard's stderr (audit log)")
	flag.Int64Var(&m.auditLines, "audit-lines", -1, "lines of imdsguard's stderr")
	flag.Float64Var(&clkTck, "clk-tck", 100, "clock ticks a second (getconf CLK_TCK)")
	flag.StringVar(&m.guardRule, "guard-rule", "", "the policy rule imdsguard applied to the benchmark's requests")
	flag.StringVar(&m.guardCaller, "guard-caller", "", "the caller imdsguard saw (JSON of its audit line)")
	flag.StringVar(&m.fakeimdsAddr, "fakeimds", "", "fakeimds address")
	flag.StringVar(&m.bareproxyAddr, "bareproxy", "", "bareproxy address")
	flag.StringVar(&m.imdsguardAddr, "imdsguard", "", "imdsguard address")
	flag.BoolVar(&m.withRedirect, "with-redirect", false, "loopback report: say that the redirect section follows")
	flag.StringVar(&m.section, "section", "", `"redirect": report the runs through the redirect as a section of -out (see the package doc)`)
	flag.StringVar(&m.imdsNS, "imds-ns", "", "redirect: the namespace of fakeimds")
	flag.StringVar(&m.directNS, "direct-ns", "", "redirect: the namespace of the direct runs (no rules)")
	flag.StringVar(&m.guardNS, "guard-ns", "", "redirect: the namespace of imdsguard and its rules")
	flag.StringVar(&m.directLink, "direct-link", "", "redirect: the direct namespace's link to the metadata namespace, e.g. 192.0.2.1/24 — 192.0.2.2/24")
	flag.StringVar(&m.guardLink, "guard-link", "", "redirect: the guard namespace's link to the metadata namespace")
	flag.StringVar(&m.guardConfigFile, "guard-config", "", "redirect: imdsguard's configuration file (quoted in the report)")
	flag.StringVar(&m.rulesFile, "rules", "", "redirect: the nat rules imdsguard installed, iptables -S (quoted in the report)")
	flag.Parse()
	if m.runsFile == "" {
		fmt.Fprintln(os.Stderr, "benchreport: -runs is required")
		os.Exit(2)
	}
	if m.section == "redirect" {
		os.Exit(mainRedirect(&m))
	} else if m.section != "" {
		fmt.Fprintf(os.Stderr, "benchreport: -section %q: want redirect or nothing\n", m.section)
		os.Exit(2)
	}
	runs, err := readRuns(m.runsFile, targets)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(2)
	}
	rep := analyse(runs)
	doc := render(&m, rep, runs)
	if m.out != "" {
		if err := os.WriteFile(m.out, []byte(doc), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "benchreport:", err)
			os.Exit(2)
		}
	}
	fmt.Print(summary(&m, rep))
	if fails := failures(&m, rep); len(fails) > 0 {
		for _, f := range fails {
			fmt.Fprintln(os.Stderr, "benchreport: FAIL:", f)
		}
		os.Exit(1)
	}
}

func readRuns(name string, ts []target) ([]run, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseRunsFor(f, name, ts)
}

// parseRuns parses the loopback runs.
func parseRuns(r io.Reader, name string) ([]run, error) {
	return parseRunsFor(r, name, targets)
}

// parseRunsFor parses runs whose targets are among ts.
func parseRunsFor(r io.Reader, name string, ts []target) ([]run, error) {
	var runs []run
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		f := strings.Split(text, "\t")
		if len(f) != 14 {
			return nil, fmt.Errorf("%s:%d: %d fields, want 14", name, line, len(f))
		}
		var rn run
		var errs []error
		atoi := func(s string) int {
			n, err := strconv.Atoi(s)
			errs = append(errs, err)
			return n
		}
		atof := func(s string) float64 {
			x, err := strconv.ParseFloat(s, 64)
			errs = append(errs, err)
			return x
		}
		rn.round, rn.conc, rn.target = atoi(f[0]), atoi(f[1]), f[2]
		rn.requests = int64(atoi(f[3]))
		rn.durationUS, rn.p50, rn.p99 = atof(f[4]), atof(f[5]), atof(f[6])
		for i := range rn.errs {
			rn.errs[i] = int64(atoi(f[7+i]))
		}
		rn.proxyTicks, rn.fakeTicks = int64(atoi(f[12])), int64(atoi(f[13]))
		if err := errors.Join(errs...); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		if rn.durationUS <= 0 {
			return nil, fmt.Errorf("%s:%d: duration %v", name, line, rn.durationUS)
		}
		if targetIndex(ts, rn.target) < 0 {
			return nil, fmt.Errorf("%s:%d: unknown target %q", name, line, rn.target)
		}
		runs = append(runs, rn)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(runs) == 0 {
		return nil, fmt.Errorf("%s: no runs", name)
	}
	return runs, nil
}

type key struct {
	target string
	conc   int
}

// cell is the median over rounds of one target at one concurrency.
type cell struct {
	n                int
	rps, p50, p99    float64
	rpsMin, rpsMax   float64
	p50Min, p50Max   float64
	requests, errors int64
	errs             [5]int64
	proxyCPU         float64 // µs a request, median of rounds
	fakeCPU          float64
}

type ratio struct {
	name, version string
	value         float64
	lo, hi        float64 // per-round range
	target        float64
	higherIsBad   bool
}

func (r ratio) ok() bool {
	if r.higherIsBad {
		return r.value <= r.target
	}
	return r.value >= r.target
}

type report struct {
	targets []target // shown, in this order
	concs   []int
	cells   map[key]*cell
	ratios  []ratio
	total   int64 // requests completed by wrk, all runs
	errors  int64
}

// analyse is the loopback report: the cells, and imdsguard/bareproxy
// against the targets.
func analyse(runs []run) *report {
	rep := cells(runs, targets)
	lo, hi := rep.concs[0], rep.concs[len(rep.concs)-1]
	for _, v := range []struct{ version, target string }{{"v1", "imdsguard-v1"}, {"v2", "imdsguard-v2"}} {
		rep.addRatio(runs, "p50 latency at c="+strconv.Itoa(lo), v.version, v.target, lo,
			func(c *cell) float64 { return c.p50 }, func(r run) float64 { return r.p50 }, maxP50Ratio, true)
		rep.addRatio(runs, "req/s at c="+strconv.Itoa(hi), v.version, v.target, hi,
			func(c *cell) float64 { return c.rps }, func(r run) float64 { return r.rps() }, minRPSRatio, false)
	}
	return rep
}

// cells is the median over rounds of every target and concurrency of runs
// (which must not be empty), shown in the order of ts.
func cells(runs []run, ts []target) *report {
	rep := &report{targets: ts, cells: map[key]*cell{}}
	byKey := map[key][]run{}
	for _, r := range runs {
		k := key{r.target, r.conc}
		byKey[k] = append(byKey[k], r)
		if !slices.Contains(rep.concs, r.conc) {
			rep.concs = append(rep.concs, r.conc)
		}
		rep.total += r.requests
		rep.errors += r.errors()
	}
	slices.Sort(rep.concs)
	for k, rs := range byKey {
		c := &cell{n: len(rs)}
		var rps, p50, p99, pcpu, fcpu []float64
		for _, r := range rs {
			rps = append(rps, r.rps())
			pcpu = append(pcpu, cpuPerRequest(r.proxyTicks, r.requests))
			fcpu = append(fcpu, cpuPerRequest(r.fakeTicks, r.requests))
			p50 = append(p50, r.p50)
			p99 = append(p99, r.p99)
			c.requests += r.requests
			c.errors += r.errors()
			for i, e := range r.errs {
				c.errs[i] += e
			}
		}
		c.rps, c.p50, c.p99 = median(rps), median(p50), median(p99)
		c.proxyCPU, c.fakeCPU = median(pcpu), median(fcpu)
		c.rpsMin, c.rpsMax = slices.Min(rps), slices.Max(rps)
		c.p50Min, c.p50Max = slices.Min(p50), slices.Max(p50)
		rep.cells[k] = c
	}
	return rep
}

// addRatio adds target/bareproxy of a measure at conc: the ratio of the
// medians, and the range of the per-round ratios (the runs of one round are
// back to back, so they saw about the same machine).
func (rep *report) addRatio(runs []run, name, version, target string, conc int,
	ofCell func(*cell) float64, ofRun func(run) float64, limit float64, higherIsBad bool) {
	g, b := rep.cells[key{target, conc}], rep.cells[key{"bareproxy", conc}]
	if g == nil || b == nil || ofCell(b) == 0 {
		return
	}
	r := ratio{name: name, version: version, value: ofCell(g) / ofCell(b), target: limit, higherIsBad: higherIsBad}
	r.lo, r.hi = perRoundRange(runs, target, "bareproxy", conc, ofRun)
	rep.ratios = append(rep.ratios, r)
}

// perRoundRange is the range of target/base of a measure at conc over the
// rounds that have both (0, 0 when none has).
func perRoundRange(runs []run, target, base string, conc int, ofRun func(run) float64) (lo, hi float64) {
	of := map[int]float64{}
	for _, rn := range runs {
		if rn.target == base && rn.conc == conc {
			of[rn.round] = ofRun(rn)
		}
	}
	var per []float64
	for _, rn := range runs {
		if rn.target == target && rn.conc == conc && of[rn.round] != 0 {
			per = append(per, ofRun(rn)/of[rn.round])
		}
	}
	if len(per) == 0 {
		return 0, 0
	}
	return slices.Min(per), slices.Max(per)
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func failures(m *meta, rep *report) []string {
	var f []string
	if rep.errors != 0 {
		f = append(f, fmt.Sprintf("%d non-2xx answers or socket errors over all runs (want 0)", rep.errors))
	}
	if m.upstreamPuts != 1 {
		f = append(f, fmt.Sprintf("fakeimds counted %d token PUTs from imdsguard (want exactly 1)", m.upstreamPuts))
	}
	if m.upstreamUnauthorized != 0 {
		f = append(f, fmt.Sprintf("fakeimds answered %d requests with 401 (want 0)", m.upstreamUnauthorized))
	}
	if !getsOK(m, rep) {
		f = append(f, fmt.Sprintf("fakeimds counted %d GETs; the targets answered %d requests, and at most %d more were in flight when runs ended: every request must reach the upstream exactly once",
			m.upstreamGets, rep.total+m.extraRequests, m.inFlightMax))
	}
	return f
}

// getsOK: every request answered reached fakeimds once (the proxies neither
// cache nor retry), give or take the requests in flight when a run ended.
func getsOK(m *meta, rep *report) bool {
	if m.upstreamGets < 0 {
		return true
	}
	answered := rep.total + m.extraRequests
	return m.upstreamGets >= answered && m.upstreamGets <= answered+m.inFlightMax
}

func us(x float64) string {
	if x >= 1000 {
		return fmt.Sprintf("%.2f ms", x/1000)
	}
	return fmt.Sprintf("%.0f µs", x)
}

func (rep *report) table() string {
	var b strings.Builder
	b.WriteString("| target | request |")
	for _, c := range rep.concs {
		fmt.Fprintf(&b, " c=%d req/s | c=%d p50 | c=%d p99 |", c, c, c)
	}
	b.WriteString("\n|---|---|")
	for range rep.concs {
		b.WriteString("--:|--:|--:|")
	}
	b.WriteString("\n")
	for _, t := range rep.targets {
		fmt.Fprintf(&b, "| %s | %s |", t.label, t.what)
		for _, c := range rep.concs {
			cl := rep.cells[key{t.id, c}]
			if cl == nil {
				b.WriteString(" – | – | – |")
				continue
			}
			fmt.Fprintf(&b, " %.0f | %s | %s |", cl.rps, us(cl.p50), us(cl.p99))
		}
		b.WriteString("\n")
	}
	return b.String()
}

func (rep *report) cpuTable() string {
	var b strings.Builder
	b.WriteString("| target |")
	for _, c := range rep.concs {
		fmt.Fprintf(&b, " c=%d proxy | c=%d fakeimds |", c, c)
	}
	b.WriteString("\n|---|")
	for range rep.concs {
		b.WriteString("--:|--:|")
	}
	b.WriteString("\n")
	for _, t := range rep.targets {
		fmt.Fprintf(&b, "| %s |", t.label)
		for _, c := range rep.concs {
			cl := rep.cells[key{t.id, c}]
			switch {
			case cl == nil:
				b.WriteString(" – | – |")
			case t.id == "direct":
				fmt.Fprintf(&b, " – | %.1f µs |", cl.fakeCPU)
			default:
				fmt.Fprintf(&b, " %.1f µs | %.1f µs |", cl.proxyCPU, cl.fakeCPU)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

func (rep *report) ratioTable() string {
	var b strings.Builder
	b.WriteString("| path | imdsguard / bareproxy | ratio (median of rounds) | per-round range | target | |\n")
	b.WriteString("|---|---|--:|--:|--:|---|\n")
	for _, r := range rep.ratios {
		op, verdict := "≥", "meets"
		if r.higherIsBad {
			op = "≤"
		}
		if !r.ok() {
			verdict = "**misses**"
		}
		fmt.Fprintf(&b, "| %s | %s | %.2f | %.2f–%.2f | %s %.2f | %s |\n", r.version, r.name, r.value, r.lo, r.hi, op, r.target, verdict)
	}
	return b.String()
}

func summary(m *meta, rep *report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nMedian of %d round(s) × %d s, GET %s:\n\n", m.rounds, m.seconds, m.path)
	b.WriteString(rep.table())
	b.WriteString("\n")
	b.WriteString(rep.ratioTable())
	b.WriteString("\nCPU per request (median of rounds):\n\n")
	b.WriteString(rep.cpuTable())
	fmt.Fprintf(&b, "\nnon-2xx/socket errors: %d; upstream token PUTs by imdsguard: %d (want 1); upstream 401s: %d\n",
		rep.errors, m.upstreamPuts, m.upstreamUnauthorized)
	fmt.Fprintf(&b, "imdsguard audit log: %.1f MB, %d lines; rule %q, caller %s\n", float64(m.auditBytes)/1e6, m.auditLines, m.guardRule, m.guardCaller)
	if m.out != "" {
		fmt.Fprintf(&b, "wrote %s\n", m.out)
	}
	return b.String()
}

// correctnessTable is the table of checks both parts of the report end with.
func correctnessTable(m *meta, rep *report) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("| check | value | |\n|---|--:|---|\n")
	w("| non-2xx answers and socket errors, all runs | %d | %s |\n", rep.errors, check(rep.errors == 0))
	w("| upstream token PUTs by imdsguard (the whole run) | %d | %s |\n", m.upstreamPuts, check(m.upstreamPuts == 1))
	w("| upstream 401s | %d | %s |\n", m.upstreamUnauthorized, check(m.upstreamUnauthorized == 0))
	w("| upstream GETs / requests answered (runs %d, warm-up and pre-flight %d) | %d / %d (+%d) | %s |\n",
		rep.total, m.extraRequests, m.upstreamGets, rep.total+m.extraRequests, m.upstreamGets-rep.total-m.extraRequests, check(getsOK(m, rep)))
	return b.String()
}

func check(ok bool) string {
	if ok {
		return "ok"
	}
	return "**FAIL**"
}

func render(m *meta, rep *report, runs []run) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("# Benchmarks\n\n")
	w("<!-- Generated by scripts/bench.sh (tools/cmd/benchreport); edits are overwritten. -->\n\n")
	w("What imdsguard costs per request compared with a plain reverse proxy, on loopback,\n")
	w("against a fast fake IMDS (`tools/fakeimds`, tokens required).\n")
	if m.withRedirect {
		w("The cost of the redirect itself, imdsguard reached through its nat rules against the\n")
		w("client going straight to the metadata address, is measured in network namespaces by\n")
		w("the second part of the same run: [Through the redirect (namespaces)](#through-the-redirect-namespaces).\n")
	}
	w("\n## Run\n\n")
	w("```sh\n%s\n```\n\n", m.command)
	w("| | |\n|---|---|\n")
	w("| date | %s |\n", m.date)
	w("| machine | %s CPUs (`nproc`), %s |\n", m.machine, m.cpu)
	w("| kernel | %s |\n", m.kernel)
	w("| Go | %s |\n", m.goVer)
	w("| imdsguard | %s |\n", m.revision)
	w("| load | wrk: c=1 is `-t1 -c1`, c=16 is `-t2 -c16`; keep-alive; %d s warm-up per target, then %d round(s) of %d s per target and concurrency, interleaved (a, b, c, d at c=1, then at c=16, then the next round) |\n",
		m.warmup, m.rounds, m.seconds)
	w("| request | `GET %s` |\n", m.path)
	w("| processes | fakeimds `%s`, bareproxy `%s`, imdsguard `%s` (endpoint mode, no redirect rules, default policy); imdsguard's JSON audit log goes to a file |\n",
		m.fakeimdsAddr, m.bareproxyAddr, m.imdsguardAddr)
	if m.guardRule != "" || m.guardCaller != "" {
		w("| imdsguard's view | rule `%s`, caller `%s` |\n", m.guardRule, m.guardCaller)
	}
	w("\n")

	w("## Results\n\n")
	w("Median over the rounds of each run's requests/s, p50 and p99 latency (wrk `--latency`, as seen by the client).\n\n")
	b.WriteString(rep.table())
	w("\n## Targets\n\n")
	b.WriteString(rep.ratioTable())
	w("\n## CPU per request\n\n")
	w("User+system CPU time of each process over a run divided by the requests wrk counted\n")
	w("(from /proc/PID/stat, %g ticks a second; median of rounds). Less sensitive to scheduling\n", clkTck)
	w("noise than latency. At c=1 it includes the Go runtime spinning while it waits for the\n")
	w("next request, so it overstates the work per request for every Go process alike.\n\n")
	b.WriteString(rep.cpuTable())
	w("\n## Correctness\n\n")
	b.WriteString(correctnessTable(m, rep))
	w("\nThe PUT count: fakeimds counts token PUTs from everybody. The script fetches the\n")
	w("fakeimds token used by (a) and (b) first, reads fakeimds's count (%d) before imdsguard\n", m.putsBefore)
	w("starts, and reports the count at the end minus that. Nothing else sends PUTs to fakeimds\n")
	w("(bareproxy only forwards GETs), so the difference is imdsguard's upstream session: one\n")
	w("PUT per `token_ttl` (6 h) however many callers and requests.\n\n")
	w("Every request a target answered must have reached fakeimds exactly once (no cache, no\n")
	w("retry): upstream GETs may exceed the answered requests only by those in flight when a\n")
	w("wrk run stopped (wrk does not count them), at most the sum of the runs' concurrencies (%d).\n\n", m.inFlightMax)
	w("imdsguard's audit log (stderr, one JSON line per request) grew to %.1f MB (%d bytes), %d lines", float64(m.auditBytes)/1e6, m.auditBytes, m.auditLines)
	if m.auditLines > 0 {
		w(" (%.0f bytes a line)", float64(m.auditBytes)/float64(m.auditLines))
	}
	w(".\n\n")

	w("## How to read this\n\n")
	w("- (a) is the floor: the client straight to the fake. (b) adds one hop through Go's\n")
	w("  `httputil.ReverseProxy` and nothing else. (c) and (d) are imdsguard doing its work:\n")
	w("  policy decision, caller-bound token check (d), the host's upstream session token,\n")
	w("  header hygiene, and an audit line per request. What matters is (c) and (d) against (b).\n")
	w("- The ratios are the targets: imdsguard's p50 at c=1 within 15%% of bareproxy's (the\n")
	w("  latency a single SDK call sees), and its throughput at c=16 at least 85%% of bareproxy's.\n")
	w("  They are reported, not asserted: a benchmark on a shared machine is not a test.\n")
	w("- Everything runs on the same %s CPUs: wrk, fakeimds and the proxy compete for them, so\n", m.machine)
	w("  c=16 numbers measure CPU per request of the whole chain more than anything else, and a\n")
	w("  proxy that spends more CPU lowers fakeimds's share too.\n")
	w("- The machine is shared and noisy. Runs are interleaved so that noise hits every target\n")
	w("  alike, and each cell is a median over rounds; the per-round range of the ratios (the\n")
	w("  runs of one round are back to back) shows how much to trust a ratio. Compare ratios,\n")
	w("  not absolute numbers, across machines or days.\n")
	w("- CPU per request is the steadier measure of what each proxy costs; the ratios are\n")
	w("  what a caller feels.\n")
	w("- p99 at c=1 is mostly scheduler noise (a goroutine or process waiting for a CPU).\n")
	w("- Rerun with more rounds or longer runs for steadier numbers:\n")
	w("  `BENCH_ROUNDS=5 BENCH_SECONDS=10 scripts/bench.sh`.\n\n")

	w("## Every run\n\n")
	b.WriteString(runsTable(runs, targets))
	return b.String()
}

// runsTable lists every run, by concurrency, target (in the order of ts) and
// round.
func runsTable(runs []run, ts []target) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("| round | c | target | requests | req/s | p50 | p99 | errors | proxy CPU/req | fakeimds CPU/req |\n|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|\n")
	sorted := slices.Clone(runs)
	order := func(id string) int { return targetIndex(ts, id) }
	slices.SortStableFunc(sorted, func(x, y run) int {
		if x.conc != y.conc {
			return x.conc - y.conc
		}
		if d := order(x.target) - order(y.target); d != 0 {
			return d
		}
		return x.round - y.round
	})
	for _, r := range sorted {
		var e []string
		for i, n := range r.errs {
			if n != 0 {
				e = append(e, fmt.Sprintf("%s %d", errNames[i], n))
			}
		}
		es := "0"
		if len(e) > 0 {
			es = strings.Join(e, ", ")
		}
		pcpu := "–"
		if r.target != "direct" {
			pcpu = fmt.Sprintf("%.1f µs", cpuPerRequest(r.proxyTicks, r.requests))
		}
		w("| %d | %d | %s | %d | %.0f | %s | %s | %s | %s | %.1f µs |\n", r.round, r.conc, r.target, r.requests, r.rps(), us(r.p50), us(r.p99), es,
			pcpu, cpuPerRequest(r.fakeTicks, r.requests))
	}
	return b.String()
}
