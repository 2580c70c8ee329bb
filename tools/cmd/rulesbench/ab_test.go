package main

import (
	"strings"
	"testing"
	"time"
)

// abReport is an A/B report of one backend at 0 and 60,000 extra rules:
// A meets every target, B none.
func abReport() report {
	repairs := func(d time.Duration) []repair {
		var out []repair
		for _, c := range repairCases {
			out = append(out, repair{Case: c.Name, Status: d, Logged: d / 2})
		}
		return out
	}
	ms := time.Millisecond
	return report{
		Opts:   options{Backends: backends[:1], Sizes: []int{0, 60000}, GuardB: "/tmp/old"},
		Builds: []build{{ID: "A", Path: "bin/imdsguard", Version: "imdsguard new"}, {ID: "B", Path: "/tmp/old", Version: "imdsguard old"}},
		Results: []result{
			{Backend: "nft", Build: "B", Extra: 0, CPU: cpuStat{Mean: 6 * ms}, Repairs: repairs(700 * ms)},
			{Backend: "nft", Build: "A", Extra: 0, CPU: cpuStat{Mean: 4 * ms}, Repairs: repairs(300 * ms)},
			{Backend: "nft", Build: "A", Extra: 60000, CPU: cpuStat{Mean: 17 * ms, Min: 10 * ms, Max: 30 * ms},
				Status: timing{Median: 80 * ms}, Check: timing{Median: 90 * ms}, Start: 150 * ms, Repairs: repairs(600 * ms)},
			{Backend: "nft", Build: "B", Extra: 60000, CPU: cpuStat{Mean: 1029 * ms, Min: 956 * ms, Max: 1107 * ms},
				Status: timing{Median: 2980 * ms}, Check: timing{Median: 2926 * ms, Failed: "x"}, Start: 4041 * ms,
				Repairs: repairs(4869 * ms), Notes: []string{"check failed"}},
		},
	}
}

func TestRenderAB(t *testing.T) {
	var b strings.Builder
	render(&b, abReport())
	out := b.String()
	for _, want := range []string{
		"- A: `bin/imdsguard` (imdsguard new)\n",
		"- B: `/tmp/old` (imdsguard old)\n",
		"| 60,000 | 0 ms (0 ms) / 0 ms (0 ms) | 17 ms (10 ms–30 ms) | 1,029 ms (956 ms–1,107 ms) | 80 ms | 2,980 ms | 90 ms | 2,926 ms (failed) | 150 ms | 4,041 ms |\n",
		"| 60,000 | A | 600 ms (300 ms) |",
		"| 60,000 | B | 4,869 ms (2,435 ms) |",
		"- nft, build B, 60,000 extra rules: check failed\n",
		"- A: CPU per second met: 17 ms at 60,000; limit 2 × 4 ms at 0 + 10 ms = 18 ms\n",
		"- A: repairs within 1,000 ms met: slowest 600 ms (flush of its chains)\n",
		"- A: `rules status`, `check --ready`, start under 200 ms met: 80 ms, 90 ms, 150 ms\n",
		"- B: CPU per second not met: 1,029 ms at 60,000; limit 2 × 6 ms at 0 + 10 ms = 22 ms\n",
		"- B: repairs within 1,000 ms not met: slowest 4,869 ms",
		"- B: `rules status`, `check --ready`, start under 200 ms not met: 2,980 ms, 2,926 ms (failed), 4,041 ms\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "## iptables-legacy") {
		t.Errorf("a backend not measured is shown:\n%s", out)
	}
}

// The A/B order alternates from cell to cell; a single build is alone.
func TestCellOrder(t *testing.T) {
	ab := options{Guard: "a", GuardB: "b"}.builds()
	for i, want := range []string{"AB", "BA", "AB"} {
		var got string
		for _, bd := range cellOrder(ab, i) {
			got += bd.ID
		}
		if got != want {
			t.Errorf("cell %d: order %s, want %s", i, got, want)
		}
	}
	if got := cellOrder(options{Guard: "a"}.builds(), 1); len(got) != 1 || got[0].Path != "a" {
		t.Errorf("single build: %v", got)
	}
}

func TestParseOptionsB(t *testing.T) {
	o, err := parseOptions([]string{"-imdsguard-b", "/tmp/old", "-sizes", "0,60000"}, "/repo")
	if err != nil || o.GuardB != "/tmp/old" || o.Guard != "/repo/bin/imdsguard" || len(o.builds()) != 2 {
		t.Fatalf("parseOptions = %+v, %v", o, err)
	}
	if o, _ = parseOptions(nil, "/repo"); o.GuardB != "" || len(o.builds()) != 1 {
		t.Errorf("without -imdsguard-b: %+v", o)
	}
}
