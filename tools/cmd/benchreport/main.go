// Command benchreport turns the raw wrk runs of scripts/bench.sh into
// docs/BENCHMARKS.md: per target and concurrency the median over rounds of
// requests/s, p50 and p99 latency, CPU per request and upstream requests;
// the proxies' memory with 1,000 connections open; imdsguard against nginx
// (plain and caching) and its memory, held against the targets; and the
// correctness checks (no non-2xx or socket errors, exactly one upstream token
// PUT per imdsguard, each request of a proxy without a cache sent upstream
// once). It prints the tables to stdout as well.
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
//	round conc target requests duration_us p50_us p99_us err_connect err_read err_write err_status err_timeout proxy_cpu_ticks fakeimds_cpu_ticks upstream_gets pss_during_kb pss_after_kb conns_during
//
// The CPU ticks are user+system time of the proxy process (and its children:
// nginx's workers; 0 for the direct target) and of fakeimds over the run, in
// units of 1/-clk-tck seconds. upstream_gets are the GETs fakeimds received
// over the run. The last three are 0 unless the run sampled the proxy's
// memory: its largest PSS during the run (sampled once a second) and its PSS
// after it, and the most connections seen open at its port.
//
// Performance is reported, never asserted. The exit status is 1 when a
// correctness check fails (after the report is written), 2 on bad input.
package main

import (
	"flag"
	"fmt"
	"os"
)

// meta is what the flags say: the files, the run and its machine, and the
// counts the correctness checks need.
type meta struct {
	runsFile, out                          string
	command, date, machine, kernel, goVer  string
	cpu, revision, path                    string
	rounds, seconds, warmup                int
	upstreamPuts, putsBefore, upstreamGets int64
	upstreamUnauthorized, auditBytes       int64
	auditLines, extraRequests, inFlightMax int64
	guards                                 int64 // imdsguard daemons: one token PUT each
	fakeimdsAddr, imdsguardAddr            string
	guardRule, guardCaller                 string
	withRedirect                           bool   // loopback report: the redirect section follows
	section                                string // "" (the loopback report) or "redirect"
	// The loopback report.
	cacheSkipped              string // why the cached imdsguard was not run; "" when it was
	nginxVersion, nginxValid  string // nginx -v; the cache's proxy_cache_valid
	nginxConf, nginxCacheConf string // their configuration files (quoted in the report)
	guardCacheConfigFile      string // the cached imdsguard's configuration (quoted)
	busyBefore, busyAfter     string // % of the CPUs other processes kept busy before and after
	loadBefore, loadAfter     string // load averages then
	pssConc                   int    // the concurrency whose runs sampled memory
	floorWork                 string // the CPU (k) and (l) spend per request, as gofloor's -work
	// The redirect section.
	imdsNS, directNS, guardNS  string // the namespaces
	directLink, guardLink      string // their links to imdsNS
	guardConfigFile, rulesFile string // imdsguard's configuration (both reports), its nat rules
}

func main() {
	var m meta
	defineFlags(&m)
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
	os.Exit(mainLoopback(&m))
}

// mainLoopback is the loopback report; it returns the exit status.
func mainLoopback(m *meta) int {
	runs, err := readRuns(m.runsFile, targets)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		return 2
	}
	var quoted [3]string
	for i, name := range []string{m.nginxCacheConf, m.guardConfigFile, m.guardCacheConfigFile} {
		if quoted[i], err = readQuoted(name); err != nil {
			fmt.Fprintln(os.Stderr, "benchreport:", err)
			return 2
		}
	}
	skipped := map[string]string{}
	if m.cacheSkipped != "" {
		skipped[tGuardCache] = m.cacheSkipped
	}
	rep := analyse(runs, m.pssConc, skipped)
	doc := render(m, rep, runs, configs{nginxCache: quoted[0], guard: quoted[1], guardCache: quoted[2]})
	if m.out != "" {
		if err := os.WriteFile(m.out, []byte(doc), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "benchreport:", err)
			return 2
		}
	}
	fmt.Print(summary(m, rep))
	if fails := loopbackFailures(m, rep, runs); len(fails) > 0 {
		for _, f := range fails {
			fmt.Fprintln(os.Stderr, "benchreport: FAIL:", f)
		}
		return 1
	}
	return 0
}

// defineFlags defines the command line flags, which fill m and clkTck.
func defineFlags(m *meta) {
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
	flag.StringVar(&m.imdsguardAddr, "imdsguard", "", "imdsguard address")
	flag.Int64Var(&m.guards, "guards", 1, "imdsguard daemons run (each sends one token PUT)")
	flag.StringVar(&m.cacheSkipped, "cache-skipped", "", "why the cached imdsguard target was not run (empty: it was)")
	flag.StringVar(&m.nginxVersion, "nginx-version", "", "nginx's version")
	flag.StringVar(&m.nginxValid, "nginx-valid", "", "the caching nginx's proxy_cache_valid")
	flag.StringVar(&m.nginxConf, "nginx-conf", "", "the plain nginx's configuration file")
	flag.StringVar(&m.nginxCacheConf, "nginx-cache-conf", "", "the caching nginx's configuration file (quoted in the report)")
	flag.StringVar(&m.guardCacheConfigFile, "guard-cache-config", "", "the cached imdsguard's configuration file (quoted in the report)")
	flag.StringVar(&m.busyBefore, "busy-before", "", "% of the CPUs other processes kept busy before the run")
	flag.StringVar(&m.busyAfter, "busy-after", "", "% of the CPUs other processes kept busy after the run")
	flag.StringVar(&m.loadBefore, "load-before", "", "load averages before the run")
	flag.StringVar(&m.loadAfter, "load-after", "", "load averages after the run")
	flag.IntVar(&m.pssConc, "pss-conc", 1000, "the concurrency whose runs sampled the proxies' memory")
	flag.StringVar(&m.floorWork, "floor-work", "", "the CPU the floors with work spend per request (gofloor -work)")
	flag.BoolVar(&m.withRedirect, "with-redirect", false, "loopback report: say that the redirect section follows")
	flag.StringVar(&m.section, "section", "", `"redirect": report the runs through the redirect as a section of -out (see the package doc)`)
	flag.StringVar(&m.imdsNS, "imds-ns", "", "redirect: the namespace of fakeimds")
	flag.StringVar(&m.directNS, "direct-ns", "", "redirect: the namespace of the direct runs (no rules)")
	flag.StringVar(&m.guardNS, "guard-ns", "", "redirect: the namespace of imdsguard and its rules")
	flag.StringVar(&m.directLink, "direct-link", "", "redirect: the direct namespace's link to the metadata namespace, e.g. 192.0.2.1/24 — 192.0.2.2/24")
	flag.StringVar(&m.guardLink, "guard-link", "", "redirect: the guard namespace's link to the metadata namespace")
	flag.StringVar(&m.guardConfigFile, "guard-config", "", "imdsguard's configuration file (quoted in the report)")
	flag.StringVar(&m.rulesFile, "rules", "", "redirect: the nat rules imdsguard installed, iptables -S (quoted in the report)")
}
