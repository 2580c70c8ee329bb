package layout

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/imdsguard/imdsguard"

// imports lists every package of the main module with its imports, as
// `go list` sees them (tests excluded: they may import what they test).
func imports(t *testing.T) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkgs[f[0]] = f[1:]
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages: the test proves nothing", len(pkgs))
	}
	return pkgs
}

// A child package never imports its parent (or any ancestor): shared
// values live in a package of their own that both can import.
func TestNoPackageImportsItsAncestor(t *testing.T) {
	for pkg, imps := range imports(t) {
		for _, imp := range imps {
			if strings.HasPrefix(pkg, imp+"/") {
				t.Errorf("%s imports its ancestor %s", pkg, imp)
			}
		}
	}
}

// The protocol facts and the interface pattern are leaves: they import
// nothing of ours, so everything else can name them.
func TestLeavesImportNothingOfOurs(t *testing.T) {
	pkgs := imports(t)
	for _, leaf := range []string{"internal/imds", "internal/ifname"} {
		imps, ok := pkgs[module+"/"+leaf]
		if !ok {
			t.Errorf("package %s not found", leaf)
		}
		for _, imp := range imps {
			if strings.HasPrefix(imp, module+"/") {
				t.Errorf("%s imports %s; it must stay a leaf", leaf, imp)
			}
		}
	}
}

// The layers: the pipeline (proxy) uses the parts (internal/...) and the
// policy; the policy is pure and knows nothing of the pipeline; a part never
// reaches up into the pipeline or the command.
func TestLayersDoNotInvert(t *testing.T) {
	for pkg, imps := range imports(t) {
		rel := strings.TrimPrefix(pkg, module+"/")
		for _, imp := range imps {
			up := strings.TrimPrefix(imp, module+"/")
			if up == imp {
				continue // not ours
			}
			switch {
			case under(up, "cmd"):
				t.Errorf("%s imports the command %s", rel, up)
			case under(rel, "policy") && under(up, "proxy"):
				t.Errorf("policy package %s imports the pipeline's %s", rel, up)
			case under(rel, "internal") && under(up, "proxy"):
				t.Errorf("part %s imports the pipeline's %s", rel, up)
			}
		}
	}
}

// under reports whether package path rel is dir or below it.
func under(rel, dir string) bool { return rel == dir || strings.HasPrefix(rel, dir+"/") }
