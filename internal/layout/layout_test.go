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
	for _, leaf := range []string{"proxy/imds", "proxy/ifname"} {
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
