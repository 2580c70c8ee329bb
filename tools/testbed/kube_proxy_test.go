package testbed

import (
	"os"
	"testing"
	"time"
)

func TestParseMetrics(t *testing.T) {
	m := ParseMetrics(`# HELP kubeproxy_sync_proxy_rules_duration_seconds SyncProxyRules latency
# TYPE kubeproxy_sync_proxy_rules_duration_seconds histogram
kubeproxy_sync_proxy_rules_duration_seconds_bucket{le="0.001"} 0
kubeproxy_sync_proxy_rules_duration_seconds_count 86
kubeproxy_sync_proxy_rules_iptables_total{table="nat"} 20010
imdsguard_rule_restores_total 3
not a sample
`)
	want := map[string]float64{
		`kubeproxy_sync_proxy_rules_duration_seconds_bucket{le="0.001"}`: 0,
		"kubeproxy_sync_proxy_rules_duration_seconds_count":              86,
		`kubeproxy_sync_proxy_rules_iptables_total{table="nat"}`:         20010,
		"imdsguard_rule_restores_total":                                  3,
	}
	if len(m) != len(want) {
		t.Errorf("parsed %v; want %v", m, want)
	}
	for k, v := range want {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("%s = %v (%v); want %v", k, got, ok, v)
		}
	}
}

func TestStatTicks(t *testing.T) {
	// utime 1000, stime 234, cutime 5, cstime 6 (fields 14 to 17); a
	// name with a space and a parenthesis.
	line := "42 (a b) c) S 1 42 42 0 -1 4194560 100 0 0 0 1000 234 5 6 20 0 8 0 100 0 0"
	n, err := statTicks(line)
	if err != nil || n != 1245 {
		t.Errorf("statTicks = %d, %v; want 1245", n, err)
	}
	if _, err := statTicks("42 (x S 1"); err == nil {
		t.Error("statTicks of a line without ')' did not fail")
	}
}

// TestProcCPUSelf: this process's count grows while it spins.
func TestProcCPUSelf(t *testing.T) {
	before, err := ProcCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); {
		now, err := ProcCPU(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if now > before {
			return
		}
	}
	t.Errorf("ProcCPU stayed at %v through 10 s of spinning", before)
}

func TestKubeProxyChain(t *testing.T) {
	save := `*nat
:PREROUTING ACCEPT [0:0]
:IMDSGUARD-PRE - [0:0]
:KUBE-KUBELET-CANARY - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-ABC123 - [0:0]
:KUBE-PROXY-CANARY - [0:0]
-A PREROUTING -j IMDSGUARD-PRE
COMMIT
`
	var got []string
	for _, m := range kubeProxyChain.FindAllStringSubmatch(save, -1) {
		got = append(got, m[1])
	}
	want := []string{"KUBE-SERVICES", "KUBE-SVC-ABC123", "KUBE-PROXY-CANARY"}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("kube-proxy's chains %v; want %v (not the kubelet's, not imdsguard's)", got, want)
	}
}
