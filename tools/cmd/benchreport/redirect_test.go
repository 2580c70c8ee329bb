package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Two rounds at c=1 and c=16 of the four redirect targets.
const redirectSample = `1	1	direct	50000	1000000	50	300	0	0	0	0	0	0	20	0	0	0	0
1	1	imdsguard-v1	10000	1000000	200	1500	0	0	0	0	0	100	25	0	0	0	0
1	1	imdsguard-v2	12500	1000000	160	1200	0	0	0	0	0	90	25	0	0	0	0
1	1	imdsguard-v1-endpoint	12500	1000000	160	1000	0	0	0	0	0	90	25	0	0	0	0
1	16	direct	60000	1000000	200	6000	0	0	0	0	0	0	80	0	0	0	0
1	16	imdsguard-v1	15000	1000000	900	9000	0	0	0	0	0	300	90	0	0	0	0
1	16	imdsguard-v2	12000	1000000	1000	9000	0	0	0	0	0	300	90	0	0	0	0
1	16	imdsguard-v1-endpoint	20000	1000000	800	9000	0	0	0	0	0	300	90	0	0	0	0
2	1	direct	50000	1000000	50	300	0	0	0	0	0	0	20	0	0	0	0
2	1	imdsguard-v1	10000	1000000	300	1500	0	0	0	0	0	100	25	0	0	0	0
2	1	imdsguard-v2	12500	1000000	140	1200	0	0	0	0	0	90	25	0	0	0	0
2	1	imdsguard-v1-endpoint	12500	1000000	200	1000	0	0	0	0	0	90	25	0	0	0	0
2	16	direct	40000	1000000	200	6000	0	0	0	0	0	0	80	0	0	0	0
2	16	imdsguard-v1	15000	1000000	900	9000	0	0	0	0	0	300	90	0	0	0	0
2	16	imdsguard-v2	12000	1000000	1000	9000	0	0	0	0	0	300	90	0	0	0	0
2	16	imdsguard-v1-endpoint	20000	1000000	800	9000	0	0	0	0	0	300	90	0	0	0	0
`

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestAnalyseRedirect(t *testing.T) {
	runs, err := parseRunsFor(strings.NewReader(redirectSample), "sample", redirectTargets)
	if err != nil {
		t.Fatal(err)
	}
	rep := analyseRedirect(runs)
	ratios := rep.vsDirect
	if len(ratios) != 6 {
		t.Fatalf("%d ratios over direct, want 6 (v1, v2 and v1 endpoint at c=1 and c=16)", len(ratios))
	}
	// v1 at c=1: p50 250 (200, 300) over 50; 100 µs over direct's 300 at p99.
	r := ratios[0]
	if r.label != "v1" || r.conc != 1 || r.base != "direct" {
		t.Fatalf("first ratio %+v, want v1 at c=1", r)
	}
	if !near(r.p50, 5) || !near(r.p50Lo, 4) || !near(r.p50Hi, 6) || !near(r.p50Added, 200) {
		t.Errorf("v1 c=1 p50: %v (%v–%v), added %v; want 5 (4–6), +200 µs", r.p50, r.p50Lo, r.p50Hi, r.p50Added)
	}
	if !near(r.p99, 5) || !near(r.rps, 0.2) || !near(r.rpsLo, 0.2) || !near(r.rpsHi, 0.2) {
		t.Errorf("v1 c=1: p99 ratio %v, req/s ratio %v (%v–%v); want 5 and 0.2 (0.2–0.2)", r.p99, r.rps, r.rpsLo, r.rpsHi)
	}
	// v1 at c=16: direct's req/s is 50000 (60000, 40000), per round 0.25 and 0.375.
	r = ratios[1]
	if r.label != "v1" || r.conc != 16 || !near(r.rps, 0.3) || !near(r.rpsLo, 0.25) || !near(r.rpsHi, 0.375) {
		t.Errorf("v1 c=16: %+v, want req/s ratio 0.3 (0.25–0.375)", r)
	}
	if r := ratios[2]; r.label != "v2" || r.conc != 1 || !near(r.p50, 3) || !near(r.p50Added, 100) {
		t.Errorf("v2 c=1: %+v, want p50 ratio 3, +100 µs", r)
	}
	// The CPU of the direct target is fakeimds's alone.
	if c := rep.cells[key{"direct", 1}]; c.proxyCPU != 0 || !near(c.fakeCPU, 4) {
		t.Errorf("direct c=1 CPU: proxy %v fakeimds %v, want 0 and 4 µs", c.proxyCPU, c.fakeCPU)
	}
	if r := ratios[4]; r.label != "v1 endpoint" || r.conc != 1 || !near(r.p50, 3.6) {
		t.Errorf("v1 endpoint c=1: %+v, want p50 ratio 3.6", r)
	}
	// The rule alone: v1 redirected over v1 endpoint, round by round.
	if len(rep.rule) != 2 {
		t.Fatalf("%d rule ratios, want 2 (c=1 and c=16)", len(rep.rule))
	}
	r = rep.rule[0]
	if r.target != "imdsguard-v1" || r.base != "imdsguard-v1-endpoint" || r.conc != 1 ||
		!near(r.p50, 250.0/180) || !near(r.p50Lo, 1.25) || !near(r.p50Hi, 1.5) || !near(r.p50Added, 70) || !near(r.rps, 0.8) {
		t.Errorf("rule c=1: %+v, want p50 ratio 1.39 (1.25–1.5), +70 µs, req/s ratio 0.8", r)
	}
	tab := redirectRatioTable(vsDirectTitle, ratios)
	for _, want := range []string{
		"| imdsguard / direct | c |",
		"| v1 | 1 | 5.00 | 4.00–6.00 | +200 µs | 5.00 | 0.20 | 0.20–0.20 |",
		"| v1 | 16 | 4.50 | 4.50–4.50 | +700 µs | 1.50 | 0.30 | 0.25–0.38 |",
		"| v1 endpoint | 16 | 4.00 | 4.00–4.00 | +600 µs | 1.50 | 0.40 | 0.33–0.50 |",
	} {
		if !strings.Contains(tab, want) {
			t.Errorf("ratio table lacks %q:\n%s", want, tab)
		}
	}
}

func TestParseRunsForRedirectRejectsBareproxy(t *testing.T) {
	in := "1\t1\tbareproxy\t1\t1\t1\t1\t0\t0\t0\t0\t0\t0\t0\t0\t0\t0\t0\n"
	if _, err := parseRunsFor(strings.NewReader(in), "in", redirectTargets); err == nil {
		t.Error("a bareproxy run is accepted in the redirect runs")
	}
	if _, err := parseRuns(strings.NewReader(in), "in"); err != nil {
		t.Errorf("the loopback runs refuse bareproxy: %v", err)
	}
}

func TestSignedUS(t *testing.T) {
	for x, want := range map[float64]string{150: "+150 µs", -20: "−20 µs", 1500: "+1.50 ms", 0: "+0 µs"} {
		if got := signedUS(x); got != want {
			t.Errorf("signedUS(%v) = %q, want %q", x, got, want)
		}
	}
}

func TestSpliceSection(t *testing.T) {
	const h = "## Through the redirect (namespaces)"
	sec := h + "\n\nnew\n\n### Results\n\nrows\n"
	for _, c := range []struct{ name, doc, want string }{
		{"empty file", "", sec},
		{"appended", "# Benchmarks\n\n## Run\n\nx\n", "# Benchmarks\n\n## Run\n\nx\n\n" + sec},
		{"appended after trailing blank lines", "# B\n\n\n", "# B\n\n" + sec},
		{"replaced at the end", "# B\n\n## Run\n\nx\n\n" + h + "\n\nold\n\n### Results\n\nold rows\n",
			"# B\n\n## Run\n\nx\n\n" + sec},
		{"replaced in the middle", "# B\n\n" + h + "\n\nold\n\n## Every run\n\ny\n",
			"# B\n\n" + sec + "\n## Every run\n\ny\n"},
		{"replaced at the start", h + "\n\nold\n## Next\n", sec + "\n## Next\n"},
		{"a longer heading is another section", "# B\n\n" + h + " and more\n\nz\n",
			"# B\n\n" + h + " and more\n\nz\n\n" + sec},
	} {
		got := spliceSection(c.doc, h, sec)
		if got != c.want {
			t.Errorf("%s:\ngot  %q\nwant %q", c.name, got, c.want)
		}
		if again := spliceSection(got, h, sec); again != got {
			t.Errorf("%s: splicing twice changes the file:\n%q\n%q", c.name, got, again)
		}
	}
}

func TestRenderRedirect(t *testing.T) {
	runs, err := parseRunsFor(strings.NewReader(redirectSample), "sample", redirectTargets)
	if err != nil {
		t.Fatal(err)
	}
	rep := analyseRedirect(runs)
	m := &meta{command: "scripts/bench.sh", rounds: 2, seconds: 1, path: "/latest/meta-data/instance-id",
		imdsNS: "igbench-1-imds", directNS: "igbench-1-direct", guardNS: "igbench-1-guard",
		upstreamPuts: 1, putsBefore: 1, upstreamGets: rep.total + 6, extraRequests: 6, inFlightMax: 100}
	doc := renderRedirect(m, rep, runs, "version: 1", "-A OUTPUT -j IMDSGUARD-OUT")
	if !strings.HasPrefix(doc, redirectHeading+"\n") {
		t.Errorf("the section does not start with its heading:\n%s", doc)
	}
	if strings.Contains(doc[len(redirectHeading):], "\n## ") {
		t.Error("the section has a second \"## \" heading: a later splice would cut it there")
	}
	for _, want := range []string{
		"```sh\nscripts/bench.sh\n```",
		"| (b) imdsguard v1, redirected | no token: upgraded upstream | 10000 | 250 µs |",
		"| upstream token PUTs by imdsguard (the whole run) | 1 | ok |",
		"| non-2xx answers and socket errors, all runs | 0 | ok |",
		"`igbench-1-guard`",
		"```yaml\nversion: 1\n```",
		"-A OUTPUT -j IMDSGUARD-OUT",
		"| 2 | 16 | imdsguard-v2 | 12000 |",
		"| redirected / endpoint | c |",
		"| v1 | 16 | 1.12 | 1.12–1.12 | +100 µs | 1.00 | 0.75 | 0.75–0.75 |",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("the section lacks %q", want)
		}
	}
	if f := failures(m, rep.report); len(f) != 0 {
		t.Errorf("failures = %q, want none", f)
	}
}

// TestMainRedirectKeepsTheRest: the section goes into an existing report
// without touching the loopback part, and replaces itself on a rerun.
func TestMainRedirectKeepsTheRest(t *testing.T) {
	dir := t.TempDir()
	runsFile, out := filepath.Join(dir, "runs.tsv"), filepath.Join(dir, "BENCHMARKS.md")
	if err := os.WriteFile(runsFile, []byte(redirectSample), 0o644); err != nil {
		t.Fatal(err)
	}
	const loopback = "# Benchmarks\n\n## Run\n\nloopback\n\n## Every run\n\n| rows |\n"
	if err := os.WriteFile(out, []byte(loopback), 0o644); err != nil {
		t.Fatal(err)
	}
	m := &meta{runsFile: runsFile, out: out, section: "redirect", upstreamPuts: 1, upstreamGets: -1}
	for i := range 2 {
		if code := mainRedirect(m); code != 0 {
			t.Fatalf("run %d: exit %d, want 0", i, code)
		}
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	if !strings.HasPrefix(doc, loopback+"\n"+redirectHeading+"\n") {
		t.Errorf("the loopback part is not kept, or the section not appended after it:\n%s", doc)
	}
	if n := strings.Count(doc, redirectHeading); n != 1 {
		t.Errorf("%d redirect sections after two runs, want 1", n)
	}
	m.upstreamPuts = 2
	if code := mainRedirect(m); code != 1 {
		t.Errorf("two upstream PUTs: exit %d, want 1", code)
	}
	m.runsFile = filepath.Join(dir, "missing.tsv")
	if code := mainRedirect(m); code != 2 {
		t.Errorf("no runs file: exit %d, want 2", code)
	}
}

// TestAnalyseRedirectWithoutEndpoint: runs without the endpoint target have
// no rule ratios and no endpoint row, and the report says nothing of them.
func TestAnalyseRedirectWithoutEndpoint(t *testing.T) {
	var lines []string
	for _, l := range strings.Split(redirectSample, "\n") {
		if !strings.Contains(l, "endpoint") {
			lines = append(lines, l)
		}
	}
	runs, err := parseRunsFor(strings.NewReader(strings.Join(lines, "\n")), "sample", redirectTargets)
	if err != nil {
		t.Fatal(err)
	}
	rep := analyseRedirect(runs)
	if len(rep.vsDirect) != 4 || len(rep.rule) != 0 {
		t.Errorf("%d ratios over direct and %d rule ratios, want 4 and 0", len(rep.vsDirect), len(rep.rule))
	}
	doc := renderRedirect(&meta{}, rep, runs, "", "")
	if strings.Contains(doc, ruleTitle) {
		t.Error("the rule table is shown without endpoint runs")
	}
	if !strings.Contains(doc, "| (d) imdsguard v1, endpoint | no token, to 127.0.0.1:8989: no NAT | – | – | – |") {
		t.Error("the results table does not show the missing endpoint runs as –")
	}
}
