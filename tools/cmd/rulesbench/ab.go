package main

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// describeBuilds fills in each build's version: the first line of
// `imdsguard version` and the start of the file's SHA-256 (two builds of
// different code may print the same version).
func describeBuilds(builds []build) []build {
	out := make([]build, len(builds))
	for i, bd := range builds {
		bd.Version = firstLine(output(bd.Path, "version")) + ", sha256 " + fileDigest(bd.Path)
		out[i] = bd
	}
	return out
}

func fileDigest(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "unknown"
	}
	return fmt.Sprintf("%x", h.Sum(nil))[:12]
}

// find is the result of build id on backend b with extra rules.
func find(results []result, b string, extra int, id string) (result, bool) {
	for _, r := range results {
		if r.Backend == b && r.Extra == extra && r.Build == id {
			return r, true
		}
	}
	return result{}, false
}

// renderAB writes the builds, then per backend the two builds side by
// side, their repairs and issue 24's envelope for each.
func renderAB(w io.Writer, rep report) {
	fmt.Fprintf(w, "## Builds\n\nEvery row below was measured for both builds right after each other, each on a host of its own, the one measured first alternating from row to row (A first in the first row of the run).\n\n")
	for _, bd := range rep.Builds {
		fmt.Fprintf(w, "- %s: `%s` (%s)\n", bd.ID, bd.Path, bd.Version)
	}
	fmt.Fprintln(w)
	for _, b := range rep.Opts.Backends {
		fmt.Fprintf(w, "## %s\n\n", b.Label)
		renderABCosts(w, rep, b)
		renderABRepairs(w, rep, b)
		renderABNotes(w, rep, b)
		renderEnvelope(w, rep, b)
	}
}

// renderABCosts is the table of costs, A and B side by side.
func renderABCosts(w io.Writer, rep report, b backend) {
	fmt.Fprintf(w, "| extra nat rules (≈ services × 10) | one `iptables-save` (`-t nat`), A / B | CPU per second A (1 s slices) | CPU per second B (1 s slices) | `rules status` A | B | `check --ready` A | B | start A | B |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|---|---|\n")
	for _, n := range rep.Opts.Sizes {
		a, okA := find(rep.Results, b.Name, n, "A")
		bb, okB := find(rep.Results, b.Name, n, "B")
		cell := func(ok bool, f func() string) string {
			if !ok {
				return "not run"
			}
			return f()
		}
		cpu := func(r result) func() string {
			return func() string { return fmt.Sprintf("%s (%s–%s)", ms(r.CPU.Mean), ms(r.CPU.Min), ms(r.CPU.Max)) }
		}
		fmt.Fprintf(w, "| %s | %s / %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", thousands(n),
			cell(okA, func() string { return fmt.Sprintf("%s (%s)", a.Save, a.SaveNAT) }),
			cell(okB, func() string { return fmt.Sprintf("%s (%s)", bb.Save, bb.SaveNAT) }),
			cell(okA, cpu(a)), cell(okB, cpu(bb)),
			cell(okA, a.Status.String), cell(okB, bb.Status.String),
			cell(okA, a.Check.String), cell(okB, bb.Check.String),
			cell(okA, func() string { return ms(a.Start) }), cell(okB, func() string { return ms(bb.Start) }))
	}
	fmt.Fprintln(w)
}

// renderABRepairs is the repair times of both builds, a row per size and
// build.
func renderABRepairs(w io.Writer, rep report, b backend) {
	fmt.Fprintf(w, "Repaired, as `rules status` sees it (daemon's log):\n\n| extra nat rules | build |")
	for _, c := range repairCases {
		fmt.Fprintf(w, " %s |", c.Name)
	}
	fmt.Fprintf(w, "\n|---|---|%s\n", strings.Repeat("---|", len(repairCases)))
	for _, n := range rep.Opts.Sizes {
		for _, bd := range rep.Builds {
			fmt.Fprintf(w, "| %s | %s |", thousands(n), bd.ID)
			r, ok := find(rep.Results, b.Name, n, bd.ID)
			for i := range repairCases {
				if ok && i < len(r.Repairs) {
					fmt.Fprintf(w, " %s (%s) |", fmtMS(r.Repairs[i].Status), fmtMS(r.Repairs[i].Logged))
				} else {
					fmt.Fprint(w, " not run |")
				}
			}
			fmt.Fprintln(w)
		}
	}
	fmt.Fprintln(w)
}

func renderABNotes(w io.Writer, rep report, b backend) {
	for _, n := range rep.Opts.Sizes {
		for _, bd := range rep.Builds {
			r, _ := find(rep.Results, b.Name, n, bd.ID)
			for _, note := range r.Notes {
				fmt.Fprintf(w, "- %s, build %s, %s extra rules: %s\n", b.Name, bd.ID, thousands(n), strings.Join(strings.Fields(note), " "))
			}
		}
	}
	fmt.Fprintln(w)
}

// Issue 24's envelope.
const (
	envelopeCPUSlack = 10 * time.Millisecond  // CPU at the big size <= 2 × at 0 + this
	envelopeRepair   = time.Second            // every repair within
	envelopeCommand  = 200 * time.Millisecond // rules status, check --ready, start under
)

// renderEnvelope says, per build, whether issue 24's targets are met on
// backend b at the largest size measured, with the numbers.
func renderEnvelope(w io.Writer, rep report, b backend) {
	big := largest(rep.Opts.Sizes)
	fmt.Fprintf(w, "Envelope (issue 24), %s, at %s extra rules:\n\n", b.Name, thousands(big))
	for _, bd := range rep.Builds {
		for _, line := range envelope(rep.Results, b.Name, big, bd.ID) {
			fmt.Fprintf(w, "- %s: %s\n", bd.ID, line)
		}
	}
	fmt.Fprintln(w)
}

func largest(sizes []int) int {
	big := 0
	for _, n := range sizes {
		big = max(big, n)
	}
	return big
}

// envelope is the verdicts of build id on backend b: CPU, repairs, and
// the three command times, each "met" or "not met" with its figures.
func envelope(results []result, b string, big int, id string) []string {
	r, ok := find(results, b, big, id)
	if !ok || big == 0 {
		return []string{fmt.Sprintf("not measured (needs a row with extra rules, here %s)", thousands(big))}
	}
	return []string{cpuVerdict(results, r), repairVerdict(r), commandVerdict(r)}
}

// cpuVerdict: CPU per second at the big size at most twice that at 0 plus
// 10 ms.
func cpuVerdict(results []result, r result) string {
	base, ok := find(results, r.Backend, 0, r.Build)
	if !ok {
		return "CPU: not measured (needs the row with 0 extra rules)"
	}
	limit := 2*base.CPU.Mean + envelopeCPUSlack
	return fmt.Sprintf("CPU per second %s: %s at %s; limit 2 × %s at 0 + %s = %s", verdict(r.CPU.Mean <= limit),
		ms(r.CPU.Mean), thousands(r.Extra), ms(base.CPU.Mean), ms(envelopeCPUSlack), ms(limit))
}

// repairVerdict: every repair, as rules status sees it, within 1 s.
func repairVerdict(r result) string {
	var worst repair
	for _, rp := range r.Repairs {
		if rp.Status > worst.Status {
			worst = rp
		}
	}
	ok := len(r.Repairs) == len(repairCases) && worst.Status <= envelopeRepair
	if len(r.Repairs) == 0 {
		return "repairs within 1 s: not measured"
	}
	return fmt.Sprintf("repairs within %s %s: slowest %s (%s)", ms(envelopeRepair), verdict(ok), ms(worst.Status), worst.Case)
}

// commandVerdict: rules status, check --ready and start each under 200 ms;
// a command that failed does not meet it.
func commandVerdict(r result) string {
	ok := r.Status.Median < envelopeCommand && r.Status.Failed == "" &&
		r.Check.Median < envelopeCommand && r.Check.Failed == "" && r.Start < envelopeCommand
	return fmt.Sprintf("`rules status`, `check --ready`, start under %s %s: %s, %s, %s",
		ms(envelopeCommand), verdict(ok), r.Status, r.Check, ms(r.Start))
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "not met"
}
