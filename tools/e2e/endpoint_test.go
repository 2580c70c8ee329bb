package e2e

import (
	"testing"

	"github.com/imdsguard/imdsguard/tools/testbed"
)

// TestEndpointLegacyClients: IMDSv1-only clients, which fail against an
// IMDS that requires tokens, succeed through imdsguard (v1 upgraded to a v2
// session upstream).
func TestEndpointLegacyClients(t *testing.T) {
	e, a, g := endpointMode(t, "")
	runClients(t, e, []clientCase{
		{"sdk v1 direct fails", e.IMDSClient("v1", a.URL, "-get", "instance-id"), false, "HTTP 401"},
		{"boto direct fails", e.Boto(a.URL), false, "no instance metadata"},
		{"sdk v1 via imdsguard", e.IMDSClient("v1", g.URL, "-get", "instance-id"), true, testbed.AEMMInstanceID},
		{"sdk v1 creds via imdsguard", e.IMDSClient("v1", g.URL, "-creds"), true, testbed.AEMMAccessKeyID},
		{"boto via imdsguard", e.Boto(g.URL), true, testbed.AEMMInstanceID},
	})
}

// TestEndpointModernClients: IMDSv2 clients work through imdsguard (tokens
// minted by imdsguard itself).
func TestEndpointModernClients(t *testing.T) {
	e, _, g := endpointMode(t, "")
	runClients(t, e, []clientCase{
		{"sdk v2 get", e.IMDSClient("v2", g.URL, "-no-fallback", "-get", "instance-id"), true, testbed.AEMMInstanceID},
		{"sdk v2 listing", e.IMDSClient("v2", g.URL, "-no-fallback", "-get", "iam/security-credentials/"), true, testbed.AEMMRole},
		{"sdk v2 creds", e.IMDSClient("v2", g.URL, "-no-fallback", "-creds"), true, testbed.AEMMAccessKeyID},
		{"aws cli creds", e.AWSCLIExport(g.URL), true, "AWS_ACCESS_KEY_ID=" + testbed.AEMMAccessKeyID},
		{"botocore creds", e.Botocore(g.URL), true, testbed.AEMMAccessKeyID},
	})
}
