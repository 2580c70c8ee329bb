package e2e

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/imdsguard/imdsguard/tools/testbed"
)

// BypassReportEnv names a file TestPolicyBypassMatrix writes its results
// table to (markdown), when set.
const BypassReportEnv = "E2E_BYPASS_REPORT"

// Deny rows of bypass-cases.tsv by what they are, for callers who may read
// the secrets. Legitimate encodings of a secret path have a canonical path
// and are served to root and the agent (IMDS's own answer: 200, or 404 for
// the dated version AEMM lacks). Targets without a canonical path are
// refused (400) for everyone; a lower-case method is not a method (405).
// Deny rows in neither list (added to the file later) are checked only for
// the denied callers.
var (
	legitDenyRows   = idSet("c01-c12", "c18-c23", "c26", "c27")
	refusedDenyRows = idSet("c13-c17", "c24", "c25")
	methodDenyRows  = idSet("c28")
)

// idSet expands "cNN" and "cNN-cMM" into a set.
func idSet(specs ...string) map[string]bool {
	set := map[string]bool{}
	for _, s := range specs {
		lo, hi, ok := strings.Cut(s, "-")
		if !ok {
			hi = lo
		}
		var a, b int
		fmt.Sscanf(lo, "c%d", &a)
		fmt.Sscanf(hi, "c%d", &b)
		for i := a; i <= b; i++ {
			set[fmt.Sprintf("c%02d", i)] = true
		}
	}
	return set
}

// bypassRow is one line of the results table.
type bypassRow struct {
	Case, Caller, Place        string
	Family                     int
	Status                     int
	Decision, Rule, Path, Want string
	OK                         bool
}

// TestPolicyBypassMatrix sends every row of bypass-cases.tsv byte for byte
// over raw sockets to 169.254.169.254:80 and [fd00:ec2::254]:80, through the
// redirect, from helper processes: as imdsapp (group legacy), root and
// imdsagent in the host namespace, and as root in c1 (not the host's root:
// rule containers). Denied callers (imdsapp, c1's root) get a 4xx without
// any secret for every deny row (403 by their rule for legitimate
// encodings); root and imdsagent are served the legitimate encodings (AEMM's
// own answer for the canonical path); targets without a canonical path get
// 400 and the lower-case method 405 for everyone; exact rows get their
// status for everyone. The table of results is logged and, with
// E2E_BYPASS_REPORT set, written there as markdown.
func TestPolicyBypassMatrix(t *testing.T) {
	b := newPolicyBed(t, "enforce", "")
	cases := b.e.LoadCases()
	secrets := secretsOf(t, b.h)
	ref := &aemmRef{h: b.h}
	type who struct {
		c       caller
		rule    string
		mayRead bool // the rule lets it read the secrets
	}
	callers := []who{
		{b.hostApp(), "legacy", false},
		{b.hostRoot(), "root", true},
		{b.hostAgent(), "agent", true},
		{b.c1Root(), "containers", false},
	}
	var rows []bypassRow
	for _, w := range callers {
		for _, v := range []int{4, 6} {
			t.Run(fmt.Sprintf("%s/%s/v%d", w.c.place, w.c.name, v), func(t *testing.T) {
				reqs := make([]helperRequest, len(cases))
				for i, c := range cases {
					reqs[i] = helperRequest{Addr: testbed.IMDSAddr(v), Method: c.Method, Target: c.Target, Headers: c.Headers}
				}
				out, evs := b.sendAudited(t, w.c, reqs...)
				for i, ev := range evs {
					if why := b.identityProblem(w.c, v, out, ev); why != "" && ev != nil {
						t.Errorf("%s: %s", cases[i].ID, why)
					}
				}
				for i, c := range cases {
					res, ev := out.Results[i], evs[i]
					row := bypassRow{Case: c.ID, Caller: w.c.name, Place: w.c.place, Family: v, Status: res.Status, Decision: "(no event)"}
					if ev != nil {
						row.Decision, row.Rule, row.Path = ev.Decision, ev.Rule, ev.Path
					}
					var problems []string
					row.Want, problems = judgeBypass(t, c, res, ev, w.rule, w.mayRead, secrets, ref)
					row.OK = len(problems) == 0
					for _, p := range problems {
						t.Errorf("%s as %s (%s, v%d): %s; got %q body %.120q; event %v", c, w.c.name, w.c.place, v, p, res.StatusLine, res.Body, ev)
					}
					rows = append(rows, row)
				}
			})
		}
	}
	reportBypass(t, rows)
}

// judgeBypass says what row c must get from a caller whose rule is rule,
// and what is wrong with what it got.
func judgeBypass(t *testing.T, c testbed.Case, res helperResult, ev *event, rule string, mayRead bool, secrets []string, ref *aemmRef) (string, []string) {
	t.Helper()
	var bad []string
	if res.Err != "" {
		return "an answer", []string{"no answer: " + res.Err}
	}
	if ev == nil {
		bad = append(bad, "no audit event")
	}
	if want, ok := c.Status(); ok {
		if res.Status != want {
			bad = append(bad, fmt.Sprintf("status %d, want %d", res.Status, want))
		}
		if ev != nil && (ev.Decision == "allow" || ev.Decision == "deny") && ev.Rule != rule {
			bad = append(bad, fmt.Sprintf("rule %q, want %q", ev.Rule, rule))
		}
		return fmt.Sprint(want), bad
	}
	// A deny row.
	if !mayRead || !legitDenyRows[c.ID] {
		if res.Status < 400 || res.Status > 499 {
			bad = append(bad, fmt.Sprintf("status %d, want a 4xx", res.Status))
		}
		if l := leaks(res.Body, secrets); len(l) > 0 {
			bad = append(bad, fmt.Sprintf("body leaks %.60q", l))
		}
	}
	switch {
	case refusedDenyRows[c.ID]:
		if res.Status != 400 {
			bad = append(bad, fmt.Sprintf("status %d, want 400 (no canonical path)", res.Status))
		}
		return "400", bad
	case methodDenyRows[c.ID]:
		if res.Status != 405 {
			bad = append(bad, fmt.Sprintf("status %d, want 405", res.Status))
		}
		return "405", bad
	case legitDenyRows[c.ID] && !mayRead:
		if ev != nil && (ev.Decision != "deny" || ev.Rule != rule || ev.Status != 403) {
			bad = append(bad, fmt.Sprintf("event %s %d rule %q, want deny 403 by rule %q", ev.Decision, ev.Status, ev.Rule, rule))
		}
		return "4xx (deny 403)", bad
	case legitDenyRows[c.ID] && mayRead:
		if ev == nil {
			return "served", bad
		}
		if ev.Decision != "allow" || ev.Rule != rule {
			bad = append(bad, fmt.Sprintf("event %s rule %q, want allow by rule %q", ev.Decision, ev.Rule, rule))
		}
		if ev.Path == "" {
			return "served", append(bad, "no canonical path in the event")
		}
		want := ref.answer(t, strings.ToUpper(c.Method), ev.Path)
		if res.Status != want.Status || (c.Method == "GET" && want.Status == 200 && string(res.Body) != string(want.Body)) {
			bad = append(bad, fmt.Sprintf("status %d body %.80q, want AEMM's own answer for %s: %d %.80q",
				res.Status, res.Body, ev.Path, want.Status, want.Body))
		}
		return fmt.Sprintf("served (AEMM: %d)", want.Status), bad
	}
	return "4xx", bad
}

// reportBypass logs the results table and writes it to $E2E_BYPASS_REPORT.
func reportBypass(t *testing.T, rows []bypassRow) {
	t.Helper()
	if len(rows) == 0 {
		return
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Case < rows[j].Case })
	var md strings.Builder
	failed := 0
	for _, r := range rows {
		if !r.OK {
			failed++
		}
	}
	fmt.Fprintf(&md, "# imdsguard bypass cases through the redirect, per caller\n\n")
	fmt.Fprintf(&md, "Produced by `TestPolicyBypassMatrix` (tools/e2e): every row of bypass-cases.tsv sent byte for byte "+
		"over a raw socket to 169.254.169.254:80 (v4) and [fd00:ec2::254]:80 (v6) through imdsguard's redirect, "+
		"from the host namespace as imdsapp (group legacy), root and imdsagent, and from the container c1 as root. "+
		"Policy: root and imdsagent read everything; group legacy and everyone else everything but the secrets; "+
		"containers (by source CIDR) placement and instance-id only. status: what the caller got; decision/rule: "+
		"imdsguard's audit event. %d results, %d not as wanted.\n\n", len(rows), failed)
	md.WriteString("## Summary (status decision/rule per caller, v4 | v6)\n\n")
	type key struct{ c, caller, place string }
	cells := map[key][2]string{}
	var order []string
	seen := map[string]bool{}
	for _, r := range rows {
		k := key{r.Case, r.Caller, r.Place}
		cell := cells[k]
		mark := ""
		if !r.OK {
			mark = " **FAIL**"
		}
		cell[r.Family/6] = fmt.Sprintf("%d %s/%s%s", r.Status, r.Decision, orDash(r.Rule), mark)
		cells[k] = cell
		if !seen[r.Case] {
			seen[r.Case] = true
			order = append(order, r.Case)
		}
	}
	cols := []struct{ caller, place string }{{appUser, "host"}, {"root", "host"}, {agentUser, "host"}, {"root", "c1"}}
	md.WriteString("| case |")
	for _, c := range cols {
		fmt.Fprintf(&md, " %s@%s |", c.caller, c.place)
	}
	md.WriteString("\n|---|---|---|---|---|\n")
	for _, id := range order {
		fmt.Fprintf(&md, "| %s |", id)
		for _, c := range cols {
			cell := cells[key{id, c.caller, c.place}]
			if cell[0] == cell[1] {
				fmt.Fprintf(&md, " %s |", cell[0])
			} else {
				fmt.Fprintf(&md, " %s \\| %s |", cell[0], cell[1])
			}
		}
		md.WriteString("\n")
	}
	md.WriteString("\n## All results\n\n| case | caller | family | place | status | decision | rule | canonical path | wanted | ok |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		ok := "yes"
		if !r.OK {
			ok = "**NO**"
		}
		fmt.Fprintf(&md, "| %s | %s | IPv%d | %s | %d | %s | %s | %s | %s | %s |\n",
			r.Case, r.Caller, r.Family, r.Place, r.Status, r.Decision, orDash(r.Rule), orDash(strings.ReplaceAll(r.Path, "|", "\\|")), r.Want, ok)
	}
	t.Logf("bypass results:\n%s", md.String())
	if p := os.Getenv(BypassReportEnv); p != "" {
		if err := os.WriteFile(p, []byte(md.String()), 0o644); err != nil {
			t.Errorf("write %s: %v", p, err)
		} else {
			t.Logf("results table written to %s", p)
		}
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
