package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/imdsguard/imdsguard/internal/config"
	"github.com/imdsguard/imdsguard/policy"
)

// minYAMLBlocks is how many ```yaml blocks README.md and docs/*.md held
// together when the examples moved from the README to docs/ pages: fewer
// means examples were lost, or the test no longer finds them.
const minYAMLBlocks = 9

// Every YAML example in README.md and in the docs/ pages is a valid
// configuration (a fragment gets the version line it leaves out), so the
// documentation cannot drift from what the daemon accepts.
func TestReadmeExamples(t *testing.T) {
	files, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append([]string{"../../README.md"}, files...)
	total := 0
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(file, "../../")
		blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(b), -1)
		total += len(blocks)
		for i, m := range blocks {
			checkYAMLExample(t, fmt.Sprintf("%s yaml block %d", name, i+1), m[1])
		}
	}
	if total < minYAMLBlocks {
		t.Errorf("found %d yaml blocks in README.md and docs/*.md, want at least %d (the full file and the policies)", total, minYAMLBlocks)
	}
}

// checkYAMLExample reads src as a configuration file called name and
// compiles its policy.
func checkYAMLExample(t *testing.T, name, src string) {
	t.Helper()
	if !strings.HasPrefix(src, "version:") {
		src = "version: 1\n" + src
	}
	cfg, err := config.Read(strings.NewReader(src), name)
	if err != nil {
		t.Errorf("%v\n%s", err, src)
		return
	}
	if _, _, err := policy.Compile(cfg.Policy, nil); err != nil {
		t.Errorf("%s: policy: %v", name, err)
	}
}
