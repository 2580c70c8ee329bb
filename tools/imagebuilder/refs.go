package imagebuilder

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

var (
	// reference is {{ … }}, spaces inside trimmed.
	reference = regexp.MustCompile(`\{\{\s*(.*?)\s*\}\}`)
	// chain is phase.step.inputs[i].field or phase.step.outputs.field.
	chain = regexp.MustCompile(`^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.(inputs|outputs)(?:\[(\d+)\])?\.([A-Za-z0-9_]+)$`)
)

// scalars returns the values of every scalar under n: the strings a
// reference can be in.
func scalars(n *yaml.Node) []string {
	if n.Kind == yaml.ScalarNode {
		return []string{n.Value}
	}
	var out []string
	for _, c := range n.Content {
		out = append(out, scalars(c)...)
	}
	return out
}

// refs returns the references in step s's inputs.
func refs(s Step) []string {
	var out []string
	for _, v := range scalars(&s.Inputs) {
		for _, m := range reference.FindAllStringSubmatch(v, -1) {
			out = append(out, m[1])
		}
	}
	return out
}

func (d *Document) checkRefs(phase string, s Step, vars map[string]Variable) []error {
	var errs []error
	for _, ref := range refs(s) {
		if !strings.Contains(ref, ".") {
			if _, ok := vars[ref]; !ok {
				errs = append(errs, fmt.Errorf("{{ %s }}: no such parameter or constant", ref))
			}
			continue
		}
		if _, err := d.chained(phase, s.Name, ref); err != nil {
			errs = append(errs, fmt.Errorf("{{ %s }}: %w", ref, err))
		}
	}
	return errs
}

func (d *Document) uses(name string) bool {
	for _, p := range d.Phases {
		for _, s := range p.Steps {
			for _, ref := range refs(s) {
				if ref == name {
					return true
				}
			}
		}
	}
	return false
}

// link is a parsed chaining expression.
type link struct {
	step  Step
	kind  string // inputs or outputs
	index int    // -1: none
	field string
}

// chained parses ref, a chaining expression in step from of phase, and
// finds the step it names, which must come before from.
func (d *Document) chained(phase, from, ref string) (link, error) {
	m := chain.FindStringSubmatch(ref)
	if m == nil {
		return link{}, fmt.Errorf("not a chaining expression phase.step.inputs[i].field or phase.step.outputs.field")
	}
	l := link{kind: m[3], index: -1, field: m[5]}
	if m[4] != "" {
		l.index, _ = strconv.Atoi(m[4])
	}
	at, target := -1, -1
	i := 0
	for _, p := range d.Phases {
		for _, s := range p.Steps {
			if p.Name == phase && s.Name == from && at < 0 {
				at = i
			}
			if p.Name == m[1] && s.Name == m[2] && target < 0 {
				target, l.step = i, s
			}
			i++
		}
	}
	switch {
	case target < 0:
		return link{}, fmt.Errorf("no step %s.%s", m[1], m[2])
	case target >= at:
		return link{}, fmt.Errorf("step %s.%s does not come before %s.%s", m[1], m[2], phase, from)
	}
	return l, nil
}

// input is the value of an earlier step's input that l names.
func (l link) input() (string, error) {
	if l.kind != "inputs" {
		return "", fmt.Errorf("%s of step %s are known only when it runs", l.kind, l.step.Name)
	}
	var in any
	if err := l.step.Inputs.Decode(&in); err != nil {
		return "", err
	}
	if l.index >= 0 {
		list, ok := in.([]any)
		if !ok || l.index >= len(list) {
			return "", fmt.Errorf("step %s's inputs have no item %d", l.step.Name, l.index)
		}
		in = list[l.index]
	}
	m, ok := in.(map[string]any)
	if v, found := m[l.field].(string); ok && found {
		return v, nil
	}
	return "", fmt.Errorf("step %s's inputs have no string %s", l.step.Name, l.field)
}

// Script is the bash that ExecuteBash step name of phase runs (its
// commands, one after the other, as AWSTOE writes them into one file),
// with each parameter given its value from values (else its default), and
// each chaining expression the earlier step's input.
func (d *Document) Script(phase, name string, values map[string]string) (string, error) {
	s, err := d.step(phase, name)
	if err != nil {
		return "", err
	}
	if s.Action != "ExecuteBash" {
		return "", fmt.Errorf("step %s.%s: action %s, not ExecuteBash", phase, name, s.Action)
	}
	var in executeBash
	if err := decodeNode(&s.Inputs, &in); err != nil {
		return "", fmt.Errorf("step %s.%s inputs: %w", phase, name, err)
	}
	var b strings.Builder
	for _, c := range in.Commands {
		r, err := d.resolve(phase, name, c, values)
		if err != nil {
			return "", fmt.Errorf("step %s.%s: %w", phase, name, err)
		}
		if strings.Contains(r, "{{") {
			return "", fmt.Errorf("step %s.%s: a reference is left after resolving: %s", phase, name, r)
		}
		b.WriteString(strings.TrimSuffix(r, "\n") + "\n")
	}
	return b.String(), nil
}

func (d *Document) step(phase, name string) (Step, error) {
	for _, p := range d.Phases {
		for _, s := range p.Steps {
			if p.Name == phase && s.Name == name {
				return s, nil
			}
		}
	}
	return Step{}, fmt.Errorf("no step %s.%s", phase, name)
}

// resolve replaces the references in s.
func (d *Document) resolve(phase, from, s string, values map[string]string) (string, error) {
	vars, _ := d.variables()
	var err error
	out := reference.ReplaceAllStringFunc(s, func(m string) string {
		ref := reference.FindStringSubmatch(m)[1]
		v, rerr := d.value(phase, from, ref, vars, values)
		if rerr != nil && err == nil {
			err = fmt.Errorf("{{ %s }}: %w", ref, rerr)
		}
		return v
	})
	return out, err
}

func (d *Document) value(phase, from, ref string, vars map[string]Variable, values map[string]string) (string, error) {
	if v, ok := values[ref]; ok {
		return v, nil
	}
	if v, ok := vars[ref]; ok {
		switch {
		case v.Value != nil:
			return *v.Value, nil
		case v.Default != nil:
			return *v.Default, nil
		}
		return "", fmt.Errorf("parameter without a default, and no value given")
	}
	l, err := d.chained(phase, from, ref)
	if err != nil {
		return "", err
	}
	return l.input()
}
