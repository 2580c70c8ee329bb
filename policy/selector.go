package policy

import (
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/imdsguard/imdsguard/internal/config/field"
	"github.com/imdsguard/imdsguard/internal/workload"
)

// ContainerSelector is `match.containers`: containers by what their
// runtime says about them. Every field written must fit: one of the names,
// AND one of the images, AND every label. Names, images and label values
// are globs ("*" is any run of characters, "/" and ":" included); label
// keys are exact. It fits container callers whose runtime answered, and
// processes of the host's network namespace whose cgroup names a container
// (`--network=host`, hostNetwork pods); never a plain host process.
type ContainerSelector struct {
	// Names are container names: Docker's (without its leading "/"), the
	// kubelet's container name for a pod's container.
	Names  []string          `yaml:"names"`
	Images []string          `yaml:"images"` // as the container was created: "registry.example/app:1.2"
	Labels map[string]string `yaml:"labels"` // the container's labels (Docker's include its image's)
}

// PodSelector is `match.pods`: Kubernetes containers by their pod. Every
// field written must fit, as in ContainerSelector; Labels are the pod's
// labels.
type PodSelector struct {
	Namespaces []string          `yaml:"namespaces"`
	Names      []string          `yaml:"names"` // pod names: "aws-node-*"
	Labels     map[string]string `yaml:"labels"`
}

// selectorHelp is how a selector's entries are written, for errors.
const selectorHelp = `"*" matches any run of characters`

// validate checks the selector found at path.
func (s *ContainerSelector) validate(path string) []error {
	if s.Names == nil && s.Images == nil && s.Labels == nil {
		return []error{field.Errorf(path, `an empty selector would match every container a runtime knows: list names, images or labels (images: ["*"] if every such container is meant)`)}
	}
	errs := checkGlobs(field.Join(path, "names"), "container name", s.Names)
	errs = append(errs, checkGlobs(field.Join(path, "images"), "image", s.Images)...)
	return append(errs, checkLabels(field.Join(path, "labels"), s.Labels)...)
}

// validate checks the selector found at path.
func (s *PodSelector) validate(path string) []error {
	if s.Namespaces == nil && s.Names == nil && s.Labels == nil {
		return []error{field.Errorf(path, `an empty selector would match every pod: list namespaces, names or labels (namespaces: ["*"] if every pod is meant)`)}
	}
	errs := checkGlobs(field.Join(path, "namespaces"), "namespace", s.Namespaces)
	errs = append(errs, checkGlobs(field.Join(path, "names"), "pod name", s.Names)...)
	return append(errs, checkLabels(field.Join(path, "labels"), s.Labels)...)
}

// checkGlobs checks a list of globs: written non-empty, each entry
// non-empty and free of spaces and control characters.
func checkGlobs(path, kind string, list []string) []error {
	if list != nil && len(list) == 0 {
		return []error{field.Errorf(path, "empty list: it would match nothing while reading like anything; list at least one %s, or drop the field", kind)}
	}
	var errs []error
	for i, s := range list {
		if err := checkToken(kind, s); err != nil {
			errs = append(errs, field.Errorf(field.Index(path, i), "%v (%s)", err, selectorHelp))
		}
	}
	return errs
}

// checkLabels checks label keys (exact: no "*") and values (globs).
func checkLabels(path string, labels map[string]string) []error {
	if labels != nil && len(labels) == 0 {
		return []error{field.Errorf(path, "empty map: list at least one label (key: value), or drop the field")}
	}
	var errs []error
	for _, k := range sortedKeys(labels) {
		p := field.Join(path, labelPath(k))
		if err := checkToken("label key", k); err != nil {
			errs = append(errs, field.Errorf(p, "%v", err))
		} else if strings.Contains(k, "*") {
			errs = append(errs, field.Errorf(p, "label key %q: keys are matched exactly, \"*\" is for values", k))
		}
		if strings.ContainsFunc(labels[k], isControl) {
			errs = append(errs, field.Errorf(p, "label value %q has a control character", labels[k]))
		}
	}
	return errs
}

// labelPath is a label key as a field path element: quoted unless it is
// plain letters, digits, "-" and "_" ("'io.kubernetes.pod.name'"), so that
// the loader finds its line.
func labelPath(k string) string {
	if strings.ContainsFunc(k, func(r rune) bool {
		return !(r == '-' || r == '_' || '0' <= r && r <= '9' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z')
	}) {
		return "'" + k + "'"
	}
	return k
}

func checkToken(kind, s string) error {
	switch {
	case s == "":
		return errors.New("empty " + kind)
	case strings.ContainsFunc(s, func(r rune) bool { return r == ' ' || isControl(r) }):
		return errors.New(kind + " " + strconv.Quote(s) + " has a space or a control character")
	}
	return nil
}

func isControl(r rune) bool { return r < ' ' || r == 0x7f }

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// workloadMatch is the compiled containers and pods selectors of a match.
type workloadMatch struct {
	containers *containerSel // nil: not written
	pods       *podSel
}

type containerSel struct {
	names, images []string
	labels        []labelSel
}

type podSel struct {
	namespaces, names []string
	labels            []labelSel
}

// labelSel is one label a selector asks for: key exact, value a glob.
type labelSel struct{ key, value string }

func compileWorkloadMatch(mc *MatchConfig) workloadMatch {
	var m workloadMatch
	if s := mc.Containers; s != nil {
		m.containers = &containerSel{names: s.Names, images: s.Images, labels: compileLabels(s.Labels)}
	}
	if s := mc.Pods; s != nil {
		m.pods = &podSel{namespaces: s.Namespaces, names: s.Names, labels: compileLabels(s.Labels)}
	}
	return m
}

func compileLabels(m map[string]string) []labelSel {
	var out []labelSel
	for _, k := range sortedKeys(m) {
		out = append(out, labelSel{k, m[k]})
	}
	return out
}

// fits reports whether w fits either selector; a nil w fits neither.
func (m *workloadMatch) fits(w *workload.Workload) bool {
	if w == nil {
		return false
	}
	if s := m.containers; s != nil && anyGlob(s.names, w.Name) && anyGlob(s.images, w.Image) && labelsFit(s.labels, w.Labels) {
		return true
	}
	s := m.pods
	return s != nil && w.Pod != nil && anyGlob(s.namespaces, w.Pod.Namespace) && anyGlob(s.names, w.Pod.Name) && labelsFit(s.labels, w.Pod.Labels)
}

// anyGlob reports whether s matches one of globs; no globs (the field was
// not written) fit everything.
func anyGlob(globs []string, s string) bool {
	if len(globs) == 0 {
		return true
	}
	for _, g := range globs {
		if wildMatch(g, s) {
			return true
		}
	}
	return false
}

// labelsFit reports whether every wanted label is there with a value its
// glob matches.
func labelsFit(want []labelSel, have map[string]string) bool {
	for _, l := range want {
		v, ok := have[l.key]
		if !ok || !wildMatch(l.value, v) {
			return false
		}
	}
	return true
}

// wildMatch matches s against pat, where "*" is any run of bytes; other
// bytes match themselves, case included. It does not allocate.
func wildMatch(pat, s string) bool { return starMatch(pat, s, false) }
