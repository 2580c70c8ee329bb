package imagebuilder

import (
	"fmt"
	"regexp"
	"slices"
)

// Phases are the phases EC2 Image Builder runs for an AMI: build and
// validate on the build instance, test on an instance launched from the new
// image.
var Phases = []string{"build", "validate", "test"}

var (
	// variableName: 3 to 128 letters, digits, '-' or '_' (documented for
	// parameters and constants).
	variableName = regexp.MustCompile(`^[A-Za-z0-9_-]{3,128}$`)
	// stepName: the user guide asks a unique name per phase; chaining
	// expressions ({{ phase.step.inputs… }}) need it without dots. This is
	// the name pattern Image Builder's API documents for workflow steps.
	stepName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{1,99}$`)
)

var onFailure = []string{"", "Abort", "Continue", "Ignore"}

// Check returns every way d departs from the documented structure.
func (d *Document) Check() []error {
	var errs []error
	if d.SchemaVersion != "1.0" {
		errs = append(errs, fmt.Errorf("schemaVersion %q, want \"1.0\"", d.SchemaVersion))
	}
	vars, verrs := d.variables()
	errs = append(errs, verrs...)
	if len(d.Phases) == 0 {
		errs = append(errs, fmt.Errorf("phases: none"))
	}
	seen := map[string]bool{}
	for _, p := range d.Phases {
		if !slices.Contains(Phases, p.Name) {
			errs = append(errs, fmt.Errorf("phase %q: not one of %q", p.Name, Phases))
		}
		if seen[p.Name] {
			errs = append(errs, fmt.Errorf("phase %q: defined twice", p.Name))
		}
		seen[p.Name] = true
		errs = append(errs, d.checkPhase(p, vars)...)
	}
	for name := range vars {
		if !d.uses(name) {
			errs = append(errs, fmt.Errorf("parameter or constant %q: never used", name))
		}
	}
	return errs
}

// variables returns the declared parameters and constants by name.
func (d *Document) variables() (map[string]Variable, []error) {
	vars := map[string]Variable{}
	var errs []error
	add := func(kind string, list []map[string]Variable) {
		for i, m := range list {
			if len(m) != 1 {
				errs = append(errs, fmt.Errorf("%s[%d]: want one name per item, found %d", kind, i, len(m)))
			}
			for name, v := range m {
				errs = append(errs, checkVariable(kind, name, v, vars)...)
				vars[name] = v
			}
		}
	}
	add("parameters", d.Parameters)
	add("constants", d.Constants)
	return vars, errs
}

func checkVariable(kind, name string, v Variable, seen map[string]Variable) []error {
	var errs []error
	if !variableName.MatchString(name) {
		errs = append(errs, fmt.Errorf("%s %q: name must match %s", kind, name, variableName))
	}
	if _, dup := seen[name]; dup {
		errs = append(errs, fmt.Errorf("%s %q: name used twice", kind, name))
	}
	if v.Type != "string" {
		errs = append(errs, fmt.Errorf("%s %q: type %q, want string", kind, name, v.Type))
	}
	if kind == "parameters" && v.Value != nil {
		errs = append(errs, fmt.Errorf("%s %q: value is a constant's field (a parameter has default)", kind, name))
	}
	if kind == "constants" && (v.Value == nil || v.Default != nil) {
		errs = append(errs, fmt.Errorf("%s %q: a constant has a value and no default", kind, name))
	}
	return errs
}

func (d *Document) checkPhase(p Phase, vars map[string]Variable) []error {
	var errs []error
	if len(p.Steps) == 0 {
		errs = append(errs, fmt.Errorf("phase %q: no steps", p.Name))
	}
	seen := map[string]bool{}
	for _, s := range p.Steps {
		where := fmt.Sprintf("phase %q step %q", p.Name, s.Name)
		if !stepName.MatchString(s.Name) {
			errs = append(errs, fmt.Errorf("%s: name must match %s", where, stepName))
		}
		if seen[s.Name] {
			errs = append(errs, fmt.Errorf("%s: name used twice in the phase", where))
		}
		seen[s.Name] = true
		for _, err := range checkStep(s) {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
		}
		for _, err := range d.checkRefs(p.Name, s, vars) {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
		}
	}
	return errs
}

func checkStep(s Step) []error {
	var errs []error
	check, ok := actions[s.Action]
	switch {
	case !ok:
		errs = append(errs, fmt.Errorf("action %q: not a known action module", s.Action))
	case s.Inputs.Kind == 0:
		errs = append(errs, fmt.Errorf("inputs: required"))
	default:
		if err := check(&s.Inputs); err != nil {
			errs = append(errs, fmt.Errorf("%s inputs: %w", s.Action, err))
		}
	}
	if t := s.TimeoutSeconds; t != nil && *t != -1 && *t <= 0 {
		errs = append(errs, fmt.Errorf("timeoutSeconds %d: want -1 (no limit) or more than 0", *t))
	}
	if !slices.Contains(onFailure, s.OnFailure) {
		errs = append(errs, fmt.Errorf("onFailure %q: not one of Abort, Continue, Ignore", s.OnFailure))
	}
	if m := s.MaxAttempts; m != nil && *m < 1 {
		errs = append(errs, fmt.Errorf("maxAttempts %d: want 1 or more", *m))
	}
	return errs
}
