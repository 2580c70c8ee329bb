package e2e

import (
	"testing"

	"github.com/imdsguard/imdsguard/tools/testbed"
)

// TestClientsDirectAgainstAEMM shows the problem imdsguard solves, with no
// imdsguard involved: against an IMDS that requires tokens, the IMDSv2
// clients work and the legacy IMDSv1-only ones fail.
func TestClientsDirectAgainstAEMM(t *testing.T) {
	e := testbed.New(t)
	e.RequireBins("aemm", "imdsclient")
	a := e.StartAEMM(testbed.AEMMOptions{})
	runClients(t, e, []clientCase{
		{"sdk v1 get fails 401", e.IMDSClient("v1", a.URL, "-get", "instance-id"), false, "HTTP 401"},
		{"sdk v1 creds fail 401", e.IMDSClient("v1", a.URL, "-creds"), false, "HTTP 401"},
		{"boto fails", e.Boto(a.URL), false, "no instance metadata"},
		{"sdk v2 get", e.IMDSClient("v2", a.URL, "-get", "instance-id"), true, testbed.AEMMInstanceID},
		{"sdk v2 get, no v1 fallback", e.IMDSClient("v2", a.URL, "-no-fallback", "-get", "instance-id"), true, testbed.AEMMInstanceID},
		{"sdk v2 creds", e.IMDSClient("v2", a.URL, "-creds"), true, testbed.AEMMAccessKeyID},
		{"botocore creds", e.Botocore(a.URL), true, testbed.AEMMAccessKeyID},
		{"aws cli creds", e.AWSCLIExport(a.URL), true, "AWS_ACCESS_KEY_ID=" + testbed.AEMMAccessKeyID},
	})
}

// TestRawAgainstAEMM checks the raw-socket helper on AEMM's token flow.
func TestRawAgainstAEMM(t *testing.T) {
	e := testbed.New(t)
	a := e.StartAEMM(testbed.AEMMOptions{})
	r := testbed.Raw(t, a.Addr, "GET", "/latest/meta-data/instance-id", nil)
	if r.Status != 401 {
		t.Fatalf("GET without token: %q, want 401", r.StatusLine)
	}
	r = testbed.Raw(t, a.Addr, "PUT", "/latest/api/token", []string{"X-aws-ec2-metadata-token-ttl-seconds: 21600"})
	if r.Status != 200 || r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") != "21600" {
		t.Fatalf("token PUT: %q %v", r.StatusLine, r.Header)
	}
	tok := string(r.Body)
	r = testbed.Raw(t, a.Addr, "GET", "/latest/meta-data/instance-id", []string{"X-aws-ec2-metadata-token: " + tok})
	if r.Status != 200 || string(r.Body) != testbed.AEMMInstanceID {
		t.Fatalf("GET with token: %q %q", r.StatusLine, r.Body)
	}
	r = testbed.Raw(t, a.Addr, "HEAD", "/latest/meta-data/instance-id", []string{"X-aws-ec2-metadata-token: " + tok})
	if r.Status != 200 || len(r.Body) != 0 {
		t.Fatalf("HEAD with token: %q %q", r.StatusLine, r.Body)
	}
}
