package e2e

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/internal/netnstest"
	"github.com/imdsguard/imdsguard/tools/testbed"
)

// The instance's metadata options (the seed's
// modify-instance-metadata-options), each played by fakeimds in the imds
// namespace of a test host, and `imdsguard check`'s lines for them, with
// the daemon running as on an instance.

// How the IPv6 endpoint is played.
const (
	v6On      = "on"      // fakeimds on [fd00:ec2::254]:80 as on the IPv4 address
	v6Refused = "refused" // nothing listens there: connection refused
	v6Dropped = "dropped" // the address is gone from the imds namespace: packets to it are dropped, no answer at all
)

// optionsHost is a host whose IMDS is fakeimds started with args on the
// IPv4 address, and on the IPv6 one as v6 says, with imdsguard running.
func optionsHost(t *testing.T, v6 string, args ...string) (*testbed.Env, *testbed.Host, *testbed.Guard) {
	t.Helper()
	return optionsHostWith(t, v6, testbed.HostGuardConfig{}, args...)
}

// optionsHostWith is optionsHost with imdsguard configured as cfg says.
func optionsHostWith(t *testing.T, v6 string, cfg testbed.HostGuardConfig, args ...string) (*testbed.Env, *testbed.Host, *testbed.Guard) {
	t.Helper()
	e := testbed.New(t)
	e.RequireBins("fakeimds", "imdsguard")
	h := e.NewHost(testbed.HostOptions{FakeIMDS: true})
	for _, f := range []*testbed.FakeIMDS{h.Fake4, h.Fake6} {
		if err := f.Stop(); err != nil {
			t.Fatal(err)
		}
	}
	addrs := []string{testbed.IMDSAddr(4)}
	switch v6 {
	case v6On:
		addrs = append(addrs, testbed.IMDSAddr(6))
	case v6Dropped:
		netnstest.IP(t, h.IMDSNS, "-6", "addr", "del", testbed.IMDSv6+"/128", "dev", "lo")
	}
	for _, a := range addrs {
		p := testbed.StartProc(t, testbed.ProcSpec{Name: "fakeimds " + a, Path: e.Bin("fakeimds"), NS: h.IMDSNS,
			Args: append([]string{"-listen", a}, args...)})
		testbed.WaitListening(t, p, h.IMDSNS, a)
	}
	return e, h, h.StartGuard(cfg)
}

// check runs `imdsguard check` on h and wants its exit (ok), each of want
// and the whole within budget.
func checkLines(t *testing.T, e *testbed.Env, h *testbed.Host, g *testbed.Guard, ok bool, want ...string) string {
	t.Helper()
	start := time.Now()
	r := e.Run(guardCmd(e, h, g, "check"))
	took := time.Since(start)
	t.Logf("imdsguard check (%v):\n%s%s", took.Round(time.Millisecond), r.Stdout, r.Stderr)
	if (r.Err == nil) != ok {
		t.Errorf("check exit: %v, want success %v", r.Err, ok)
	}
	n := 0
	for _, l := range strings.Split(r.Stdout, "\n") {
		for _, v := range []string{"PASS  ", "FAIL  ", "WARN  ", "INFO  "} {
			if strings.HasPrefix(l, v) {
				n++
			}
		}
	}
	if n != 12 {
		t.Errorf("check printed %d results, want 12", n)
	}
	wantLines(t, "check", r.Stdout, want...)
	return r.Stdout
}

// c1Status is what a caller in c1 gets for url, through the redirect.
func c1Status(t *testing.T, e *testbed.Env, h *testbed.Host, url string, extra ...string) int {
	t.Helper()
	_, status := testbed.CurlStatus(e.Run(h.InC1(e.Curl(url, extra...))))
	return status
}

// directPUT stops imdsguard, removes its rules and sends c1's own token
// PUT straight to IMDS: routed through the host, which takes one off the
// answer's TTL. It returns the status (0: no answer within curl's 2 s).
func directPUT(t *testing.T, e *testbed.Env, h *testbed.Host, g *testbed.Guard) int {
	t.Helper()
	if err := g.Stop(); err != nil {
		t.Fatal(err)
	}
	if r := e.Run(h.Rules(g, "remove")); r.Err != nil {
		t.Fatalf("rules remove: %v", r)
	}
	return c1Status(t, e, h, testbed.IMDSURL(4)+"/latest/api/token", "-X", "PUT", "--max-time", "2",
		"-H", "X-aws-ec2-metadata-token-ttl-seconds: 60")
}

// TestCheckOptionsEnabled: the defaults of a new instance at tokens
// required: endpoint on, IPv6 on, tags off, hop limit 1. Every line
// passes; tags are reported off, and the default policy's rules that
// would give them are named.
func TestCheckOptionsEnabled(t *testing.T) {
	e, h, g := optionsHost(t, v6On, "-hop-limit", "1")
	checkLines(t, e, h, g, true,
		"PASS  IMDS's endpoint is enabled (http-endpoint)", "IMDS answered a token PUT: 200 in ",
		"PASS  IMDS's IPv6 endpoint answers as redirect.ipv6 expects", "IMDS answered a token PUT on [fd00:ec2::254]: answered 200",
		"INFO  tags in instance metadata (instance-metadata-tags)", "off: /latest/meta-data/tags/instance answers 404",
		"the policy allows tags to rule root, rule others: they get 404 until tags are on",
		"PASS  IMDS's token answers stay on this host (http-put-response-hop-limit 1)", "hop limit 1: ", "packets for their TTL (TcpExt TCPMinTTLDrop)",
		"enforcement is in effect")
	// The emulated hop limit does what IMDS's does: with the redirect
	// gone, c1's own token PUT gets no answer across the host.
	if s := directPUT(t, e, h, g); s != 0 {
		t.Errorf("c1's direct token PUT at hop limit 1: %d, want no answer", s)
	}
}

// TestCheckOptionsTagsHopLimit: tags on, hop limit 2: tags reported with
// their keys; the hop limit a WARN with its fix, the exit still 0.
func TestCheckOptionsTagsHopLimit(t *testing.T) {
	e, h, g := optionsHost(t, v6On, "-tags", "-hop-limit", "2")
	checkLines(t, e, h, g, true,
		"INFO  tags in instance metadata", "on: IMDS lists 2 tag keys (Environment, Name)", "the policy allows tags to rule root, rule others",
		"WARN  IMDS's token answers stay on this host", "hop limit 2 or more", "gets an IMDSv2 token of its own",
		"fix: aws ec2 modify-instance-metadata-options --instance-id i-1234567890abcdef0 --http-tokens required --http-put-response-hop-limit 1",
		"enforcement is in effect")
	// What the WARN says: a container past the redirect (here: the rules
	// removed) gets a token of its own from IMDS at hop limit 2.
	if s := directPUT(t, e, h, g); s != 200 {
		t.Errorf("c1's direct token PUT at hop limit 2: %d, want 200", s)
	}
}

// TestCheckOptionsEndpointDisabled: IMDS answers 403 to everything: the
// endpoint check fails with the fix and says what callers get, which is
// what a caller in c1 gets too.
func TestCheckOptionsEndpointDisabled(t *testing.T) {
	e, h, g := optionsHost(t, v6On, "-endpoint", "disabled")
	v1 := c1Status(t, e, h, testbed.IMDSURL(4)+"/latest/meta-data/instance-id")
	tok, put := testbed.CurlStatus(e.Run(h.InC1(e.Curl(testbed.IMDSURL(4)+"/latest/api/token", "-X", "PUT", "-H", "X-aws-ec2-metadata-token-ttl-seconds: 60"))))
	v2 := c1Status(t, e, h, testbed.IMDSURL(4)+"/latest/meta-data/instance-id", "-H", "X-aws-ec2-metadata-token: "+tok)
	t.Logf("a caller in c1 through imdsguard, IMDS's endpoint disabled: IMDSv1 GET %d, token PUT %d, IMDSv2 GET %d", v1, put, v2)
	if put != 200 || v2 == 200 {
		t.Errorf("c1 through imdsguard: token PUT %d (want imdsguard's 200), IMDSv2 GET %d (want a refusal)", put, v2)
	}
	out := checkLines(t, e, h, g, false,
		"FAIL  IMDS's endpoint is enabled (http-endpoint)", "a token PUT got 403 Forbidden", "callers of imdsguard get meanwhile: answered ",
		"fix: aws ec2 modify-instance-metadata-options --instance-id INSTANCE_ID --http-endpoint enabled",
		"FAIL  IMDS itself rejects IMDSv1", "IMDS answered 403: it refuses every request",
		"INFO  tags in instance metadata", "not asked: IMDS gave no token")
	if v1 == 200 || !strings.Contains(out, "callers of imdsguard get meanwhile: answered "+strconv.Itoa(v1)) {
		t.Errorf("c1 got %d for an IMDSv1 GET; check says otherwise or it was served", v1)
	}
}

// TestCheckOptionsEndpointSilent: IMDS accepts and never answers: the
// endpoint check fails within its bound, the whole check stays quick.
func TestCheckOptionsEndpointSilent(t *testing.T) {
	e, h, g := optionsHost(t, v6On, "-endpoint", "silent")
	start := time.Now()
	v1 := c1Status(t, e, h, testbed.IMDSURL(4)+"/latest/meta-data/instance-id")
	t.Logf("a caller in c1 through imdsguard, IMDS silent: IMDSv1 GET %d after %v", v1, time.Since(start).Round(time.Millisecond))
	if v1 == 200 {
		t.Errorf("c1's IMDSv1 GET served with IMDS silent")
	}
	checkLines(t, e, h, g, false,
		"FAIL  IMDS itself rejects IMDSv1", "IMDS did not answer an IMDSv1 GET within 500ms", "fix: see the endpoint check",
		"FAIL  IMDS's endpoint is enabled (http-endpoint)", "IMDS did not answer a token PUT (no answer within ",
		"callers of imdsguard get meanwhile: ", "--http-endpoint enabled",
		"INFO  IMDS's IPv6 endpoint answers as redirect.ipv6 expects", "not judged: IMDS answers on neither family",
		"callers of imdsguard get meanwhile: answered "+strconv.Itoa(v1))
}

// TestCheckOptionsIPv6Off: nothing listens on [fd00:ec2::254] while
// redirect.ipv6 is on: a WARN with both fixes; a caller in c1 is served
// over IPv6 all the same, by imdsguard from IMDS's IPv4 endpoint.
func TestCheckOptionsIPv6Off(t *testing.T) {
	e, h, g := optionsHost(t, v6Refused)
	checkLines(t, e, h, g, true,
		"WARN  IMDS's IPv6 endpoint answers as redirect.ipv6 expects (http-protocol-ipv6)",
		"IMDS does not answer on [fd00:ec2::254] (connection refused) while IPv4 answers",
		"fix: aws ec2 modify-instance-metadata-options --instance-id i-1234567890abcdef0 --http-protocol-ipv6 enabled; or set redirect.ipv6: false",
		"enforcement is in effect")
	if s := c1Status(t, e, h, testbed.IMDSURL(6)+"/latest/meta-data/instance-id"); s != 200 {
		t.Errorf("c1's IMDSv1 GET to [fd00:ec2::254] through imdsguard: %d, want 200 (served from IPv4)", s)
	}
}

// TestCheckOptionsIPv6NotRedirected: redirect.ipv6 is off while IMDS
// answers on [fd00:ec2::254]: IPv6 callers pass imdsguard by, and check
// fails, with both ways out.
func TestCheckOptionsIPv6NotRedirected(t *testing.T) {
	e, h, g := optionsHostWith(t, v6On, testbed.HostGuardConfig{NoIPv6: true})
	checkLines(t, e, h, g, false,
		"FAIL  IMDS's IPv6 endpoint answers as redirect.ipv6 expects (http-protocol-ipv6)",
		"redirect.ipv6 is off, but IMDS answers on [fd00:ec2::254] (answered 200",
		"IPv6 callers reach IMDS directly, past imdsguard",
		"fix: set redirect.ipv6: true (and restart imdsguard); or aws ec2 modify-instance-metadata-options --instance-id i-1234567890abcdef0 --http-protocol-ipv6 disabled")
}

// TestCheckOptionsIPv6Dropped: [fd00:ec2::254] does not answer at all
// (nothing on the path has the address): the same WARN, within the
// probe's bound.
func TestCheckOptionsIPv6Dropped(t *testing.T) {
	e, h, g := optionsHost(t, v6Dropped)
	checkLines(t, e, h, g, true,
		"WARN  IMDS's IPv6 endpoint answers as redirect.ipv6 expects (http-protocol-ipv6)",
		"IMDS does not answer on [fd00:ec2::254] (no answer within ", "ms) while IPv4 answers",
		"--http-protocol-ipv6 enabled", "enforcement is in effect")
}

// TestCheckOptionsTokensOptional: AEMM with tokens optional (and, as AEMM
// sends every answer with the system's TTL, a hop limit above 1): the
// hop limit WARN says that containers past the redirect need no token.
func TestCheckOptionsTokensOptional(t *testing.T) {
	e, h, g := transparent(t, testbed.HostOptions{AllowIMDSv1: true}, testbed.HostGuardConfig{})
	checkLines(t, e, h, g, false, "FAIL  IMDS itself rejects IMDSv1",
		"WARN  IMDS's token answers stay on this host", "with tokens optional", "reads IMDS with IMDSv1 (no hop limit applies to a GET)",
		"--http-tokens required --http-put-response-hop-limit 1")
}
