package testbed

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Module is the main module's path; its go.mod marks the repository root.
const Module = "github.com/imdsguard/imdsguard"

// RepoRoot walks up from the working directory to the directory whose go.mod
// declares Module; failing that, from the executable's directory (a program
// built into bin/, such as the demo, run from elsewhere).
func RepoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repo root: %w", err)
	}
	if dir, ok := rootAbove(wd); ok {
		return dir, nil
	}
	if exe, err := os.Executable(); err == nil {
		if dir, ok := rootAbove(filepath.Dir(exe)); ok {
			return dir, nil
		}
	}
	return "", errors.New("find repo root: no go.mod declaring " + Module + " above the working directory or the executable")
}

// rootAbove returns dir or its nearest parent that is the repository root.
func rootAbove(dir string) (string, bool) {
	for {
		if isRoot(dir) {
			return dir, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

func isRoot(dir string) bool {
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if mod, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
			return strings.Trim(strings.TrimSpace(mod), `"`) == Module
		}
	}
	return false
}
