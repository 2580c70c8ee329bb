package main

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/imdsguard/imdsguard/internal/config"
	"github.com/imdsguard/imdsguard/policy"
)

// Every YAML example in the README is a valid configuration (a fragment
// gets the version line it leaves out), so the documentation cannot drift
// from what the daemon accepts.
func TestReadmeExamples(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(b), -1)
	if len(blocks) < 4 {
		t.Fatalf("found %d yaml blocks in README.md, want the full file and three policies", len(blocks))
	}
	for i, m := range blocks {
		src := m[1]
		if !strings.HasPrefix(src, "version:") {
			src = "version: 1\n" + src
		}
		cfg, err := config.Read(strings.NewReader(src), "README.md yaml block "+string(rune('1'+i)))
		if err != nil {
			t.Errorf("%v\n%s", err, src)
			continue
		}
		if _, _, err := policy.Compile(cfg.Policy, nil); err != nil {
			t.Errorf("block %d policy: %v", i+1, err)
		}
	}
}
