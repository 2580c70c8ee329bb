package e2e

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/imdsguard/imdsguard/tools/testbed"
)

// The policy tests run imdsguard on a testbed.Host (rules in the host
// namespace, AEMM behind a routed link, c1 behind veth-c1) with the per-user
// policy of the issue: only root and the agent may read credentials.
//
// Users and groups, created by testbed.EnsureUser/EnsureGroup when missing
// (system accounts, no home, nologin shell) and left in place afterwards:
//
//	imdsagent  the agent that needs the role credentials: rule "agent"
//	imdsapp    a legacy application, member of group legacy; its clients
//	           run with legacy as a supplementary group (setpriv --groups):
//	           rule "legacy" (everything but the secrets). Run with its
//	           groups cleared it matches no users/groups entry and gets
//	           rule "others" (the same secrets denied).
//	legacy     the group of legacy applications
//
// root in c1 is not the host's root: c1's callers come through PREROUTING
// and are matched by the "containers" rule (by source CIDR), whatever their
// uid.
const (
	appUser     = "imdsapp"
	agentUser   = "imdsagent"
	legacyGroup = "legacy"
	credsDir    = "/latest/meta-data/iam/security-credentials/"
	// metricsAddr is metrics.listen in the host namespace (the reload test).
	metricsAddr = "127.0.0.1:9989"
)

// secretDenies are what the legacy and others rules deny (and what the
// deny rows of bypass-cases.tsv aim at), plus pkcs7 and rsa2048 as in the
// built-in default policy.
const secretDenies = `["/meta-data/iam/**", "/meta-data/identity-credentials/**", "/user-data",
             "/dynamic/instance-identity/signature", "/dynamic/instance-identity/pkcs7",
             "/dynamic/instance-identity/rsa2048"]`

// suiteRules are the rules of the suite's policy. The containers rule
// allows placement and the instance id only: a container's root gets no
// credentials (and none of the other secrets).
const suiteRules = `    - name: root
      match: {users: [root]}
      allow: ["/**"]
    - name: agent
      match: {users: [` + agentUser + `]}
      allow: ["/**"]
    - name: legacy
      match: {groups: [` + legacyGroup + `]}
      allow: ["/**"]
      deny: ` + secretDenies + `
    - name: containers
      match: {sources: ["198.51.100.0/24", "2001:db8:2::/64"]}
      allow: ["/meta-data/placement/**", "/meta-data/instance-id"]
    - name: others
      match: {}
      allow: ["/**"]
      deny: ` + secretDenies + `
`

// suitePolicy is the policy section of the suite in mode (enforce, audit),
// with extraRules placed first.
func suitePolicy(mode, extraRules string) string {
	return "policy:\n  mode: " + mode + "\n  default: deny\n  rules:\n" + extraRules + suiteRules
}

// appCredsRule, placed first, lets imdsapp read everything (the reload
// test's valid change).
const appCredsRule = `    - name: app
      match: {users: [` + appUser + `]}
      allow: ["/**"]
`

// policyBed is a Host with imdsguard running the suite's policy, and the
// suite's users.
type policyBed struct {
	e      *testbed.Env
	h      *testbed.Host
	g      *testbed.Guard
	app    testbed.User
	agent  testbed.User
	legacy testbed.Group
	root   testbed.User
}

// newPolicyBed builds the Host, makes sure the users exist and starts
// imdsguard with the suite's policy (in mode) and extra top-level YAML.
func newPolicyBed(t *testing.T, mode, extra string) *policyBed {
	t.Helper()
	e := testbed.New(t)
	e.RequireBins("aemm", "imdsguard", "imdsclient")
	b := &policyBed{e: e, root: testbed.User{Name: "root"}}
	b.app = testbed.EnsureUser(t, appUser)
	b.agent = testbed.EnsureUser(t, agentUser)
	b.legacy = testbed.EnsureGroup(t, legacyGroup)
	testbed.EnsureMember(t, b.app, b.legacy)
	b.h = e.NewHost(testbed.HostOptions{})
	b.g = b.h.StartGuard(testbed.HostGuardConfig{Extra: extra + suitePolicy(mode, "")})
	// One request first, so that imdsguard's upstream session (its token
	// PUT) exists before a test asks AEMM for a token of its own: AEMM
	// crashes under concurrent token PUTs.
	if r, err := testbed.RawRequestIn(b.h.HostNS, testbed.IMDSAddr(4), "GET", instanceIDPath, nil); err != nil || r.Status != 200 {
		t.Fatalf("warm-up request as root through the redirect: %+v %v", r, err)
	}
	testbed.WaitFor(t, "the warm-up request's audit event", func() bool { return auditCount(b.g) >= 1 })
	return b
}

// caller is who runs a helper, and where.
type caller struct {
	name  string // for tables: imdsapp, root, imdsagent
	place string // host or c1
	ns    string
	user  *testbed.User  // nil: root
	group *testbed.Group // supplementary group, if any
}

func (c caller) String() string { return c.name + "@" + c.place }

func (b *policyBed) hostRoot() caller { return caller{name: "root", place: "host", ns: b.h.HostNS} }
func (b *policyBed) hostApp() caller {
	return caller{name: appUser, place: "host", ns: b.h.HostNS, user: &b.app, group: &b.legacy}
}
func (b *policyBed) hostAppNoGroups() caller {
	return caller{name: appUser + " (no groups)", place: "host", ns: b.h.HostNS, user: &b.app}
}
func (b *policyBed) hostAgent() caller {
	return caller{name: agentUser, place: "host", ns: b.h.HostNS, user: &b.agent}
}
func (b *policyBed) c1Root() caller { return caller{name: "root", place: "c1", ns: b.h.C1NS} }
func (b *policyBed) c1Agent() caller {
	return caller{name: agentUser, place: "c1", ns: b.h.C1NS, user: &b.agent}
}

// as sets Cmd c (a command of the test) to run as c's user, in c's
// namespace.
func (b *policyBed) as(c caller, cmd testbed.Cmd) testbed.Cmd {
	b.e.T.Helper()
	cmd.NS = c.ns
	if c.user == nil {
		return cmd
	}
	cmd = b.e.AsUser(*c.user, cmd)
	if c.group != nil {
		cmd = testbed.WithGroups(cmd, *c.group)
	}
	return cmd
}

// send runs reqs, in order, in one helper process as c, and checks that
// the helper ran as c's user with c's groups.
func (b *policyBed) send(t *testing.T, c caller, reqs ...helperRequest) *helperOutput {
	t.Helper()
	out := runHelperCmd(t, b.e, b.as(c, helper(t, b.e, "", "requests", helperJob{Requests: reqs})))
	b.checkRanAs(t, c, out)
	return out
}

// checkRanAs fails t unless the helper ran as c's user and groups.
func (b *policyBed) checkRanAs(t *testing.T, c caller, out *helperOutput) {
	t.Helper()
	uid, groups := 0, []int{0}
	if c.user != nil {
		uid, groups = int(c.user.UID), nil
		if c.group != nil {
			groups = []int{int(c.group.GID)}
		}
	}
	if out.UID != uid || !slices.Equal(out.Groups, groups) && !(c.user == nil && out.UID == 0) {
		t.Fatalf("helper for %v ran as uid %d groups %v, want uid %d groups %v", c, out.UID, out.Groups, uid, groups)
	}
}

// identityProblem says what is wrong with the caller of ev, an event of a
// request that c sent over family v from helper process out ("" if nothing).
func (b *policyBed) identityProblem(c caller, v int, out *helperOutput, ev *event) string {
	if ev == nil {
		return "no event"
	}
	if c.place == "c1" {
		src := testbed.C1V4
		if v == 6 {
			src = testbed.C1V6
		}
		if ev.Class != "container" || ev.Source != src || ev.Interface != testbed.C1If {
			return fmt.Sprintf("caller %s %s if %q, want container %s if %s", ev.Class, ev.Source, ev.Interface, src, testbed.C1If)
		}
		return ""
	}
	// A host process's socket has the address routing chose for the
	// metadata address: the uplink's.
	src := testbed.HostUpV4
	if v == 6 {
		src = testbed.HostUpV6
	}
	name := "root"
	if c.user != nil {
		name = c.user.Name
	}
	if ev.Class != "host" || ev.Source != src || !ev.UIDKnown || ev.UID != out.UID || ev.User != name || ev.PID != out.PID {
		return fmt.Sprintf("caller %s %s uid %d user %q pid %d, want host %s uid %d user %q pid %d",
			ev.Class, ev.Source, ev.UID, ev.User, ev.PID, src, out.UID, name, out.PID)
	}
	return ""
}

// get and put build helper requests to the metadata address of family v.
func get(v int, target string, headers ...string) helperRequest {
	return helperRequest{Addr: testbed.IMDSAddr(v), Method: "GET", Target: target, Headers: headers}
}

func getV2(v int, target string) helperRequest {
	r := get(v, target)
	r.UseToken = true
	return r
}

func putToken(v int) helperRequest {
	return helperRequest{Addr: testbed.IMDSAddr(v), Method: "PUT", Target: "/latest/api/token",
		Headers: []string{"X-aws-ec2-metadata-token-ttl-seconds: 300"}}
}

// event is one audit event with every field the daemon logs.
type event struct {
	Class, Source, User, Comm, Exe, Container, Interface string
	UID, PID                                             int
	UIDKnown, HasContainer, HasPID                       bool
	IdentityUnknown                                      string
	Method, Path, Target, Version                        string
	Decision, Rule, Reason                               string
	Status                                               int
	Raw                                                  map[string]any
}

func (a event) String() string {
	p := a.Path
	if p == "" {
		p = "target=" + a.Target
	}
	return fmt.Sprintf("%s %s uid=%d user=%q pid=%d comm=%q if=%q container=%q | %s %s %s -> %s %d rule=%q",
		a.Class, a.Source, a.UID, a.User, a.PID, a.Comm, a.Interface, a.Container,
		a.Method, p, a.Version, a.Decision, a.Status, a.Rule)
}

// events returns g's audit events ("msg":"imds request") in order.
func events(g *testbed.Guard) []event {
	var out []event
	for _, ev := range g.Events() {
		if ev["msg"] != "imds request" {
			continue
		}
		a := event{
			Method: str(ev["method"]), Path: str(ev["path"]), Target: str(ev["target"]), Version: str(ev["version"]),
			Decision: str(ev["decision"]), Rule: str(ev["rule"]), Reason: str(ev["reason"]),
			Status: num(ev["status"]), Raw: ev,
		}
		if c, ok := ev["caller"].(map[string]any); ok {
			a.Class, a.Source, a.User, a.Comm = str(c["class"]), str(c["source"]), str(c["user"]), str(c["comm"])
			a.Exe, a.Container, a.Interface = str(c["exe"]), str(c["container"]), str(c["interface"])
			a.IdentityUnknown = str(c["identity_unknown"])
			_, a.UIDKnown = c["uid"]
			_, a.HasContainer = c["container"]
			_, a.HasPID = c["pid"]
			a.UID, a.PID = num(c["uid"]), num(c["pid"])
		}
		out = append(out, a)
	}
	return out
}

// auditCount counts audit lines cheaply (no JSON decoding), for polling.
func auditCount(g *testbed.Guard) int {
	return strings.Count(g.Stderr(), `"msg":"imds request"`)
}

// eventsFor waits until the daemon logged n audit events after the first
// from, and returns them.
func eventsFor(t *testing.T, g *testbed.Guard, from, n int) []event {
	t.Helper()
	testbed.WaitFor(t, fmt.Sprintf("%d audit events", n), func() bool { return auditCount(g) >= from+n })
	return events(g)[from:]
}

// pair matches each helper result to its audit event: the helper sends one
// request at a time and the daemon logs a request's event before it
// answers, so the events come in the requests' order. A result without an
// event (same method, same status) gets none: the next result tries the
// same event.
func pair(results []helperResult, evs []event) []*event {
	out := make([]*event, len(results))
	j := 0
	for i, r := range results {
		if j < len(evs) && strings.EqualFold(evs[j].Method, r.Req.Method) && evs[j].Status == r.Status {
			out[i] = &evs[j]
			j++
		}
	}
	return out
}

// sendAudited runs reqs as c and returns the results with their audit
// events: those naming the helper's pid, once there is one per request
// (the daemon's log reaches the test through a pipe, a moment later).
func (b *policyBed) sendAudited(t *testing.T, c caller, reqs ...helperRequest) (*helperOutput, []*event) {
	t.Helper()
	n := auditCount(b.g)
	out := b.send(t, c, reqs...)
	var mine []event
	testbed.WaitFor(t, fmt.Sprintf("%d audit events of pid %d", len(reqs), out.PID), func() bool {
		mine = mine[:0]
		for _, ev := range events(b.g)[n:] {
			if ev.PID == out.PID {
				mine = append(mine, ev)
			}
		}
		return len(mine) >= len(reqs)
	})
	return out, pair(out.Results, mine)
}

// wantEvent checks decision, rule, status and (when given) path of ev.
func wantEvent(t *testing.T, what string, ev *event, decision, rule string, status int, path string) {
	t.Helper()
	switch {
	case ev == nil:
		t.Errorf("%s: no audit event", what)
	case ev.Decision != decision || ev.Rule != rule || ev.Status != status || (path != "" && ev.Path != path):
		t.Errorf("%s: audit event %v; want %s %d rule %q path %q", what, ev, decision, status, rule, path)
	}
}

// secretsOf reads the secret documents straight from AEMM (in the imds
// namespace, with a token), plus the AccessKeyId and the role name, so a
// test can tell whether any of them leaked.
func secretsOf(t *testing.T, h *testbed.Host) []string {
	t.Helper()
	addr := testbed.IMDSAddr(4)
	r, err := testbed.RawRequestIn(h.IMDSNS, addr, "PUT", "/latest/api/token", []string{"X-aws-ec2-metadata-token-ttl-seconds: 60"})
	if err != nil || r.Status != 200 {
		t.Fatalf("token from AEMM: %+v %v", r, err)
	}
	tok := tokenHeader + ": " + string(r.Body)
	secrets := []string{testbed.AEMMAccessKeyID, testbed.AEMMRole}
	for _, p := range append(secretPaths, "/latest/meta-data/identity-credentials/ec2/security-credentials/ec2-instance") {
		r, err := testbed.RawRequestIn(h.IMDSNS, addr, "GET", p, []string{tok})
		if err != nil {
			t.Fatal(err)
		}
		if s := strings.TrimSpace(string(r.Body)); r.Status == 200 && s != "" && !slices.Contains(secrets, s) {
			secrets = append(secrets, s)
		}
	}
	if len(secrets) < 4 {
		t.Fatalf("AEMM served only %d secret documents: %q", len(secrets), secrets)
	}
	return secrets
}

// leaks returns the secrets found in body.
func leaks(body []byte, secrets []string) []string {
	var out []string
	for _, s := range secrets {
		if strings.Contains(string(body), s) {
			out = append(out, s)
		}
	}
	return out
}

// aemmRef asks AEMM itself (imds namespace, v4, with a token of its own)
// what it answers for a canonical path: what imdsguard must pass through
// for a served request. Answers are cached per method and path; it is used
// only while no client runs (AEMM crashes under concurrent token PUTs).
type aemmRef struct {
	h     *testbed.Host
	token string
	seen  map[string]*testbed.RawResponse
}

func (a *aemmRef) answer(t *testing.T, method, path string) *testbed.RawResponse {
	t.Helper()
	addr := testbed.IMDSAddr(4)
	if a.token == "" {
		r, err := testbed.RawRequestIn(a.h.IMDSNS, addr, "PUT", "/latest/api/token", []string{"X-aws-ec2-metadata-token-ttl-seconds: 600"})
		if err != nil || r.Status != 200 {
			t.Fatalf("token from AEMM: %+v %v", r, err)
		}
		a.token, a.seen = string(r.Body), map[string]*testbed.RawResponse{}
	}
	key := method + " " + path
	if r, ok := a.seen[key]; ok {
		return r
	}
	r, err := testbed.RawRequestIn(a.h.IMDSNS, addr, method, path, []string{tokenHeader + ": " + a.token})
	if err != nil {
		t.Fatalf("AEMM %s %s: %v", method, path, err)
	}
	a.seen[key] = r
	return r
}

// stopDir is a directory every user can read (for a hammer's stop file),
// removed after the test.
func stopDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "igstop")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}
