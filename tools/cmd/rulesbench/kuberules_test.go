package main

import (
	"strings"
	"testing"
)

// The generated table holds about the asked number of rules, ten per
// service, plus the two hooks; each service chain is declared once.
func TestKubeRulesCounts(t *testing.T) {
	for _, c := range []struct{ extra, rules, chains int }{
		{0, 2, 1},
		{25, 2 + 20, 1 + 2},
		{20000, 2 + 20000, 1 + 2000},
	} {
		text := kubeRules(c.extra)
		rules, chains := strings.Count(text, "\n-A "), strings.Count(text, "\n:")
		if rules != c.rules || chains != c.chains {
			t.Errorf("kubeRules(%d): %d rules, %d chains; want %d, %d", c.extra, rules, chains, c.rules, c.chains)
		}
		if !strings.HasPrefix(text, "*nat\n") || !strings.HasSuffix(text, "COMMIT\n") {
			t.Errorf("kubeRules(%d) is not one nat table", c.extra)
		}
	}
}

// A service's chain spreads traffic the way kube-proxy does: 1/9, 1/8, ...
// 1/2, then the last endpoint without a statistic match.
func TestKubeRulesService(t *testing.T) {
	var lines []string
	for _, l := range strings.Split(kubeRules(10), "\n") {
		if strings.HasPrefix(l, "-A "+svcChain(0)) {
			lines = append(lines, l)
		}
	}
	if len(lines) != endpointsPerSvc {
		t.Fatalf("%d rules in %s, want %d", len(lines), svcChain(0), endpointsPerSvc)
	}
	if !strings.Contains(lines[0], "--probability 0.11111111111") || strings.Contains(lines[8], "statistic") {
		t.Errorf("probabilities:\n%s", strings.Join(lines, "\n"))
	}
	if clusterIP(0) != "10.96.0.1" || clusterIP(65535) != "10.97.0.0" || endpointIP(0, 0) != "10.128.0.1" {
		t.Errorf("addresses: %s %s %s", clusterIP(0), clusterIP(65535), endpointIP(0, 0))
	}
}
