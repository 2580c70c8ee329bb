package chart_test

import (
	"fmt"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/yaml"

	"github.com/imdsguard/imdsguard/internal/config"
	"github.com/imdsguard/imdsguard/tools/chart"
	"github.com/imdsguard/imdsguard/tools/manifest"
	"github.com/imdsguard/imdsguard/tools/testbed"
)

// manifestPath is the reference the chart's defaults must render.
const manifestPath = "packaging/kubernetes/daemonset.yaml"

// bench is the repository, bin/helm and the chart's directory.
type bench struct {
	root, helm, dir string
}

// newBench skips t (fails it under make test) without bin/helm.
func newBench(t *testing.T) bench {
	t.Helper()
	root := repoRoot(t)
	return bench{root: root, helm: chart.Helm(t, root), dir: filepath.Join(root, chart.Dir)}
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := testbed.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// render renders the chart as chart.DefaultRelease and decodes it, failing
// t on either error.
func (b bench) render(t *testing.T, values map[string]any) *chart.Objects {
	t.Helper()
	o, err := chart.Decode(chart.RenderChart(t, b.helm, b.dir, values))
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// loadManifest decodes packaging/kubernetes/daemonset.yaml strictly.
func loadManifest(t *testing.T, root string) *manifest.Manifest {
	t.Helper()
	man, err := manifest.LoadManifest(filepath.Join(root, manifestPath))
	if err != nil {
		t.Fatal(err)
	}
	if man.ServiceAccount == nil || man.ConfigMap == nil || man.DaemonSet == nil || man.Namespace == nil {
		t.Fatalf("%s: want a Namespace, ServiceAccount, ConfigMap and DaemonSet, got %v", manifestPath, man.Kinds)
	}
	return man
}

// sameAs reports, when got and want differ (semantically: nil and empty
// alike, quantities by value), both as YAML under what.
func sameAs(t *testing.T, what string, got, want any) {
	t.Helper()
	if equality.Semantic.DeepEqual(got, want) {
		return
	}
	t.Errorf("%s: the chart's differs from the manifest's (- manifest, + chart):\n%s", what, lineDiff(asYAML(want), asYAML(got)))
}

// lineDiff shows the lines only in a (-) and only in b (+), in order, from
// a longest common subsequence of lines, each run of them after the common
// line before it (for context).
func lineDiff(a, b string) string {
	x, y := strings.Split(a, "\n"), strings.Split(b, "\n")
	// lcs[i][j]: the length of the LCS of x[i:] and y[j:].
	lcs := make([][]int, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out strings.Builder
	context, shown := "", true
	line := func(sign, l string) {
		if !shown {
			fmt.Fprintf(&out, "  %s\n", context)
			shown = true
		}
		fmt.Fprintf(&out, "%s %s\n", sign, l)
	}
	for i, j := 0, 0; i < len(x) || j < len(y); {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			context, shown = x[i], false
			i, j = i+1, j+1
		case i < len(x) && (j == len(y) || lcs[i+1][j] >= lcs[i][j+1]):
			line("-", x[i])
			i++
		default:
			line("+", y[j])
			j++
		}
	}
	return out.String()
}

func asYAML(v any) string {
	b, err := yaml.Marshal(v)
	if err != nil {
		return err.Error() + "\n"
	}
	return string(b)
}

// helmLabels are the labels the chart may add to the manifest's: Helm's
// standard ones.
var helmLabels = []string{
	"app.kubernetes.io/instance",
	"app.kubernetes.io/managed-by",
	"app.kubernetes.io/version",
	"helm.sh/chart",
}

// labelsAside checks that got holds every label of want, and besides them
// only Helm's standard labels, and returns want: the caller then compares
// the rest of the object field by field.
func labelsAside(t *testing.T, what string, got, want map[string]string) map[string]string {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s=%q, want the manifest's %q", what, k, got[k], v)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[k]; !ok && !slices.Contains(helmLabels, k) {
			t.Errorf("%s: %s is neither the manifest's nor one of Helm's standard labels", what, k)
		}
	}
	return want
}

// configDiff is "" when a and b are the same configuration, wherever each
// was read from, else their difference (- a, + b).
func configDiff(a, b config.Config) string {
	a.File, b.File = "", ""
	if reflect.DeepEqual(a, b) {
		return ""
	}
	return lineDiff(asYAML(a), asYAML(b))
}

// m is a values map, written short.
type m = map[string]any
