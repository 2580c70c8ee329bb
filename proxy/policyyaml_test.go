package proxy

import (
	"os"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/imdsguard/imdsguard/policy"
)

func parsePolicyYAML(t *testing.T, yml string) policy.Config {
	t.Helper()
	var c policy.Config
	if err := yaml.UnmarshalWithOptions([]byte(yml), &c, yaml.Strict()); err != nil {
		t.Fatalf("policy yaml: %v", err)
	}
	return c
}

// examplePolicy is package policy's example policy, with a rule for each
// kind of caller: one file that both packages' tests read.
func examplePolicy(t *testing.T) policy.Config {
	t.Helper()
	doc, err := os.ReadFile("../policy/testdata/example-policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Policy policy.Config `yaml:"policy"`
	}
	if err := yaml.UnmarshalWithOptions(doc, &file, yaml.Strict()); err != nil {
		t.Fatalf("example policy: %v", err)
	}
	return file.Policy
}
