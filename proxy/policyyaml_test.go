package proxy

import (
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
