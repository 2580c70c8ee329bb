package imagebuilder

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/internal/testenv"
	"github.com/imdsguard/imdsguard/tools/testbed"
)

const componentFile = "packaging/imagebuilder/imdsguard.yaml"

func readComponent(t *testing.T) *Document {
	t.Helper()
	root, err := testbed.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(root, componentFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := Parse(f)
	if err != nil {
		t.Fatalf("%s: %v", componentFile, err)
	}
	return d
}

// TestImageBuilderComponent: the shipped component document reads strictly
// into the documented structure, passes Check, has the three phases Image
// Builder runs, and does in each what it is for: build downloads the
// package given as a parameter, installs it and enables the units;
// validate runs `imdsguard check --offline`; test runs `imdsguard check`.
func TestImageBuilderComponent(t *testing.T) {
	d := readComponent(t)
	if errs := d.Check(); len(errs) > 0 {
		t.Fatalf("%s:\n%v", componentFile, errors.Join(errs...))
	}
	var phases []string
	for _, p := range d.Phases {
		phases = append(phases, p.Name)
	}
	if !slices.Equal(phases, Phases) {
		t.Errorf("phases %q, want %q", phases, Phases)
	}
	if len(d.Parameters) != 1 || d.Parameters[0]["PackageS3Uri"].Type != "string" || d.Parameters[0]["PackageS3Uri"].Default != nil {
		t.Errorf("parameters %+v, want PackageS3Uri alone, a string with no default (the recipe must give it)", d.Parameters)
	}
	get, err := d.step("build", "DownloadPackage")
	if err != nil || get.Action != "S3Download" || !slices.Contains(refs(get), "PackageS3Uri") {
		t.Errorf("build.DownloadPackage %+v (%v): want an S3Download of {{ PackageS3Uri }}", get, err)
	}
	for _, c := range []struct {
		phase string
		lines []string // each a whole line of the phase's bash, in order
	}{
		{"build", []string{
			`dnf install -y "$download.rpm"`,
			`DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$download.deb"`,
			"systemctl enable imdsguard.socket imdsguard.service",
		}},
		{"validate", []string{"imdsguard check --offline"}},
		{"test", []string{"if systemctl is-active --quiet imdsguard.service; then", "imdsguard check"}},
	} {
		script := phaseScript(t, d, c.phase, deb)
		if !inOrder(script, c.lines) {
			t.Errorf("phase %s does not run, in order, the lines %q; its bash:\n%s", c.phase, c.lines, script)
		}
	}
}

// deb and rpm are values of PackageS3Uri for the tests.
var (
	deb = map[string]string{"PackageS3Uri": "s3://my-bucket/imdsguard/imdsguard_1.2.3_amd64.deb"}
	rpm = map[string]string{"PackageS3Uri": "s3://my-bucket/imdsguard/imdsguard-1.2.3-1.x86_64.rpm"}
)

// phaseScript is the bash of every ExecuteBash step of phase, in order.
func phaseScript(t *testing.T, d *Document, phase string, values map[string]string) string {
	t.Helper()
	var b strings.Builder
	for _, p := range d.Phases {
		for _, s := range p.Steps {
			if p.Name != phase || s.Action != "ExecuteBash" {
				continue
			}
			script, err := d.Script(p.Name, s.Name, values)
			if err != nil {
				t.Fatal(err)
			}
			b.WriteString(script)
		}
	}
	return b.String()
}

func inOrder(script string, lines []string) bool {
	var have []string
	for l := range strings.Lines(script) {
		have = append(have, strings.TrimSpace(l))
	}
	at := 0
	for _, want := range lines {
		i := slices.Index(have[at:], want)
		if i < 0 {
			return false
		}
		at += i + 1
	}
	return true
}

// TestImageBuilderBash: every ExecuteBash step's commands, as AWSTOE runs
// them (one bash file) with the package parameter set to a .deb and to a
// .rpm, pass `bash -n` and shellcheck.
func TestImageBuilderBash(t *testing.T) {
	for _, tool := range []string{"bash", "shellcheck"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Skipf(t, "%s not found: apt-get install shellcheck (scripts/install-test-deps.sh does)", tool)
		}
	}
	d := readComponent(t)
	n := 0
	for _, p := range d.Phases {
		for _, s := range p.Steps {
			if s.Action != "ExecuteBash" {
				continue
			}
			for pkg, values := range map[string]map[string]string{"deb": deb, "rpm": rpm} {
				n++
				t.Run(p.Name+"."+s.Name+"/"+pkg, func(t *testing.T) {
					lint(t, d, p.Name, s.Name, values)
				})
			}
		}
	}
	if n != 2*5 {
		t.Errorf("%d ExecuteBash scripts checked, want the 5 steps' twice", n)
	}
}

func lint(t *testing.T, d *Document, phase, step string, values map[string]string) {
	script, err := d.Script(phase, step, values)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), step+".sh")
	if err := os.WriteFile(f, []byte("#!/bin/bash\n"+script), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"bash", "-n", f}, {"shellcheck", "-s", "bash", f}} {
		if r := testbed.RunCombined(time.Minute, nil, args[0], args[1:]...); r.Err != nil {
			t.Errorf("%s: %v\n%s", strings.Join(args, " "), r, script)
		}
	}
}
