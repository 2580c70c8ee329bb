package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/tools/testbed"
)

// tokenPUT asks for a token from ns over family v, as a client would.
func tokenPUT(ns string, v int) (*testbed.RawResponse, error) {
	return testbed.RawRequestIn(ns, testbed.IMDSAddr(v), "PUT", "/latest/api/token",
		[]string{"X-aws-ec2-metadata-token-ttl-seconds: 60"})
}

// ttlCounters count, in c1, the packets from port 80 (answers of the
// metadata address) that arrive with TTL / hop limit 1, and all of them.
const ttlCounters = `set -e
iptables -A INPUT -p tcp --sport 80 -m ttl --ttl-eq 1 -m comment --comment e2e-ttl1
iptables -A INPUT -p tcp --sport 80 -m comment --comment e2e-any
ip6tables -A INPUT -p tcp --sport 80 -m hl --hl-eq 1 -m comment --comment e2e-ttl1
ip6tables -A INPUT -p tcp --sport 80 -m comment --comment e2e-any`

// filterCounter counts the packets of the filter INPUT rule commented
// comment in ns, for family "ipv4" or "ipv6".
func filterCounter(t *testing.T, h *testbed.Host, ns, family, comment string) int {
	t.Helper()
	tool := "iptables"
	if family == "ipv6" {
		tool = "ip6tables"
	}
	return ruleCounter(t, h, ns, tool+" -S INPUT -v", comment)
}

// TestTransparentHopLimit: tokens.hop_limit.container decides whether a
// container gets a token. With 1, a token PUT from c1 gets no answer at all
// (the client times out; the audit says "drop"), while a v1 GET from c1 is
// still served and the host gets tokens. With 2, c1's PUT is answered, and
// the answer's packets arrive in c1 with TTL (hop limit) 1: 2 minus the
// host's hop, which imdsguard's own answer does not cross.
func TestTransparentHopLimit(t *testing.T) {
	e := testbed.New(t)
	e.RequireBins("aemm", "imdsguard", "imdsclient")
	h := e.NewHost(testbed.HostOptions{})
	h.Shell(h.C1NS, ttlCounters)

	t.Run("container 1", func(t *testing.T) {
		g := h.StartGuard(testbed.HostGuardConfig{HopLimitContainer: 1})
		defer stopGuard(t, g)
		for _, v := range []int{4, 6} {
			n := len(audits(g))
			start := time.Now()
			r, err := tokenPUT(h.C1NS, v)
			took := time.Since(start)
			if err == nil || !isTimeout(err) {
				t.Errorf("v%d: token PUT from c1 with hop limit 1: %+v, %v; want no answer (timeout)", v, r, err)
			}
			t.Logf("v%d: token PUT from c1: no answer, client gave up after %v (%v)", v, took.Round(time.Millisecond), err)
			testbed.WaitFor(t, "the drop is audited", func() bool {
				evs := since(g, n)
				return len(evs) > 0 && evs[len(evs)-1].Decision == "drop"
			})
			t.Logf("audit: %v", since(g, n)[0])
			if !servedByGuard(h.C1NS, v) {
				t.Errorf("v%d: v1 GET from c1 not served", v)
			}
			if r, err := tokenPUT(h.HostNS, v); err != nil || r.Status != 200 || len(r.Body) == 0 {
				t.Errorf("v%d: host token PUT: %+v %v", v, r, err)
			}
		}
		// A real IMDSv2 client in the container gives up on tokens after
		// its attempts and, with its v1 fallback on, still gets through: as
		// against IMDS itself with hop limit 1.
		n := len(audits(g))
		start := time.Now()
		r := e.Run(h.InC1(e.IMDSClient("v2", "", "-timeout", "15s", "-get", "instance-id")))
		checkClient(t, r, true, testbed.AEMMInstanceID)
		drops := 0
		for _, ev := range since(g, n) {
			if ev.Decision == "drop" {
				drops++
			}
		}
		t.Logf("sdk v2 with fallback in c1: %d token PUTs unanswered, then IMDSv1: instance id after %v",
			drops, time.Since(start).Round(time.Millisecond))
		r = e.Run(h.InC1(e.IMDSClient("v2", "", "-no-fallback", "-timeout", "2s", "-get", "instance-id")))
		if r.Err == nil {
			t.Errorf("sdk v2 without fallback in c1 got a token with hop limit 1: %v", r)
		}
	})

	t.Run("container 2", func(t *testing.T) {
		g := h.StartGuard(testbed.HostGuardConfig{HopLimitContainer: 2})
		defer stopGuard(t, g)
		for _, v := range []int{4, 6} {
			fam := map[int]string{4: "ipv4", 6: "ipv6"}[v]
			ttl1 := filterCounter(t, h, h.C1NS, fam, "e2e-ttl1")
			r, err := tokenPUT(h.C1NS, v)
			if err != nil || r.Status != 200 || len(r.Body) == 0 {
				t.Fatalf("v%d: token PUT from c1 with hop limit 2: %+v %v", v, r, err)
			}
			got := filterCounter(t, h, h.C1NS, fam, "e2e-ttl1") - ttl1
			t.Logf("v%d: token PUT from c1 answered; %d packets of the answer arrived with TTL/hop limit 1", v, got)
			if got == 0 {
				t.Errorf("v%d: no packet of the token answer arrived in c1 with TTL 1", v)
			}
			// A plain GET's answer carries the default TTL.
			ttl1 = filterCounter(t, h, h.C1NS, fam, "e2e-ttl1")
			any := filterCounter(t, h, h.C1NS, fam, "e2e-any")
			if !servedByGuard(h.C1NS, v) {
				t.Fatalf("v%d: v1 GET from c1 not served", v)
			}
			if d, a := filterCounter(t, h, h.C1NS, fam, "e2e-ttl1")-ttl1, filterCounter(t, h, h.C1NS, fam, "e2e-any")-any; d != 0 || a == 0 {
				t.Errorf("v%d: GET answer: %d of %d packets with TTL 1, want none", v, d, a)
			}
			if r, err := tokenPUT(h.HostNS, v); err != nil || r.Status != 200 {
				t.Errorf("v%d: host token PUT: %+v %v", v, r, err)
			}
		}
		r := e.Run(h.InC1(e.IMDSClient("v2", "", "-no-fallback", "-get", "instance-id")))
		checkClient(t, r, true, testbed.AEMMInstanceID)
	})
}

// stopGuard stops g (SIGTERM); its rules stay for the next daemon.
func stopGuard(t *testing.T, g *testbed.Guard) {
	t.Helper()
	if err := g.Stop(); err != nil {
		t.Errorf("stop imdsguard: %v", err)
	}
}

// TestTransparentProxyPortShielded: the proxy port answers nothing that
// was not redirected to it. Connections aimed straight at it from the imds
// side (192.0.2.1, 2001:db8:1::1), from c1 (its gateway addresses and the
// landing addresses) and from c2 get no answer at all (dropped), and leave
// no audit event; meanwhile redirected metadata traffic from the same c1 is
// served. container_interfaces is narrowed to veth+ here: c2 sits behind
// ext0, which it does not name, so its metadata traffic is routed, and
// IMDSGUARD-FWD refuses it (reset) before it reaches IMDS.
func TestTransparentProxyPortShielded(t *testing.T) {
	_, h, g := transparent(t, testbed.HostOptions{SecondContainer: true}, testbed.HostGuardConfig{ContainerInterfaces: []string{"veth+"}})
	const wait = 2 * time.Second
	n := len(audits(g))
	t.Run("direct", func(t *testing.T) { directToProxyPort(t, h, wait) })
	if evs := since(g, n); len(evs) != 0 {
		t.Errorf("audit events for direct connections: %v", evs)
	}
	for _, v := range []int{4, 6} {
		if !servedByGuard(h.C1NS, v) {
			t.Errorf("v%d: redirected GET from c1 not served", v)
		}
	}
	before := len(bothAEMM(h))
	for _, v := range []int{4, 6} {
		took := refusedIn(t, h.C2NS, testbed.IMDSAddr(v))
		t.Logf("c2 (behind %s) to %s: refused after %v (IMDSGUARD-FWD reset)", testbed.C2If, testbed.IMDSAddr(v), took)
	}
	for _, r := range bothAEMM(h)[before:] {
		t.Errorf("AEMM got a request while only c2 was calling: %+v", r)
	}
	for _, ev := range g.Events() {
		if ev["msg"] == "connection refused" {
			t.Logf("daemon log: %v", ev)
		}
	}
}

// directToProxyPort dials the proxy port on the host's addresses from the
// imds namespace and both containers, all at once, and wants no answer.
func directToProxyPort(t *testing.T, h *testbed.Host, wait time.Duration) {
	port := func(ip string) string { return testbed.HostPort(ip, testbed.GuardPort) }
	for _, c := range []struct{ ns, addr string }{
		{h.IMDSNS, port(testbed.HostUpV4)},
		{h.IMDSNS, port(testbed.HostUpV6)},
		{h.C1NS, port(testbed.C1GwV4)},
		{h.C1NS, port(testbed.C1GwV6)},
		{h.C1NS, port("169.254.254.169")}, // the landing addresses: on lo, reachable by route
		{h.C1NS, port("fd69:6d64:7367::254")},
		{h.C2NS, port(testbed.C2GwV4)},
		{h.C2NS, port(testbed.C2GwV6)},
	} {
		t.Run(c.ns[:strings.IndexByte(c.ns, '-')]+" to "+c.addr, func(t *testing.T) {
			t.Parallel()
			unansweredIn(t, c.ns, c.addr, wait)
		})
	}
}
