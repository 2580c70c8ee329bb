// Package chart renders the Helm chart packaging/helm/imdsguard with the
// repository's bin/helm (scripts/build-tools.sh helm) and decodes what it renders
// strictly into the Kubernetes API types, for the chart's tests and for a
// test cluster that installs the rendered objects (`kubectl apply -f -` of
// RenderChart's output is what `helm install` would create).
//
// It imports nothing of tools/testbed, so that the cluster harness there can
// import it.
package chart

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/imdsguard/imdsguard/internal/testenv"
)

// Dir is the chart, relative to the repository root.
const Dir = "packaging/helm/imdsguard"

// TB is the part of testing.TB the helpers use.
type TB = testenv.TB

// Release is what `helm template` is told: the release's name and
// namespace.
type Release struct {
	Name      string
	Namespace string
}

// DefaultRelease is named and placed as packaging/kubernetes/daemonset.yaml
// names and places its objects, so that with default values the two
// render the same names.
var DefaultRelease = Release{Name: "imdsguard", Namespace: "imdsguard"}

// renderTimeout bounds one helm run; rendering takes well under a second.
const renderTimeout = time.Minute

// Helm returns the path of bin/helm under the repository root, or skips t
// (fails it under make test, internal/testenv) when it has not been built.
func Helm(t TB, root string) string {
	t.Helper()
	p := filepath.Join(root, "bin", "helm")
	if _, err := os.Stat(p); err != nil {
		testenv.Skipf(t, "missing bin/helm: run scripts/build-tools.sh helm (make test does)")
	}
	return p
}

// RenderChart renders the chart at chartDir as DefaultRelease with values
// (nil for the defaults; nested maps as in a values file, a nil value
// removes a default) and returns the manifests helm prints, failing t when
// helm refuses. This is what a test cluster applies:
//
//	out := chart.RenderChart(t, chart.Helm(t, root), filepath.Join(root, chart.Dir),
//		map[string]any{"image": map[string]any{"tag": "test"}})
//	// kubectl apply -f - < out
func RenderChart(t TB, helm, chartDir string, values map[string]any) string {
	t.Helper()
	out, err := Render(helm, chartDir, DefaultRelease, values)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Render runs `helm template` for rel with values given on its standard
// input, and flags after them (--show-only templates/configmap.yaml, say);
// the error holds helm's own message (a schema violation, a template's
// fail).
func Render(helm, chartDir string, rel Release, values map[string]any, flags ...string) (string, error) {
	in, err := valuesFile(values)
	if err != nil {
		return "", fmt.Errorf("render %s: %w", chartDir, err)
	}
	args := append([]string{"template", rel.Name, chartDir, "--namespace", rel.Namespace, "--values", "-"}, flags...)
	return run(helm, in, args...)
}

// Lint runs `helm lint --strict` (warnings fail too) on the chart with
// values, and returns helm's report.
func Lint(helm, chartDir string, values map[string]any) (string, error) {
	in, err := valuesFile(values)
	if err != nil {
		return "", fmt.Errorf("lint %s: %w", chartDir, err)
	}
	return run(helm, in, "lint", "--strict", chartDir, "--values", "-")
}

// valuesFile is values as a values file; nil is an empty one.
func valuesFile(values map[string]any) ([]byte, error) {
	if values == nil {
		values = map[string]any{}
	}
	b, err := yaml.Marshal(values)
	if err != nil {
		return nil, fmt.Errorf("values: %w", err)
	}
	return b, nil
}

// run runs helm with stdin, in a private home: helm keeps a cache and a
// repository list under $HOME, and a rendering must not depend on them.
func run(helm string, stdin []byte, args ...string) (string, error) {
	home, err := os.MkdirTemp("", "helm-home-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(home)
	ctx, cancel := context.WithTimeout(context.Background(), renderTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, helm, args...)
	cmd.Env = helmEnv(home)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %w\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// helmEnv is the environment without any HELM_ or KUBECONFIG setting of
// the caller, with every helm directory under home.
func helmEnv(home string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HELM_") && !strings.HasPrefix(kv, "KUBECONFIG=") {
			env = append(env, kv)
		}
	}
	return append(env,
		"HOME="+home,
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
		"KUBECONFIG="+filepath.Join(home, "kubeconfig"),
	)
}
