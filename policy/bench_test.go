package policy

import "testing"

// decideCases are typical requests under the example policy (exampleYAML).
var decideCases = []struct {
	name string
	r    Request
}{
	{"root-allow", Request{Caller: rootCaller, Path: "/meta-data/iam/security-credentials/baskinc-role"}},
	{"app-allow", Request{Caller: appCaller, Path: "/meta-data/placement/availability-zone", V1: true}},
	{"app-deny", Request{Caller: appCaller, Path: "/meta-data/iam/security-credentials/baskinc-role"}},
	{"group-deny-case", Request{Caller: legacyCaller, Path: "/Meta-Data/IAM/Security-Credentials/baskinc-role"}},
	{"container-allow", Request{Caller: container, Path: "/meta-data/placement/region"}},
	{"container-v1-reject", Request{Caller: container, Path: "/meta-data/instance-id", V1: true}},
	{"container-token", Request{Caller: container, Path: "/api/token", Token: true}},
	{"default-deny", Request{Caller: aliceCaller, Path: "/meta-data/instance-id"}},
}

func BenchmarkDecide(b *testing.B) {
	p := mustCompile(b, decodeConfig(b, exampleYAML), hostNames())
	for _, c := range decideCases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.Decide(c.r)
			}
		})
	}
}

// TestDecideAllocs: Decide allocates nothing when a rule applies (its
// reasons are built at Compile) and only the Reason when the default does.
func TestDecideAllocs(t *testing.T) {
	p := mustCompile(t, decodeConfig(t, exampleYAML), hostNames())
	for _, c := range decideCases {
		want := 0.0
		if c.name == "default-deny" {
			want = 1
		}
		if got := testing.AllocsPerRun(100, func() { p.Decide(c.r) }); got != want {
			t.Errorf("%s: %v allocs per Decide, want %v", c.name, got, want)
		}
	}
}

// workloadCases are requests of container callers under workloadYAML: the
// selectors decide without allocating too.
var workloadCases = []struct {
	name string
	r    Request
}{
	{"container-selector", Request{Caller: inContainer(webPayments), Path: "/meta-data/iam/security-credentials/r"}},
	{"pod-selector", Request{Caller: inContainer(billing), Path: "/meta-data/iam/security-credentials/r"}},
	{"host-network-pod", Request{Caller: hostNet(1000, awsNode), Path: "/meta-data/iam/info"}},
	{"selectors-miss", Request{Caller: inContainer(billingDev), Path: "/meta-data/placement/region"}},
}

func BenchmarkDecideWorkload(b *testing.B) {
	p := mustCompile(b, decodeConfig(b, workloadYAML), hostNames())
	for _, c := range workloadCases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.Decide(c.r)
			}
		})
	}
}

func TestDecideWorkloadAllocs(t *testing.T) {
	p := mustCompile(t, decodeConfig(t, workloadYAML), hostNames())
	for _, c := range workloadCases {
		if d := p.Decide(c.r); d.Rule == "" {
			t.Fatalf("%s: no rule applied: %s", c.name, d.Reason)
		}
		if got := testing.AllocsPerRun(100, func() { p.Decide(c.r) }); got != 0 {
			t.Errorf("%s: %v allocs per Decide, want 0", c.name, got)
		}
	}
}
