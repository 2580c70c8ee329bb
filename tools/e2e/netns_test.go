package e2e

import (
	"testing"

	"github.com/imdsguard/imdsguard/internal/netnstest"
	"github.com/imdsguard/imdsguard/tools/testbed"
)

// IMDS addresses; they exist only on lo of a namespace the test made.
const (
	imdsIPv4 = "169.254.169.254"
	imdsIPv6 = "fd00:ec2::254"
)

// imdsNamespace makes a namespace that holds both IMDS addresses on lo and
// runs AEMM (tokens required) on each, port 80, as on an instance set to
// http-tokens required.
func imdsNamespace(t *testing.T, e *testbed.Env) string {
	t.Helper()
	ns := netnstest.New(t, "imds")
	netnstest.IP(t, ns, "addr", "add", imdsIPv4+"/32", "dev", "lo")
	netnstest.IP(t, ns, "-6", "addr", "add", imdsIPv6+"/128", "dev", "lo", "nodad")
	e.StartAEMM(testbed.AEMMOptions{Host: imdsIPv4, Port: 80, NS: ns})
	e.StartAEMM(testbed.AEMMOptions{Host: imdsIPv6, Port: 80, NS: ns})
	return ns
}

// TestNamespaceDefaultEndpoints runs the clients with their built-in
// endpoints inside a namespace where 169.254.169.254 and fd00:ec2::254 are
// AEMM: the layout the transparent-mode tests build on.
func TestNamespaceDefaultEndpoints(t *testing.T) {
	netnstest.RequireRoot(t)
	e := testbed.New(t)
	e.RequireBins("aemm", "imdsclient")
	ns := imdsNamespace(t, e)
	in := func(c testbed.Cmd) testbed.Cmd { c.NS = ns; return c }
	runClients(t, e, []clientCase{
		{"sdk v1 default fails 401", in(e.IMDSClient("v1", "", "-get", "instance-id")), false, "HTTP 401"},
		{"boto default fails", in(e.Boto("")), false, "no instance metadata"},
		{"sdk v2 default", in(e.IMDSClient("v2", "", "-no-fallback", "-get", "instance-id")), true, testbed.AEMMInstanceID},
		{"sdk v2 IPv6", in(e.IMDSClient("v2", "http://["+imdsIPv6+"]", "-creds")), true, testbed.AEMMAccessKeyID},
		{"botocore default", in(e.Botocore("")), true, testbed.AEMMAccessKeyID},
		{"aws cli default", in(e.AWSCLIExport("")), true, "AWS_ACCESS_KEY_ID=" + testbed.AEMMAccessKeyID},
	})
	for _, addr := range []string{imdsIPv4 + ":80", "[" + imdsIPv6 + "]:80"} {
		r, err := testbed.RawRequestIn(ns, addr, "GET", "/latest/meta-data/instance-id", nil)
		if err != nil || r.Status != 401 {
			t.Errorf("raw GET %s in %s: %v %+v, want 401", addr, ns, err, r)
		}
	}
}
