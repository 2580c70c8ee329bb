package policy

import (
	"strings"
	"testing"

	"github.com/imdsguard/imdsguard/internal/workload"
)

// A rule's role: is validated, and the decision for its callers carries it
// (the proxy resolves it); the default carries none.
func TestRuleRole(t *testing.T) {
	c := Config{Rules: []RuleConfig{
		{Name: "ci", Match: &MatchConfig{Containers: &ContainerSelector{Labels: map[string]string{"app": "ci"}}}, Role: "ci-builder", Allow: []string{"/**"}},
	}}
	p := mustCompile(t, c, nil)
	ci := Caller{Container: true, Workload: &workload.Workload{Name: "runner", Labels: map[string]string{"app": "ci"}}}
	if d := p.Decide(Request{Caller: ci, Path: "/meta-data/iam/security-credentials"}); !d.Allow || d.Role != "ci-builder" || d.Rule != "ci" {
		t.Errorf("ci caller: %+v", d)
	}
	if d := p.Decide(Request{Caller: ci, Path: "/api/token", Token: true}); d.Role != "ci-builder" {
		t.Errorf("token decision: %+v", d)
	}
	if d := p.Decide(Request{Caller: Caller{Container: true}, Path: "/meta-data/iam/info"}); d.Role != "" {
		t.Errorf("default: %+v", d)
	}
	for _, bad := range []string{"bad role", "arn:aws:iam::1:role/x", "arn:aws:iam::123456789012:user/x"} {
		c.Rules[0].Role = bad
		err := c.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), "rules[0].role: ") {
			t.Errorf("role %q: %v", bad, err)
		}
	}
}

// policy check warns (not refuses) when a rule hands credentials to pods
// chosen by names or labels in any namespace (issue 22, item 7).
func TestTrustWarnings(t *testing.T) {
	pods := func(ps PodSelector) *MatchConfig { return &MatchConfig{Pods: &ps} }
	for _, c := range []struct {
		name string
		rule RuleConfig
		want string // "" no warning
	}{
		{"role by labels", RuleConfig{Match: pods(PodSelector{Labels: map[string]string{"app": "x"}}), Role: "r", Allow: []string{"/meta-data/placement/**"}}, "gives role r"},
		{"iam by name", RuleConfig{Match: pods(PodSelector{Names: []string{"aws-node-*"}}), Allow: []string{"/**"}}, "node role's credentials"},
		{"identity creds", RuleConfig{Match: pods(PodSelector{Names: []string{"x"}}), Allow: []string{"/meta-data/identity-credentials/**"}}, "identity credentials"},
		{"any namespace", RuleConfig{Match: pods(PodSelector{Namespaces: []string{"*"}, Names: []string{"x"}}), Allow: []string{"/**"}}, "any namespace"},
		{"namespace pinned", RuleConfig{Match: pods(PodSelector{Namespaces: []string{"kube-system"}, Names: []string{"aws-node-*"}}), Allow: []string{"/**"}}, ""},
		{"iam denied", RuleConfig{Match: pods(PodSelector{Names: []string{"x"}}), Allow: []string{"/**"},
			Deny: []string{"/meta-data/iam/**", "/meta-data/identity-credentials/**"}}, ""},
		{"no secrets", RuleConfig{Match: pods(PodSelector{Labels: map[string]string{"app": "x"}}), Allow: []string{"/meta-data/placement/**"}}, ""},
		{"namespace only", RuleConfig{Match: pods(PodSelector{Namespaces: []string{"*"}}), Role: "r", Allow: []string{"/**"}}, ""},
	} {
		c.rule.Name = "r1"
		_, warns, err := Compile(Config{Rules: []RuleConfig{c.rule}}, nil)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var got string
		for _, w := range warns {
			if strings.Contains(w, "in any namespace") {
				got = w
			}
		}
		switch {
		case c.want == "" && got != "":
			t.Errorf("%s: unexpected warning %q", c.name, got)
		case c.want != "" && (!strings.Contains(got, c.want) || !strings.HasPrefix(got, "rules[0].match.pods: ")):
			t.Errorf("%s: warnings %q, want one with %q", c.name, warns, c.want)
		}
	}
}
