package main

import (
	"strings"
	"testing"
	"time"
)

// testReport has both builds, runs at c=16 and 1000 and one failed check.
func testReport() report {
	var runs []result
	for _, tg := range planTargets(true) {
		for _, c := range []int{16, 1000} {
			runs = append(runs, fig{id: tg.ID, round: 1, conc: c, rps: 1000, p99us: 100, cpu: 10, pssMB: 20, conns: c}.result())
		}
	}
	return report{
		Command: "bin/bench -rounds 1 -concurrency 16,1000 -imdsguard-b /tmp/old",
		Opts:    options{Rounds: 1, Conc: []int{16, 1000}, Path: "/latest/meta-data/instance-id"},
		Machine: machine{CPU: "AMD EPYC", Cores: 2, Kernel: "6.18", Nginx: "nginx/1.22.1", Wrk: "wrk 4.1.0"},
		Binaries: []binary{{Build: "A", Path: "bin/imdsguard", Version: "a20b091"},
			{Build: "B", Path: "/tmp/old", Version: "65d72e1"}},
		Targets: planTargets(true),
		Runs:    runs,
		Checks:  []check{{What: "no upstream 401", OK: true}, {What: "one upstream token PUT per imdsguard daemon", Detail: "5 PUTs for 4 daemons"}},
	}
}

// sections splits Markdown at its "## " headings.
func sections(doc string) map[string]string {
	out := map[string]string{}
	parts := strings.Split(doc, "\n## ")
	out[""] = parts[0]
	for _, p := range parts[1:] {
		title, body, _ := strings.Cut(p, "\n")
		out[title] = body
	}
	return out
}

// tables returns the rows of each table in s, cells split.
func tables(s string) [][][]string {
	var out [][][]string
	var cur [][]string
	for _, line := range strings.Split(s+"\n", "\n") {
		if !strings.HasPrefix(line, "|") {
			if cur != nil {
				out, cur = append(out, cur), nil
			}
			continue
		}
		cur = append(cur, strings.Split(strings.Trim(line, "|"), "|"))
	}
	return out
}

func TestRender(t *testing.T) {
	var b strings.Builder
	if err := render(&b, testReport()); err != nil {
		t.Fatal(err)
	}
	doc := b.String()
	s := sections(doc)
	if !strings.Contains(s[""], "**A reduced run** (1 round(s) of 0s;") {
		t.Errorf("a run of 1 round is not said to be reduced:\n%s", s[""])
	}
	full := testReport()
	full.Opts.Rounds, full.Opts.Duration = 3, 4*time.Second
	if strings.Contains(renderString(t, full), "reduced") {
		t.Error("a run with the default rounds and duration is said to be reduced")
	}
	if !strings.HasPrefix(doc, "# Benchmarks\n") || !strings.Contains(s[""], "```sh\nbin/bench -rounds 1 -concurrency 16,1000 -imdsguard-b /tmp/old\n```") {
		t.Errorf("no title or no command:\n%s", s[""])
	}
	for _, want := range []string{"AMD EPYC, 2 cores", "| kernel | 6.18 |", "nginx/1.22.1", "wrk 4.1.0", "`bin/imdsguard`: version a20b091", "`/tmp/old`: version 65d72e1"} {
		if !strings.Contains(s["Machine and settings"], want) {
			t.Errorf("machine section lacks %q", want)
		}
	}
	if ts := tables(s["Envelope"]); len(ts) != 2 || len(ts[0]) != 2+11 || len(ts[1]) != 2+11 {
		t.Errorf("envelope: want two tables (A, B) of 11 verdicts, got %d tables", len(ts))
	}
	// B over A: cached and uncached, three measures at two concurrencies
	// and PSS at c=1000.
	if ts := tables(s["A/B: imdsguard B over imdsguard A"]); len(ts) != 1 || len(ts[0]) != 2+2*(3*2+1) {
		t.Errorf("A/B: want one table of 14 rows, got %v", ts)
	}
	for _, c := range []string{"c=16", "c=1000"} {
		ts := tables(s[c])
		if len(ts) != 1 || len(ts[0]) != 2+7 {
			t.Fatalf("%s: want one table with a row per target (7), got %v", c, ts)
		}
		if hasPSS := strings.Contains(strings.Join(ts[0][0], "|"), "PSS"); hasPSS != (c == "c=1000") {
			t.Errorf("%s: PSS column %v", c, hasPSS)
		}
	}
	if !strings.Contains(s["Correctness"], "- **FAIL**: one upstream token PUT per imdsguard daemon (5 PUTs for 4 daemons)") ||
		!strings.Contains(s["Correctness"], "- pass: no upstream 401") {
		t.Errorf("correctness section:\n%s", s["Correctness"])
	}
	for title, body := range s {
		for _, tb := range tables(body) {
			for _, row := range tb {
				if len(row) != len(tb[0]) {
					t.Errorf("%s: row %q has %d cells, its header %d", title, row, len(row), len(tb[0]))
				}
			}
		}
	}
}

func TestRenderWithoutB(t *testing.T) {
	r := testReport()
	r.Binaries, r.Targets = r.Binaries[:1], planTargets(false)
	var b strings.Builder
	if err := render(&b, r); err != nil {
		t.Fatal(err)
	}
	s := sections(b.String())
	if _, ok := s["A/B: imdsguard B over imdsguard A"]; ok {
		t.Error("an A/B section without a B")
	}
	if ts := tables(s["Envelope"]); len(ts) != 1 {
		t.Errorf("envelope: %d tables, want 1", len(ts))
	}
	if ts := tables(s["c=16"]); len(ts) != 1 || len(ts[0]) != 2+5 {
		t.Errorf("c=16: want a row per target (5)")
	}
}

func TestRenderRedirect(t *testing.T) {
	r := testReport()
	r.RedirectTargets = []*target{{ID: idRouted, Name: "routed"}, {ID: idRedirected, Name: "redirected", Kind: kindGuard}}
	for _, id := range []string{idRouted, idRedirected} {
		for _, c := range redirectConcs() {
			r.RedirectRuns = append(r.RedirectRuns, fig{id: id, round: 1, conc: c, rps: 100, p99us: 10}.result())
		}
	}
	s := sections(renderString(t, r))
	// The ratios (req/s, p50, p99 at c=1 and 16), then a table per c.
	ts := tables(s["Through the redirect"])
	if len(ts) != 3 || len(ts[0]) != 2+6 || len(ts[1]) != 2+2 || len(ts[2]) != 2+2 {
		t.Fatalf("redirect section: want a ratio table of 6 and two of 2 targets, got %v", ts)
	}
	if got := ts[0][2]; strings.TrimSpace(got[2]) != "1.00" || !strings.Contains(got[0], "(g) redirected / (f) routed") {
		t.Errorf("first ratio row %q, want (g)/(f) at 1.00", got)
	}
	if _, ok := sections(renderString(t, testReport()))["Through the redirect"]; ok {
		t.Error("a redirect section without -redirect")
	}
}

func renderString(t *testing.T, r report) string {
	t.Helper()
	var b strings.Builder
	if err := render(&b, r); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestPlanTargets(t *testing.T) {
	for _, withB := range []bool{false, true} {
		ts := planTargets(withB)
		ids, ports := map[string]bool{}, map[int]bool{}
		for _, tg := range ts {
			if ids[tg.ID] || ports[tg.Port] || tg.Port == 0 {
				t.Errorf("B %v: %s on port %d: ID or port taken or none", withB, tg.ID, tg.Port)
			}
			ids[tg.ID], ports[tg.Port] = true, true
		}
		want := 5
		if withB {
			want = 7
		}
		if len(ts) != want || ts[0].Port != fakePort {
			t.Errorf("B %v: %d targets, the first on %d; want %d, the first fakeimds's", withB, len(ts), ts[0].Port, want)
		}
	}
}
