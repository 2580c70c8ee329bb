package e2e

import (
	"strings"
	"testing"

	"github.com/imdsguard/imdsguard/tools/fakeimds"
	"github.com/imdsguard/imdsguard/tools/testbed"
)

// TestFakeIMDSBehindReverseProxy: real clients, directly and through a
// plain reverse proxy, to the fake upstream, whose counters and record show
// what arrived (including the X-Forwarded-For that a plain
// httputil.ReverseProxy adds, which imdsguard must never send).
func TestFakeIMDSBehindReverseProxy(t *testing.T) {
	e := testbed.New(t)
	e.RequireBins("fakeimds", "imdsclient")
	f := e.StartFakeIMDS(true)
	proxyURL := e.StartReverseProxy(f.URL)
	runClients(t, e, []clientCase{
		{"sdk v2 direct", e.IMDSClient("v2", f.URL, "-no-fallback", "-get", "instance-id"), true, fakeimds.InstanceID},
		{"sdk v2 via reverse proxy", e.IMDSClient("v2", proxyURL, "-no-fallback", "-get", "placement/availability-zone"), true, fakeimds.AvailabilityZone},
		{"sdk v2 creds via reverse proxy", e.IMDSClient("v2", proxyURL, "-creds"), true, fakeimds.AccessKeyID},
		{"sdk v1 via reverse proxy fails 401", e.IMDSClient("v1", proxyURL, "-get", "instance-id"), false, "HTTP 401"},
		{"botocore via reverse proxy", e.Botocore(proxyURL), true, fakeimds.AccessKeyID},
	})
	checkFakeStats(t, f)
	checkForwardedRecorded(t, f)
	if err := f.Stop(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(f.Stdout(), `"token_puts":`) {
		t.Errorf("fakeimds printed no counts on SIGTERM: %q", f.Stdout())
	}
}

func checkFakeStats(t *testing.T, f *testbed.FakeIMDS) {
	t.Helper()
	s, err := f.Stats()
	if err != nil {
		t.Fatal(err)
	}
	// v2 get x2, creds (1 PUT), botocore (1 PUT); v1 adds one 401 GET.
	if s.TokenPuts < 4 || s.Gets < 6 || s.Unauthorized < 1 {
		t.Errorf("stats %+v: want token_puts>=4, gets>=6, unauthorized>=1", s)
	}
}

func checkForwardedRecorded(t *testing.T, f *testbed.FakeIMDS) {
	t.Helper()
	recs, err := f.Records()
	if err != nil {
		t.Fatal(err)
	}
	var direct, relayed int
	for _, r := range recs {
		if _, ok := r.Header["X-Forwarded-For"]; ok {
			relayed++
		} else {
			direct++
		}
	}
	if direct == 0 || relayed == 0 {
		t.Errorf("records: %d without X-Forwarded-For, %d with; want both (direct and via the reverse proxy)", direct, relayed)
	}
}

// TestRawAgainstFakeIMDS sends a target no client library would send as is
// and checks the record keeps it byte for byte.
func TestRawAgainstFakeIMDS(t *testing.T) {
	e := testbed.New(t)
	f := e.StartFakeIMDS(true)
	const target = "/latest/meta-data/placement/%2e%2e/iam/security-credentials/"
	r := testbed.Raw(t, f.Addr, "GET", target, []string{"X-Forwarded-For: "})
	if r.Status != 401 || r.Header.Get("Server") != "EC2ws" {
		t.Fatalf("%q Server=%q, want 401 from EC2ws", r.StatusLine, r.Header.Get("Server"))
	}
	recs, err := f.Records()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Target != target {
		t.Fatalf("records %+v, want one with target %q", recs, target)
	}
	if v, ok := recs[0].Header["X-Forwarded-For"]; !ok || len(v) != 1 || v[0] != "" {
		t.Errorf("empty X-Forwarded-For recorded as %q, %v", v, ok)
	}
}
