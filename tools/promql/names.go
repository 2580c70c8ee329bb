package main

import (
	"slices"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// Result is what one expression reads, or why it does not parse.
type Result struct {
	Names []string `json:"names,omitempty"`
	Error string   `json:"error,omitempty"`
}

// Parse parses expr and collects the metric names of its selectors, sorted
// and each once. A selector without an exact name (no name, or a name
// matched by regular expression) is an error: what it reads cannot be
// checked.
func Parse(expr string) Result {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return Result{Error: err.Error()}
	}
	var names []string
	for _, sel := range parser.ExtractSelectors(e) {
		name := exactName(sel)
		if name == "" {
			return Result{Error: "a selector without an exact metric name: " + selString(sel)}
		}
		names = append(names, name)
	}
	slices.Sort(names)
	return Result{Names: slices.Compact(names)}
}

func exactName(ms []*labels.Matcher) string {
	for _, m := range ms {
		if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
			return m.Value
		}
	}
	return ""
}

func selString(ms []*labels.Matcher) string {
	s := "{"
	for i, m := range ms {
		if i > 0 {
			s += ", "
		}
		s += m.String()
	}
	return s + "}"
}
