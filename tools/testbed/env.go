package testbed

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/imdsguard/imdsguard/internal/testenv"
)

// BuildHint is how to get the binaries the harness runs.
const BuildHint = "run make test (or scripts/build-tools.sh and go build -o bin/imdsguard ./cmd/imdsguard)"

// Env is one test's bench: the repository, a private temporary directory
// (HOME of the children, config files, keys) and helpers that start and
// stop processes tied to the test.
type Env struct {
	T    TB
	Root string // repository root
	Dir  string // removed after the test, once the children are stopped
}

// New returns an Env for t; it fails t when the repository cannot be found.
func New(t TB) *Env {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return &Env{T: t, Root: root, Dir: t.TempDir()}
}

// Bin returns the path of bin/name in the repository.
func (e *Env) Bin(name string) string {
	return filepath.Join(e.Root, "bin", name)
}

// RequireBins skips the test, saying how to build them, when any of the
// named binaries in bin/ is missing.
func (e *Env) RequireBins(names ...string) {
	e.T.Helper()
	var missing []string
	for _, n := range names {
		if _, err := os.Stat(e.Bin(n)); err != nil {
			missing = append(missing, "bin/"+n)
		}
	}
	if len(missing) > 0 {
		testenv.Skipf(e.T, "missing %s: %s", strings.Join(missing, ", "), BuildHint)
	}
}

// Path returns name inside the Env's temporary directory.
func (e *Env) Path(name string) string {
	return filepath.Join(e.Dir, name)
}

// WriteFile writes data to name in the temporary directory and returns its
// path.
func (e *Env) WriteFile(name, data string) string {
	e.T.Helper()
	p := e.Path(name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		e.T.Fatalf("write %s: %v", p, err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		e.T.Fatalf("write %s: %v", p, err)
	}
	return p
}
