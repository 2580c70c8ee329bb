package metrics

import (
	"strings"
	"testing"

	"github.com/imdsguard/imdsguard/internal/redirect"
)

func TestRulesHealth(t *testing.T) {
	m := New(Sources{Rules: func() []redirect.Health {
		return []redirect.Health{
			{Family: "ipv4", InPlace: true, FenceRejects: 7, FenceKnown: true},
			{Family: "ipv6", InPlace: false}, // fence unreadable: no sample
		}
	}})
	out := scrape(t, m)
	for _, want := range []string{
		`imdsguard_rules_in_place{family="ipv4"} 1`,
		`imdsguard_rules_in_place{family="ipv6"} 0`,
		`imdsguard_fence_rejects_total{family="ipv4"} 7`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("scrape lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, `imdsguard_fence_rejects_total{family="ipv6"}`) {
		t.Error("an unreadable fence counter was exported")
	}
	if strings.Contains(scrape(t, New(Sources{})), "imdsguard_rules_in_place") {
		t.Error("rules series without rules")
	}
}
