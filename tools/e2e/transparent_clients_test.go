package e2e

import (
	"strings"
	"testing"

	"github.com/imdsguard/imdsguard/tools/testbed"
)

// transparentCase is a client run and what imdsguard must have logged for
// it (the last audit event the run caused).
type transparentCase struct {
	clientCase
	version  string // the last event's version: "v1", "v2"
	decision string // "allow" when empty
	status   int    // 200 when 0
	path     string // the last event's path; "" = not checked
}

// runTransparent runs the cases one after the other and checks each one's
// audit trail: the run caused events, the last has the wanted version,
// decision and status, and every one names the expected caller.
func runTransparent(t *testing.T, e *testbed.Env, g *testbed.Guard, caller func(audit) string, cases []transparentCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := len(audits(g))
			r := e.Run(c.cmd)
			checkClient(t, r, c.wantOK, c.want)
			evs := since(g, n)
			if len(evs) == 0 {
				t.Fatalf("no audit event for %s", c.name)
			}
			for _, ev := range evs {
				if why := caller(ev); why != "" {
					t.Errorf("event %v: %s", ev, why)
				}
			}
			last := evs[len(evs)-1]
			decision, status := c.decision, c.status
			if decision == "" {
				decision = "allow"
			}
			if status == 0 {
				status = 200
			}
			if last.Version != c.version || last.Decision != decision || last.Status != status || (c.path != "" && last.Path != c.path) {
				t.Errorf("last event %v; want %s %s %s %d", last, c.path, c.version, decision, status)
			}
			t.Logf("%d events; last: %v", len(evs), last)
		})
	}
}

// hostUser checks that an event is u calling from the host namespace.
func hostUser(u testbed.User) func(audit) string {
	return func(a audit) string {
		switch {
		case a.Class != "host":
			return "class " + a.Class + ", want host"
		case !a.UIDKnown || a.UID != int(u.UID):
			return "uid not " + u.String()
		case a.User != u.Name:
			return "user " + a.User + ", want " + u.Name
		}
		return ""
	}
}

// TestTransparentLegacyClientsHost: from the host namespace, as a non-root
// user, with no configuration at all (every client's built-in endpoint
// 169.254.169.254), the IMDSv1-only clients that AEMM refuses directly work
// through the redirect, and so do the IMDSv2 ones. First the same clients
// without imdsguard, to prove AEMM refuses v1.
func TestTransparentLegacyClientsHost(t *testing.T) {
	e := testbed.New(t)
	e.RequireBins("aemm", "imdsguard", "imdsclient")
	h := e.NewHost(testbed.HostOptions{})
	u := testbed.EnsureUser(t, testbed.TestUserName)
	as := func(c testbed.Cmd) testbed.Cmd { return e.AsUser(u, h.InHost(c)) }
	url := testbed.IMDSURL(4) + instanceIDPath

	t.Run("without imdsguard", func(t *testing.T) {
		t.Run("curl v1 gets 401 from AEMM", func(t *testing.T) {
			r := curlStatus(t, e, as(e.Curl(url)), 401)
			if body, _ := testbed.CurlStatus(r); strings.Contains(body, testbed.AEMMInstanceID) {
				t.Fatalf("401 with the instance id: %v", r)
			}
		})
		runClients(t, e, []clientCase{
			{"sdk v1 fails 401", as(e.IMDSClient("v1", "", "-get", "instance-id")), false, "HTTP 401"},
			{"boto gets nothing", as(e.Boto("")), false, "no instance metadata"},
			{"sdk v2 works directly", as(e.IMDSClient("v2", "", "-no-fallback", "-get", "instance-id")), true, testbed.AEMMInstanceID},
		})
	})

	g := h.StartGuard(testbed.HostGuardConfig{})
	t.Run("through imdsguard", func(t *testing.T) {
		runTransparent(t, e, g, hostUser(u), []transparentCase{
			{clientCase{"curl v1", as(e.Curl(url)), true, testbed.AEMMInstanceID + "\nHTTP 200"}, "v1", "", 0, instanceIDPath},
			{clientCase{"sdk v1 (aws-sdk-go 1.25)", as(e.IMDSClient("v1", "", "-get", "instance-id")), true, testbed.AEMMInstanceID}, "v1", "", 0, instanceIDPath},
			{clientCase{"boto 2.49", as(e.Boto("")), true, testbed.AEMMInstanceID}, "v1", "", 0, ""},
			{clientCase{"sdk v2 no fallback", as(e.IMDSClient("v2", "", "-no-fallback", "-get", "instance-id")), true, testbed.AEMMInstanceID}, "v2", "", 0, instanceIDPath},
			{clientCase{"ec2-metadata -i", as(e.EC2Metadata()), true, "instance-id: " + testbed.AEMMInstanceID}, "v2", "", 0, instanceIDPath},
			{clientCase{"ec2metadata --instance-id", as(e.EC2MetadataCloudUtils("")), true, testbed.AEMMInstanceID}, "v2", "", 0, instanceIDPath},
		})
	})
	if reqs := bothAEMM(h); len(reqs) == 0 {
		t.Error("AEMM logged no request at all")
	}
}

// credsPolicy is the default policy plus a rule that lets user read
// everything (an agent that needs the role credentials).
func credsPolicy(user string) string {
	return `policy:
  mode: enforce
  default: deny
  rules:
    - name: root
      match: {users: [root]}
      allow: ["/**"]
    - name: agent
      match: {users: [` + user + `]}
      allow: ["/**"]
    - name: others
      match: {}
      allow: ["/**"]
      deny: ["/meta-data/iam/**", "/meta-data/identity-credentials/**", "/user-data",
             "/dynamic/instance-identity/signature", "/dynamic/instance-identity/pkcs7",
             "/dynamic/instance-identity/rsa2048"]
`
}

// TestTransparentCredentials: role credentials through the redirect with
// the default policy: root gets them (aws CLI, botocore, SDK v1 and v2),
// a non-root user is denied (403, audit "deny"); after a SIGHUP reload
// with a rule for that user, the same user gets them.
func TestTransparentCredentials(t *testing.T) {
	e, h, g := transparent(t, testbed.HostOptions{}, testbed.HostGuardConfig{})
	u := testbed.EnsureUser(t, testbed.TestUserName)
	as := func(c testbed.Cmd) testbed.Cmd { return e.AsUser(u, h.InHost(c)) }
	root := testbed.User{Name: "root"}
	const credsDir = "/latest/meta-data/iam/security-credentials/"
	key := "AWS_ACCESS_KEY_ID=" + testbed.AEMMAccessKeyID

	t.Run("root", func(t *testing.T) {
		runTransparent(t, e, g, hostUser(root), []transparentCase{
			{clientCase{"aws configure export-credentials", h.InHost(e.AWSCLIExport("")), true, key}, "v2", "", 0, ""},
			{clientCase{"botocore fetcher", h.InHost(e.Botocore("")), true, testbed.AEMMAccessKeyID}, "v2", "", 0, ""},
			{clientCase{"sdk v2 creds", h.InHost(e.IMDSClient("v2", "", "-no-fallback", "-creds")), true, testbed.AEMMAccessKeyID}, "v2", "", 0, ""},
			{clientCase{"sdk v1 creds", h.InHost(e.IMDSClient("v1", "", "-creds")), true, testbed.AEMMAccessKeyID}, "v1", "", 0, ""},
		})
	})
	t.Run("non-root denied", func(t *testing.T) {
		runTransparent(t, e, g, hostUser(u), []transparentCase{
			{clientCase{"aws configure export-credentials", as(e.AWSCLIExport("")), false, ""}, "v2", "deny", 403, credsDir},
			{clientCase{"botocore fetcher", as(e.Botocore("")), false, "no credentials"}, "v2", "deny", 403, credsDir},
			{clientCase{"sdk v1 creds", as(e.IMDSClient("v1", "", "-creds")), false, ""}, "v1", "deny", 403, credsDir},
			{clientCase{"curl v1 listing", as(e.Curl(testbed.IMDSURL(4) + credsDir)), true, "HTTP 403"}, "v1", "deny", 403, credsDir},
		})
	})
	t.Run("non-root with a rule of its own", func(t *testing.T) {
		n := eventCount(g, "policy reloaded")
		if err := h.ReloadGuard(g, testbed.HostGuardConfig{Extra: credsPolicy(u.Name)}); err != nil {
			t.Fatal(err)
		}
		testbed.WaitFor(t, "policy reloaded", func() bool { return eventCount(g, "policy reloaded") > n })
		runTransparent(t, e, g, hostUser(u), []transparentCase{
			{clientCase{"aws configure export-credentials", as(e.AWSCLIExport("")), true, key}, "v2", "", 0, ""},
			{clientCase{"botocore fetcher", as(e.Botocore("")), true, testbed.AEMMAccessKeyID}, "v2", "", 0, ""},
		})
		for _, ev := range audits(g)[len(audits(g))-1:] {
			if ev.Rule != "agent" {
				t.Errorf("last event %v: rule %q, want agent", ev, ev.Rule)
			}
		}
	})
}

// botocoreIPv6 fetches the role credentials with botocore's own IPv6
// endpoint mode (http://[fd00:ec2::254]).
const botocoreIPv6 = `from botocore.utils import InstanceMetadataFetcher as F
c = F(timeout=2, num_attempts=1, config={"ec2_metadata_service_endpoint_mode": "ipv6"}).retrieve_iam_role_credentials()
if not c:
    raise SystemExit("botocore: no credentials: %r" % (c,))
print(c["access_key"])
`

// TestTransparentIPv6: the same through fd00:ec2::254. curl and boto take
// the URL, the Go SDKs an endpoint, the aws CLI and botocore their IPv6
// endpoint mode (no URL given). Callers are seen with their IPv6 source.
func TestTransparentIPv6(t *testing.T) {
	e, h, g := transparent(t, testbed.HostOptions{}, testbed.HostGuardConfig{})
	u := testbed.EnsureUser(t, testbed.TestUserName)
	as := func(c testbed.Cmd) testbed.Cmd { return e.AsUser(u, h.InHost(c)) }
	v6 := testbed.IMDSURL(6)
	src := func(want func(audit) string) func(audit) string {
		return func(a audit) string {
			if !strings.Contains(a.Source, ":") {
				return "source " + a.Source + " is not IPv6"
			}
			return want(a)
		}
	}
	runTransparent(t, e, g, src(hostUser(u)), []transparentCase{
		{clientCase{"curl v1", as(e.Curl(v6 + instanceIDPath)), true, testbed.AEMMInstanceID + "\nHTTP 200"}, "v1", "", 0, instanceIDPath},
		{clientCase{"sdk v1", as(e.IMDSClient("v1", v6, "-get", "instance-id")), true, testbed.AEMMInstanceID}, "v1", "", 0, instanceIDPath},
		{clientCase{"boto", as(e.Boto(v6)), true, testbed.AEMMInstanceID}, "v1", "", 0, ""},
		{clientCase{"sdk v2 no fallback", as(e.IMDSClient("v2", v6, "-no-fallback", "-get", "instance-id")), true, testbed.AEMMInstanceID}, "v2", "", 0, instanceIDPath},
	})
	root := testbed.User{Name: "root"}
	aws := h.InHost(e.AWSCLIExport(""))
	aws.Env = append(aws.Env, "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=IPv6")
	runTransparent(t, e, g, src(hostUser(root)), []transparentCase{
		{clientCase{"aws cli endpoint mode IPv6", aws, true, "AWS_ACCESS_KEY_ID=" + testbed.AEMMAccessKeyID}, "v2", "", 0, ""},
		{clientCase{"botocore endpoint mode ipv6", h.InHost(e.Python("botocore-ipv6", botocoreIPv6)), true, testbed.AEMMAccessKeyID}, "v2", "", 0, ""},
		{clientCase{"sdk v2 creds", h.InHost(e.IMDSClient("v2", v6, "-no-fallback", "-creds")), true, testbed.AEMMAccessKeyID}, "v2", "", 0, ""},
	})
	for _, r := range aemmRequests(h.AEMM6) {
		t.Errorf("AEMM on fd00:ec2::254 got %+v: the daemon's upstream is http://169.254.169.254", r)
	}
}

// fromC1 checks that an event is a container caller from c1.
func fromC1(v int) func(audit) string {
	src := testbed.C1V4
	if v == 6 {
		src = testbed.C1V6
	}
	return func(a audit) string {
		switch {
		case a.Class != "container":
			return "class " + a.Class + ", want container"
		case a.Source != src:
			return "source " + a.Source + ", want " + src
		case a.Interface != testbed.C1If:
			return "interface " + a.Interface + ", want " + testbed.C1If
		}
		return ""
	}
}

// TestTransparentContainer: from c1, a container behind veth-c1 (matched by
// the default container_interfaces), the clients work through PREROUTING's
// redirect with their built-in endpoints: v1 curl on both families, SDK
// v1, boto, SDK v2 (a token answer with hop limit 2), ec2-metadata.
// imdsguard sees them as container callers on veth-c1.
func TestTransparentContainer(t *testing.T) {
	e, h, g := transparent(t, testbed.HostOptions{}, testbed.HostGuardConfig{})
	u := testbed.EnsureUser(t, testbed.TestUserName)
	in := h.InC1
	runTransparent(t, e, g, fromC1(4), []transparentCase{
		{clientCase{"curl v1", in(e.Curl(testbed.IMDSURL(4) + instanceIDPath)), true, testbed.AEMMInstanceID + "\nHTTP 200"}, "v1", "", 0, instanceIDPath},
		{clientCase{"sdk v1", in(e.IMDSClient("v1", "", "-get", "instance-id")), true, testbed.AEMMInstanceID}, "v1", "", 0, instanceIDPath},
		{clientCase{"boto", in(e.Boto("")), true, testbed.AEMMInstanceID}, "v1", "", 0, ""},
		{clientCase{"sdk v2 no fallback (hop limit 2)", in(e.IMDSClient("v2", "", "-no-fallback", "-get", "instance-id")), true, testbed.AEMMInstanceID}, "v2", "", 0, instanceIDPath},
		{clientCase{"ec2-metadata -i", in(e.EC2Metadata()), true, "instance-id: " + testbed.AEMMInstanceID}, "v2", "", 0, instanceIDPath},
		{clientCase{"non-root curl v1 listing of credentials", e.AsUser(u, in(e.Curl(testbed.IMDSURL(4)+"/latest/meta-data/iam/security-credentials/"))), true, "HTTP 403"}, "v1", "deny", 403, ""},
	})
	runTransparent(t, e, g, fromC1(6), []transparentCase{
		{clientCase{"curl v1 IPv6", in(e.Curl(testbed.IMDSURL(6) + instanceIDPath)), true, testbed.AEMMInstanceID + "\nHTTP 200"}, "v1", "", 0, instanceIDPath},
		{clientCase{"sdk v2 IPv6", in(e.IMDSClient("v2", testbed.IMDSURL(6), "-no-fallback", "-get", "instance-id")), true, testbed.AEMMInstanceID}, "v2", "", 0, instanceIDPath},
	})
	for _, ev := range audits(g) {
		if ev.Class == "container" && ev.UIDKnown && ev.UID == 0 {
			t.Logf("note: container caller with uid 0 decided by rule %q: %v", ev.Rule, ev)
			break
		}
	}
}
