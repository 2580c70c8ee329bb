package main

// The second part of the benchmark (scripts/bench-redirect.sh): a client in
// a network namespace without rules straight to fakeimds on the metadata
// address, against clients in a namespace where imdsguard runs with its
// redirect rules, so that their requests to 169.254.169.254 reach it through
// nat OUTPUT REDIRECT (and, to isolate the rule, a client asking imdsguard's
// port directly). It becomes one section of docs/BENCHMARKS.md.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// redirectHeading is the heading of the section; everything up to the next
// heading of the same level (or the end of the file) is the section.
const redirectHeading = "## Through the redirect (namespaces)"

var redirectTargets = []target{
	{id: "direct", label: "(a) direct", what: "v2, fakeimds token; namespace without rules"},
	{id: "imdsguard-v1", label: "(b) imdsguard v1, redirected", what: "no token: upgraded upstream"},
	{id: "imdsguard-v2", label: "(c) imdsguard v2, redirected", what: "imdsguard token, minted through the redirect"},
	{id: "imdsguard-v1-endpoint", label: "(d) imdsguard v1, endpoint", what: "no token, to 127.0.0.1:8989: no NAT"},
}

// redirectRatio is target/base at one concurrency: ratios of the medians
// over rounds, and for p50 and req/s the range of the per-round ratios.
type redirectRatio struct {
	label, target, base string
	conc                int
	p50, p50Lo, p50Hi   float64
	p50Added            float64 // µs: median p50 of target minus that of base
	p99                 float64
	rps, rpsLo, rpsHi   float64
}

// redirectReport is the report of the runs through the redirect.
type redirectReport struct {
	*report
	vsDirect []redirectRatio // imdsguard's targets over direct
	rule     []redirectRatio // v1 redirected over v1 endpoint: the rule alone
}

// analyseRedirect computes the cells and, per concurrency, every imdsguard
// target over direct and the redirected v1 over the endpoint v1. Ratios
// whose targets have no runs are left out.
func analyseRedirect(runs []run) *redirectReport {
	rep := &redirectReport{report: cells(runs, redirectTargets)}
	for _, v := range []struct{ label, target string }{
		{"v1", "imdsguard-v1"}, {"v2", "imdsguard-v2"}, {"v1 endpoint", "imdsguard-v1-endpoint"},
	} {
		for _, c := range rep.concs {
			if r, ok := rep.ratioOf(runs, v.label, v.target, "direct", c); ok {
				rep.vsDirect = append(rep.vsDirect, r)
			}
		}
	}
	for _, c := range rep.concs {
		if r, ok := rep.ratioOf(runs, "v1", "imdsguard-v1", "imdsguard-v1-endpoint", c); ok {
			rep.rule = append(rep.rule, r)
		}
	}
	return rep
}

func (rep *redirectReport) ratioOf(runs []run, label, target, base string, c int) (redirectRatio, bool) {
	g, d := rep.cells[key{target, c}], rep.cells[key{base, c}]
	if g == nil || d == nil || d.p50 == 0 || d.p99 == 0 || d.rps == 0 {
		return redirectRatio{}, false
	}
	r := redirectRatio{
		label: label, target: target, base: base, conc: c,
		p50: g.p50 / d.p50, p50Added: g.p50 - d.p50,
		p99: g.p99 / d.p99,
		rps: g.rps / d.rps,
	}
	r.p50Lo, r.p50Hi = perRoundRange(runs, key{target, c}, key{base, c}, func(r run) float64 { return r.p50 })
	r.rpsLo, r.rpsHi = perRoundRange(runs, key{target, c}, key{base, c}, func(r run) float64 { return r.rps() })
	return r, true
}

// signedUS is a latency difference with its sign.
func signedUS(x float64) string {
	if x < 0 {
		return "−" + us(-x)
	}
	return "+" + us(x)
}

// redirectRatioTable shows rs; title heads the first column.
func redirectRatioTable(title string, rs []redirectRatio) string {
	var b strings.Builder
	fmt.Fprintf(&b, "| %s | c | p50 ratio | per-round range | p50 added | p99 ratio | req/s ratio | per-round range |\n", title)
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range rs {
		fmt.Fprintf(&b, "| %s | %d | %.2f | %.2f–%.2f | %s | %.2f | %.2f | %.2f–%.2f |\n",
			r.label, r.conc, r.p50, r.p50Lo, r.p50Hi, signedUS(r.p50Added), r.p99, r.rps, r.rpsLo, r.rpsHi)
	}
	return b.String()
}

const (
	vsDirectTitle = "imdsguard / direct"
	ruleTitle     = "redirected / endpoint"
)

// readQuoted is the content of a file quoted in the report: "" for no file
// name.
func readQuoted(name string) (string, error) {
	if name == "" {
		return "", nil
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(b), "\n"), nil
}

// mainRedirect is benchreport -section redirect; it returns the exit status.
func mainRedirect(m *meta) int {
	runs, err := readRuns(m.runsFile, redirectTargets)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		return 2
	}
	config, err := readQuoted(m.guardConfigFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		return 2
	}
	rules, err := readQuoted(m.rulesFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		return 2
	}
	rep := analyseRedirect(runs)
	section := renderRedirect(m, rep, runs, config, rules)
	if m.out != "" {
		old, err := os.ReadFile(m.out)
		if errors.Is(err, fs.ErrNotExist) {
			old, err = []byte("# Benchmarks\n"), nil
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchreport:", err)
			return 2
		}
		if err := os.WriteFile(m.out, []byte(spliceSection(string(old), redirectHeading, section)), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "benchreport:", err)
			return 2
		}
	}
	fmt.Print(summaryRedirect(m, rep))
	if fails := redirectFailures(m, rep.report); len(fails) > 0 {
		for _, f := range fails {
			fmt.Fprintln(os.Stderr, "benchreport: FAIL (through the redirect):", f)
		}
		return 1
	}
	return 0
}

// spliceSection puts section (which starts with heading, a "## " line) into
// doc: in place of the section of that heading when doc has one (up to the
// next "## " heading or the end), else at the end. The rest of doc is kept.
func spliceSection(doc, heading, section string) string {
	section = strings.TrimRight(section, "\n") + "\n"
	start := -1
	if strings.HasPrefix(doc, heading+"\n") {
		start = 0
	} else if i := strings.Index(doc, "\n"+heading+"\n"); i >= 0 {
		start = i + 1
	}
	if start < 0 {
		doc = strings.TrimRight(doc, "\n")
		if doc == "" {
			return section
		}
		return doc + "\n\n" + section
	}
	body := start + len(heading) + 1
	end := len(doc)
	if j := strings.Index(doc[body:], "\n## "); j >= 0 {
		end = body + j + 1
	}
	if end < len(doc) {
		section += "\n"
	}
	return doc[:start] + section + doc[end:]
}

func summaryRedirect(m *meta, rep *redirectReport) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nThrough the redirect (namespaces): median of %d round(s) × %d s, GET %s:\n\n", m.rounds, m.seconds, m.path)
	b.WriteString(rep.table())
	b.WriteString("\n")
	b.WriteString(redirectRatioTable(vsDirectTitle, rep.vsDirect))
	if len(rep.rule) > 0 {
		b.WriteString("\nThe rule alone:\n\n")
		b.WriteString(redirectRatioTable(ruleTitle, rep.rule))
	}
	b.WriteString("\nCPU per request (median of rounds):\n\n")
	b.WriteString(rep.cpuTable())
	fmt.Fprintf(&b, "\nnon-2xx/socket errors: %d; upstream token PUTs by imdsguard: %d (want 1); upstream 401s: %d\n",
		rep.errors, m.upstreamPuts, m.upstreamUnauthorized)
	fmt.Fprintf(&b, "imdsguard audit log: %.1f MB, %d lines; rule %q, caller %s\n", float64(m.auditBytes)/1e6, m.auditLines, m.guardRule, m.guardCaller)
	if m.out != "" {
		fmt.Fprintf(&b, "wrote the section %q of %s\n", strings.TrimPrefix(redirectHeading, "## "), m.out)
	}
	return b.String()
}

func renderRedirect(m *meta, rep *redirectReport, runs []run, config, rules string) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("%s\n\n", redirectHeading)
	w("<!-- Generated by scripts/bench-redirect.sh (tools/cmd/benchreport -section redirect); edits are overwritten. -->\n\n")
	w("What the redirect costs a caller that knows nothing of imdsguard: a process on the host\n")
	w("asks `http://169.254.169.254` itself and reaches imdsguard through its nat OUTPUT REDIRECT\n")
	w("rule, compared with the same request going straight to the metadata address. Measured in\n")
	w("network namespaces the script makes (and removes on exit), so that the metadata address\n")
	w("exists and the rules are installed only there; fakeimds plays the metadata service.\n\n")

	w("### Run\n\n")
	w("```sh\n%s\n```\n\n", m.command)
	w("| | |\n|---|---|\n")
	w("| date | %s |\n", m.date)
	w("| machine | %s CPUs (`nproc`), %s; kernel %s |\n", m.machine, m.cpu, m.kernel)
	w("| imdsguard | %s |\n", m.revision)
	w("| load | wrk in the client's namespace (`ip netns exec`): c=1 is `-t1 -c1`, c=16 is `-t2 -c16`; keep-alive; %d s warm-up per target, then %d round(s) of %d s per target and concurrency, interleaved (a, b, c, d at c=1, then at c=16, then the next round) |\n",
		m.warmup, m.rounds, m.seconds)
	w("| request | `GET http://169.254.169.254%s` |\n", m.path)
	w("| metadata service | namespace `%s`: 169.254.169.254/32 on lo, fakeimds on 169.254.169.254:80 (tokens required) |\n", m.imdsNS)
	w("| (a) direct | namespace `%s`: a veth to the metadata namespace, %s, route 169.254.169.254/32 via it; no rules, no proxy |\n", m.directNS, m.directLink)
	w("| (b), (c), (d) imdsguard | namespace `%s`: the same kind of veth, %s, the same route; `imdsguard run` there with its rules installed; its JSON audit log goes to a file. (d) asks it at 127.0.0.1:8989, the way a client configured with `AWS_EC2_METADATA_SERVICE_ENDPOINT` would: no NAT |\n", m.guardNS, m.guardLink)
	if m.guardRule != "" || m.guardCaller != "" {
		w("| imdsguard's view | rule `%s`, caller `%s` |\n", m.guardRule, m.guardCaller)
	}
	w("\n")
	if config != "" {
		w("imdsguard's configuration (`imdsguard policy check` passes; the rest is defaults):\n\n```yaml\n%s\n```\n\n", config)
	}
	if rules != "" {
		w("The nat rules it installed in its namespace (`iptables -t nat -S`, the `-A` lines; its filter rules,\n")
		w("which keep the proxy port closed and refuse metadata traffic that escaped the redirect,\n")
		w("are on the path too):\n\n```\n%s\n```\n\n", rules)
	}

	w("### Results\n\n")
	w("Median over the rounds of each run's requests/s, p50 and p99 latency (wrk `--latency`, as seen by the client).\n\n")
	b.WriteString(rep.table())
	w("\n### Proxied / direct\n\n")
	w("imdsguard over direct: the ratio of the medians, the range of the per-round ratios (the\n")
	w("runs of one round are back to back), and the p50 latency imdsguard adds, with (b), (c)\n")
	w("the redirect too. Reported, not asserted.\n\n")
	b.WriteString(redirectRatioTable(vsDirectTitle, rep.vsDirect))
	if len(rep.rule) > 0 {
		w("\nThe rule alone: (b) over (d), the same v1 request from the same namespace to the same\n")
		w("daemon, through the nat OUTPUT REDIRECT or straight to its port.\n\n")
		b.WriteString(redirectRatioTable(ruleTitle, rep.rule))
	}
	w("\n### CPU per request\n\n")
	w("User+system CPU time of imdsguard and of fakeimds over a run divided by the requests wrk\n")
	w("counted (/proc/PID/stat, %g ticks a second; median of rounds). The kernel's work for the\n", clkTck)
	w("redirect (conntrack, NAT) and the veths is in softirq context and counted for nobody.\n\n")
	b.WriteString(rep.cpuTable())
	w("\n### Correctness\n\n")
	b.WriteString(correctnessTable(m, rep.report, redirectGetsRow(m, rep.report)))
	w("\nThis part has a fakeimds of its own. The script fetches the token of (a) from it first,\n")
	w("reads its PUT count (%d) before imdsguard starts, and reports the count at the end minus\n", m.putsBefore)
	w("that: imdsguard's upstream session, one PUT however many callers and requests. fakeimds\n")
	w("requires its own tokens, so (b) (no token) and (c) (an imdsguard token) can only have been\n")
	w("answered 200 through imdsguard, that is through the redirect: with no 401s and no non-2xx\n")
	w("answers, every request of (b) and (c) took that path. Upstream GETs may exceed the answered\n")
	w("requests only by those in flight when a wrk run stopped, at most %d.\n\n", m.inFlightMax)
	w("imdsguard's audit log (one JSON line per request, to a file) grew to %.1f MB, %d lines.\n\n", float64(m.auditBytes)/1e6, m.auditLines)

	w("### How to read this\n\n")
	w("- (a) and (b)/(c) run in twin namespaces with the same kind of link to the metadata\n")
	w("  namespace, so the difference is the redirect and the proxy: the nat OUTPUT REDIRECT\n")
	w("  (conntrack and NAT on every packet), the hop over loopback to imdsguard, imdsguard's\n")
	w("  work (the caller's identity once per connection, the policy, the token check of (c), an\n")
	w("  audit line per request) and its own keep-alive connection upstream over the veth.\n")
	w("- (b) against (a) is the whole cost a caller sees. (b) against (d) is the rule's share:\n")
	w("  the same daemon and request without the NAT. The loopback part above splits the rest:\n")
	w("  there bareproxy is one hop through a plain Go reverse proxy, and imdsguard against\n")
	w("  bareproxy is what imdsguard's own work costs.\n")
	w("- wrk keeps its connections alive, so the per-connection costs (the NAT set-up, the\n")
	w("  caller identity lookup: docs/IDENTITY_BENCH.md) are paid once per connection and run;\n")
	w("  a client that opens a connection per request pays them every time.\n")
	w("- Everything runs on the same %s CPUs: wrk, fakeimds and imdsguard compete for them, so at\n", m.machine)
	w("  c=16 the req/s ratio is mostly the CPU per request of the whole chain. The machine is\n")
	w("  shared and noisy: compare the ratios and their per-round ranges, not absolute numbers.\n")
	w("- p99, at c=1 above all, is mostly scheduler noise (a process waiting for a CPU); a p99\n")
	w("  ratio below 1 says that the direct runs met more of it, not that the proxy is faster.\n\n")

	w("### Every run\n\n")
	b.WriteString(runsTable(runs, redirectTargets))
	return b.String()
}
