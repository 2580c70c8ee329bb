package e2e

import (
	"fmt"
	"os/user"
	"strings"
	"testing"

	"github.com/imdsguard/imdsguard/tools/testbed"
)

// TestBypassExactStatus sends every bypass-cases.tsv row that names an exact
// status, byte for byte over a raw socket, to imdsguard (default policy,
// forwarded_headers: reject) and checks the status.
func TestBypassExactStatus(t *testing.T) {
	e, _, g := endpointMode(t, "")
	for _, c := range e.LoadCases() {
		want, ok := c.Status()
		if !ok {
			continue
		}
		t.Run(c.ID, func(t *testing.T) {
			r := testbed.Raw(t, g.Addr, c.Method, c.Target, c.Headers)
			if r.Status != want {
				t.Fatalf("%v: got %q, want %d; body %.300q", c, r.StatusLine, want, r.Body)
			}
			checkTTLEcho(t, c, r)
		})
	}
}

// checkTTLEcho: a granted token carries the TTL it was asked for.
func checkTTLEcho(t *testing.T, c testbed.Case, r *testbed.RawResponse) {
	t.Helper()
	const ttl = "X-aws-ec2-metadata-token-ttl-seconds"
	if c.Method != "PUT" || r.Status != 200 {
		return
	}
	for _, h := range c.Headers {
		name, value, _ := strings.Cut(h, ":")
		if strings.EqualFold(name, ttl) && r.Header.Get(ttl) != strings.TrimSpace(value) {
			t.Errorf("%v: %s: %q, want %q echoed", c, ttl, r.Header.Get(ttl), strings.TrimSpace(value))
		}
	}
}

// secretPaths are what the deny rows try to reach.
var secretPaths = []string{
	"/latest/meta-data/iam/security-credentials/",
	"/latest/meta-data/iam/security-credentials/" + testbed.AEMMRole,
	"/latest/meta-data/iam/info",
	"/latest/user-data",
	"/latest/dynamic/instance-identity/signature",
}

// denyPolicy lets user read everything but what bypass-cases.tsv's deny
// rows aim at.
func denyPolicy(user string) string {
	return fmt.Sprintf(`policy:
  mode: enforce
  default: deny
  rules:
    - name: tester
      match: {users: [%q]}
      allow: ["/**"]
      deny: ["/meta-data/iam/**", "/meta-data/identity-credentials/**", "/user-data", "/dynamic/instance-identity/signature"]
`, user)
}

// TestBypassDeny sends every row of bypass-cases.tsv to imdsguard under a
// policy that denies the test's own user the secret paths: deny rows must
// get a 4xx without any secret in the body, exact rows their status. The
// exact rows go first: they are the controls showing that the rule applied
// to this caller at all (without them a deny-everything daemon would pass).
func TestBypassDeny(t *testing.T) {
	u, err := user.Current()
	if err != nil {
		t.Fatalf("current user: %v", err)
	}
	e, a, g := endpointMode(t, denyPolicy(u.Username))
	secrets := fetchSecrets(t, a)
	cases := e.LoadCases()
	controls := runCases(t, g, cases, true, secrets)
	if !controls {
		t.Fatalf("control rows failed: the rule for user %q did not apply (caller identity?); deny rows would pass for the wrong reason", u.Username)
	}
	runCases(t, g, cases, false, secrets)
}

// runCases runs the exact-status rows (exact) or the deny rows as subtests
// and reports whether all passed.
func runCases(t *testing.T, g *testbed.Guard, cases []testbed.Case, exact bool, secrets []string) bool {
	t.Helper()
	ok := true
	for _, c := range cases {
		if _, isExact := c.Status(); isExact != exact {
			continue
		}
		ok = t.Run(c.ID, func(t *testing.T) {
			r := testbed.Raw(t, g.Addr, c.Method, c.Target, c.Headers)
			checkCase(t, c, r, secrets)
		}) && ok
	}
	return ok
}

func checkCase(t *testing.T, c testbed.Case, r *testbed.RawResponse, secrets []string) {
	t.Helper()
	if want, ok := c.Status(); ok {
		if r.Status != want {
			t.Fatalf("%v: got %q, want %d; body %.300q", c, r.StatusLine, want, r.Body)
		}
		return
	}
	if r.Status < 400 || r.Status > 499 {
		t.Errorf("%v: got %q, want a 4xx", c, r.StatusLine)
	}
	for _, s := range secrets {
		if strings.Contains(string(r.Body), s) {
			t.Errorf("%v: body leaks %.60q", c, s)
		}
	}
}

// fetchSecrets reads the secret documents straight from AEMM, so a test can
// tell whether any of them leaked.
func fetchSecrets(t *testing.T, a *testbed.AEMM) []string {
	t.Helper()
	r := testbed.Raw(t, a.Addr, "PUT", "/latest/api/token", []string{"X-aws-ec2-metadata-token-ttl-seconds: 60"})
	tok := "X-aws-ec2-metadata-token: " + string(r.Body)
	var secrets []string
	for _, p := range secretPaths {
		r := testbed.Raw(t, a.Addr, "GET", p, []string{tok})
		if s := strings.TrimSpace(string(r.Body)); r.Status == 200 && s != "" {
			secrets = append(secrets, s)
		}
	}
	if len(secrets) < 2 {
		t.Fatalf("AEMM served only %d of the secret documents", len(secrets))
	}
	return secrets
}
