package dashboard

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
)

// Query is one PromQL query of the dashboard file: a panel target's expr,
// or the series selector of a label_values variable.
type Query struct {
	Where string // "panel 3 \"Cache hit ratio\" target A", "variable instance"
	Expr  string // as the file holds it, Grafana's variables in it
}

// panel is the part of a panel that holds queries; a collapsed row holds
// its panels.
type panel struct {
	ID      int    `json:"id"`
	Title   string `json:"title"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

// file is the part of the dashboard JSON that holds queries.
type file struct {
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Type  string `json:"type"`
			Name  string `json:"name"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

// Queries reads every query of a dashboard file's JSON.
func Queries(b []byte) ([]Query, error) {
	var f file
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("parse dashboard: %w", err)
	}
	out := panelQueries(f.Panels)
	for _, v := range f.Templating.List {
		if v.Type != "query" {
			continue
		}
		s, _ := v.Query.(string)
		m := labelValues.FindStringSubmatch(s)
		if m == nil {
			return nil, fmt.Errorf("variable %s: query %q is not label_values(SELECTOR, LABEL)", v.Name, s)
		}
		out = append(out, Query{"variable " + v.Name, m[1]})
	}
	return out, nil
}

func panelQueries(panels []panel) []Query {
	var out []Query
	for _, p := range panels {
		for _, t := range p.Targets {
			out = append(out, Query{fmt.Sprintf("panel %d %q target %s", p.ID, p.Title, t.RefID), t.Expr})
		}
		out = append(out, panelQueries(p.Panels)...)
	}
	return out
}

var labelValues = regexp.MustCompile(`^label_values\((.+), *\w+\)$`)

// grafanaVars are the variables the dashboard's queries use, and a value
// of each that PromQL can parse.
var grafanaVars = strings.NewReplacer(
	"$__rate_interval", "5m",
	"$job", "imdsguard",
	"$instance", ".*",
)

// PromQL is q's expression with Grafana's variables replaced by values, so
// that Prometheus's parser can read it; an unknown variable is an error.
func (q Query) PromQL() (string, error) {
	s := grafanaVars.Replace(q.Expr)
	if strings.Contains(s, "$") {
		return "", fmt.Errorf("%s: a variable the dashboard does not define in %q", q.Where, q.Expr)
	}
	return s, nil
}

// Parsed is what Prometheus's parser made of one expression
// (tools/promql's bin/promqlnames).
type Parsed struct {
	Names []string `json:"names"`
	Error string   `json:"error"`
}

// Parse parses exprs with bin/promqlnames at bin, in order.
func Parse(bin string, exprs []string) ([]Parsed, error) {
	in, err := json.Marshal(exprs)
	if err != nil {
		return nil, fmt.Errorf("encode expressions: %w", err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(in), &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("run %s: %w: %s", bin, err, stderr.String())
	}
	var out []Parsed
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil || len(out) != len(exprs) {
		return nil, fmt.Errorf("%s: %d results for %d expressions (%v)", bin, len(out), len(exprs), err)
	}
	return out, nil
}
