package promrules

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/imdsguard/imdsguard/internal/testenv"
	"github.com/imdsguard/imdsguard/tools/testbed"
)

func root(t *testing.T) string {
	t.Helper()
	r, err := testbed.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// promtool runs Debian's promtool with args in the repository root.
func promtool(t *testing.T, args ...string) {
	t.Helper()
	if _, err := exec.LookPath("promtool"); err != nil {
		testenv.Skipf(t, "promtool not found: apt-get install prometheus (scripts/install-test-deps.sh does)")
	}
	cmd := exec.Command("promtool", args...)
	cmd.Dir = root(t)
	out, err := cmd.CombinedOutput()
	t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
	if err != nil {
		t.Fatalf("promtool %s: %v", strings.Join(args, " "), err)
	}
}

func TestPromtoolCheckRules(t *testing.T) {
	promtool(t, "check", "rules", RulesFile)
}

func TestPromtoolTestRules(t *testing.T) {
	tests, err := filepath.Glob(filepath.Join(root(t), TestsGlob))
	if err != nil || len(tests) == 0 {
		t.Fatalf("no promtool tests %s (%v)", TestsGlob, err)
	}
	promtool(t, append([]string{"test", "rules"}, tests...)...)
}

func loadBoth(t *testing.T) (*Rules, map[string]*Tests) {
	t.Helper()
	rules, err := LoadRules(filepath.Join(root(t), RulesFile))
	if err != nil {
		t.Fatal(err)
	}
	tests, err := LoadTests(filepath.Join(root(t), TestsGlob))
	if err != nil {
		t.Fatal(err)
	}
	for path, f := range tests {
		if want := []string{"../imdsguard-rules.yaml"}; !slices.Equal(f.RuleFiles, want) {
			t.Fatalf("%s tests rule files %v, want %v", path, f.RuleFiles, want)
		}
	}
	return rules, tests
}

// Every alert has a case where it fires and one where it does not, and
// no test names an alert the rules lack.
func TestEveryAlertFiresAndNot(t *testing.T) {
	rules, tests := loadBoth(t)
	firing, quiet := map[string]int{}, map[string]int{}
	for _, f := range tests {
		for _, tc := range f.Tests {
			for _, a := range tc.AlertRuleTests {
				if len(a.ExpAlerts) > 0 {
					firing[a.AlertName]++
				} else {
					quiet[a.AlertName]++
				}
			}
		}
	}
	alerts := map[string]bool{}
	for _, r := range rules.All() {
		if r.Alert == "" {
			continue
		}
		alerts[r.Alert] = true
		if firing[r.Alert] == 0 || quiet[r.Alert] == 0 {
			t.Errorf("alert %s: %d firing and %d not-firing cases, want at least one of each", r.Alert, firing[r.Alert], quiet[r.Alert])
		}
	}
	for name := range mergeKeys(firing, quiet) {
		if !alerts[name] {
			t.Errorf("tests name alert %s, which the rules do not have", name)
		}
	}
	if len(alerts) == 0 {
		t.Fatal("no alerts in the rules")
	}
}

func mergeKeys(a, b map[string]int) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// Every recording rule's series is evaluated by a promql_expr_test.
func TestEveryRecordingRuleEvaluated(t *testing.T) {
	rules, tests := loadBoth(t)
	evaluated := map[string]bool{}
	for _, f := range tests {
		for _, tc := range f.Tests {
			for _, e := range tc.PromQLExprTests {
				evaluated[strings.TrimSpace(e.Expr)] = true
			}
		}
	}
	recorded := rules.Recorded()
	if len(recorded) == 0 {
		t.Fatal("no recording rules")
	}
	for _, name := range recorded {
		if !evaluated[name] {
			t.Errorf("recording rule %s: no promql_expr_test evaluates it", name)
		}
	}
}

// Every alert has a severity, a summary, a description and a runbook: its
// section under "## Alerts" in docs/operations.md; every section there is
// an alert of the rules.
func TestAlertsDocumented(t *testing.T) {
	rules, _ := loadBoth(t)
	doc, err := os.ReadFile(filepath.Join(root(t), "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	sections := alertSections(string(doc))
	const runbook = "https://github.com/imdsguard/imdsguard/blob/main/docs/operations.md#"
	alerts := map[string]bool{}
	for _, r := range rules.All() {
		if r.Alert == "" {
			continue
		}
		alerts[r.Alert] = true
		if s := r.Labels["severity"]; s != "critical" && s != "warning" && s != "info" {
			t.Errorf("%s: severity %q, want critical, warning or info", r.Alert, s)
		}
		if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
			t.Errorf("%s: summary or description missing", r.Alert)
		}
		if got, want := r.Annotations["runbook_url"], runbook+strings.ToLower(r.Alert); got != want {
			t.Errorf("%s: runbook_url %q, want %q", r.Alert, got, want)
		}
		if !sections[r.Alert] {
			t.Errorf("%s: no section \"### %s\" under \"## Alerts\" in docs/operations.md", r.Alert, r.Alert)
		}
	}
	for s := range sections {
		if !alerts[s] {
			t.Errorf("docs/operations.md explains alert %s, which the rules do not have", s)
		}
	}
}

// alertSections is the "### Name" headings of the "## Alerts" section.
func alertSections(doc string) map[string]bool {
	out := map[string]bool{}
	_, after, ok := strings.Cut(doc, "\n## Alerts\n")
	if !ok {
		return out
	}
	if i := strings.Index(after, "\n## "); i >= 0 {
		after = after[:i]
	}
	for _, m := range regexp.MustCompile(`(?m)^### (\w+)$`).FindAllStringSubmatch(after, -1) {
		out[m[1]] = true
	}
	return out
}
