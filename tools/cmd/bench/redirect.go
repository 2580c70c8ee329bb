package main

import (
	"github.com/imdsguard/imdsguard/tools/testbed"
)

// The redirect part's targets (-redirect).
const (
	idRouted     = "f" // a container's reads routed to IMDS, no imdsguard
	idRedirected = "g" // the same reads redirected to imdsguard by its rules
)

// redirectConcs are the redirect part's concurrencies: the redirect costs
// per request; more connections measure the daemon, which the main tables
// do.
func redirectConcs() []int { return []int{1, 16} }

// redirectBed is what -redirect measures: two testbed.Hosts (namespaces
// imds, host and a container c1 each, fakeimds on 169.254.169.254 in
// imds). In one, imdsguard runs in host with its nat rules and no cache,
// and c1's reads are redirected to it; in the other nothing runs in host
// and c1's reads are routed to IMDS. wrk runs in c1 of each.
type redirectBed struct {
	targets []*target
	routed  *testbed.FakeIMDS
	behind  *testbed.FakeIMDS // the guarded host's IMDS
	// routedPuts is the routed fakeimds's PUT count after wrk's token.
	routedPuts int64
}

func newRedirectBed(t testbed.TB, e *testbed.Env, bin, path string) *redirectBed {
	t.Helper()
	plain := e.NewHost(testbed.HostOptions{FakeIMDS: true})
	guarded := e.NewHost(testbed.HostOptions{FakeIMDS: true})
	g := guarded.StartGuardWith(testbed.HostGuardConfig{NoIPv6: true, AuditSummary: "1m",
		Extra: "cache: {enabled: false}"}, testbed.GuardOptions{Bin: bin})
	rb := &redirectBed{routed: plain.Fake4, behind: guarded.Fake4}
	routed := &target{ID: idRouted, Name: "container, routed to IMDS", Kind: kindDirect,
		Host: testbed.IMDSv4, Port: 80, ClientNS: plain.C1NS, Proc: plain.Fake4.Proc, Upstream: plain.Fake4}
	redirected := &target{ID: idRedirected, Name: "container, redirected to imdsguard", Kind: kindGuard, Build: "A",
		Host: testbed.IMDSv4, Port: 80, ClientNS: guarded.C1NS, Proc: g.Proc, Upstream: guarded.Fake4}
	for _, tg := range []*target{routed, redirected} {
		tg.Header = "X-aws-ec2-metadata-token: " + putToken(t, tg.ClientNS, tg.Addr(), tg.Label())
	}
	rb.routedPuts = readCounts(t, "fakeimds of the routed host", plain.Fake4, 0, 0).Puts
	rb.targets = []*target{routed, redirected}
	preflight(t, rb.targets, path)
	return rb
}

// upstream reads both fakeimds's counts for the checks.
func (rb *redirectBed) upstream(t testbed.TB) []upstreamCounts {
	t.Helper()
	return []upstreamCounts{
		readCounts(t, "fakeimds of the routed host", rb.routed, rb.routedPuts, 0),
		readCounts(t, "fakeimds behind the redirect", rb.behind, 0, 1),
	}
}
