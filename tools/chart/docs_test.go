package chart_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/imdsguard/imdsguard/internal/config"
	"github.com/imdsguard/imdsguard/tools/chart"
)

// readChartDoc reads a file of the chart.
func readChartDoc(t *testing.T, root, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, chart.Dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDocsNameTheNamespaceLabels: the chart leaves the namespace to the
// user (Helm stores the release in it before any object is made), so its
// README and NOTES.txt must give the manifest's Pod Security labels.
func TestDocsNameTheNamespaceLabels(t *testing.T) {
	root := repoRoot(t)
	man := loadManifest(t, root)
	for _, doc := range []string{"README.md", "templates/NOTES.txt"} {
		text := readChartDoc(t, root, doc)
		for k, v := range man.Namespace.Labels {
			if strings.HasPrefix(k, "pod-security.kubernetes.io/") && !bytes.Contains(text, []byte(k+"="+v)) {
				t.Errorf("%s/%s: does not say %s=%s, the manifest's namespace label", chart.Dir, doc, k, v)
			}
		}
	}
}

var yamlBlock = regexp.MustCompile("(?s)```yaml\n(.*?)```")

// TestREADMEValues: every yaml block of the chart's README is a values
// file that renders, and whose configuration the daemon accepts.
func TestREADMEValues(t *testing.T) {
	b := newBench(t)
	blocks := yamlBlock.FindAllSubmatch(readChartDoc(t, b.root, "README.md"), -1)
	if len(blocks) == 0 {
		t.Fatal("README.md: no yaml block")
	}
	for i, blk := range blocks {
		var values m
		if err := yaml.UnmarshalStrict(blk[1], &values); err != nil {
			t.Fatalf("block %d: %v", i, err)
		}
		if _, err := b.render(t, values).Config(); err != nil {
			t.Errorf("block %d: the daemon refuses it: %v", i, err)
		}
	}
}

// checkSed is how README.md, "Check a configuration before it is
// installed", takes imdsguard.yaml out of the rendered ConfigMap.
const checkSed = `sed -n '/imdsguard.yaml: |/,$ s/^    //p'`

// TestREADMECheckCommand runs the README's command and wants the file
// the daemon would read from the ConfigMap.
func TestREADMECheckCommand(t *testing.T) {
	b := newBench(t)
	if !bytes.Contains(readChartDoc(t, b.root, "README.md"), []byte(checkSed)) {
		t.Fatalf("README.md no longer shows %s: update this test with it", checkSed)
	}
	cm, err := chart.Render(b.helm, b.dir, chart.DefaultRelease, nil, "--show-only", "templates/configmap.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", checkSed)
	cmd.Stdin = strings.NewReader(cm)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	got, err := config.Read(bytes.NewReader(out), "extracted")
	if err != nil {
		t.Fatalf("the extracted file: %v\n%s", err, out)
	}
	want, err := b.render(t, nil).Config()
	if err != nil {
		t.Fatal(err)
	}
	if d := configDiff(*want, *got); d != "" {
		t.Errorf("the extracted file is another configuration than the ConfigMap's (- ConfigMap, + extracted):\n%s", d)
	}
}
