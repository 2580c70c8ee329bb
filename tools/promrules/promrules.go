// Package promrules reads imdsguard's Prometheus rules
// (packaging/prometheus/imdsguard-rules.yaml) and their promtool unit tests
// (packaging/prometheus/tests/), so that Go tests can check them: every
// alert shown firing and not firing, every recording rule evaluated, the
// dashboard's series names known.
package promrules

import (
	"fmt"
	"os"
	"path/filepath"

	"sigs.k8s.io/yaml"
)

// RulesFile is the repository path of the rules, and TestsGlob of their
// promtool unit tests.
const (
	RulesFile = "packaging/prometheus/imdsguard-rules.yaml"
	TestsGlob = "packaging/prometheus/tests/*.yaml"
)

// Rules is a Prometheus rule file.
type Rules struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []Rule `json:"rules"`
	} `json:"groups"`
}

// Rule is a recording rule (Record set) or an alert (Alert set).
type Rule struct {
	Record      string            `json:"record"`
	Alert       string            `json:"alert"`
	Expr        string            `json:"expr"`
	For         string            `json:"for"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

// All is every rule of every group, in order.
func (r *Rules) All() []Rule {
	var out []Rule
	for _, g := range r.Groups {
		out = append(out, g.Rules...)
	}
	return out
}

// Recorded is the names the recording rules record.
func (r *Rules) Recorded() []string {
	var out []string
	for _, x := range r.All() {
		if x.Record != "" {
			out = append(out, x.Record)
		}
	}
	return out
}

// Tests is a promtool unit test file.
type Tests struct {
	RuleFiles []string `json:"rule_files"`
	Tests     []struct {
		Name           string `json:"name"`
		AlertRuleTests []struct {
			EvalTime  string `json:"eval_time"`
			AlertName string `json:"alertname"`
			ExpAlerts []struct {
				ExpLabels      map[string]string `json:"exp_labels"`
				ExpAnnotations map[string]string `json:"exp_annotations"`
			} `json:"exp_alerts"`
		} `json:"alert_rule_test"`
		PromQLExprTests []struct {
			Expr string `json:"expr"`
		} `json:"promql_expr_test"`
	} `json:"tests"`
}

// LoadRules reads the rule file at path.
func LoadRules(path string) (*Rules, error) {
	r := &Rules{}
	return r, load(path, r, true)
}

// LoadTests reads the promtool unit test files that match glob.
func LoadTests(glob string) (map[string]*Tests, error) {
	paths, err := filepath.Glob(glob)
	if err != nil || len(paths) == 0 {
		return nil, fmt.Errorf("promtool tests %s: none found (%v)", glob, err)
	}
	out := map[string]*Tests{}
	for _, p := range paths {
		t := &Tests{}
		if err := load(p, t, false); err != nil {
			return nil, err
		}
		out[p] = t
	}
	return out, nil
}

// load parses the YAML file at path into v; strict refuses fields v does
// not name (Tests names only the parts the checks read).
func load(path string, v any, strict bool) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	unmarshal := yaml.Unmarshal
	if strict {
		unmarshal = yaml.UnmarshalStrict
	}
	if err := unmarshal(b, v); err != nil {
		return fmt.Errorf("parse %s: %w", path, err)
	}
	return nil
}
