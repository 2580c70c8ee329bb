package e2e

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/tools/fakests"
	"github.com/imdsguard/imdsguard/tools/testbed"
)

// Roles per workload (issue 22) with a real dockerd, real clients and the
// fake STS: imdsguard assumes each workload's role with the node's
// credentials (AEMM's) and serves it at the IMDS paths.

const (
	rolesBaseARN = "arn:aws:iam::123456789012:role/"
	rolesMetrics = "127.0.0.1:9989"
	// rolesSlowUser is a second host user, whose role no container event
	// prefetches: its first read is the one that waits for STS.
	rolesSlowUser = "imdstest-roles"
	credsPath     = "/latest/meta-data/iam/security-credentials/"
	// rolesRate and rolesBurst are roles.sts_rate and sts_burst.
	rolesRate  = 2
	rolesBurst = 4
)

// rolesConfig: containers labelled app=ci take ci-builder, app=deploy
// deployer, the two test users host-agent and slow-agent; app=legacy may
// read iam/ without a role (the node's); everyone else is denied iam/.
func rolesConfig(dockerSock, user, slowUser string) string {
	return fmt.Sprintf(`roles: {base_arn: %q, session_duration: 15m, sts_rate: %d, sts_burst: %d}
runtimes: {docker: %q, containerd: "", crio: ""}
metrics: {listen: %q}
policy:
  default: deny
  rules:
    - {name: ci, match: {containers: {labels: {app: ci}}}, role: ci-builder, allow: ["/**"]}
    - {name: deploy, match: {containers: {labels: {app: deploy}}}, role: deployer, allow: ["/**"]}
    - {name: legacy, match: {containers: {labels: {app: legacy}}}, allow: ["/**"]}
    - {name: agent, match: {users: [%s]}, role: host-agent, allow: ["/**"]}
    - {name: slow, match: {users: [%s]}, role: slow-agent, allow: ["/**"]}
    - name: others
      match: {}
      allow: ["/**"]
      deny: ["/meta-data/iam/**", "/meta-data/identity-credentials/**"]
`, rolesBaseARN, rolesRate, rolesBurst, dockerSock, rolesMetrics, user, slowUser)
}

// rolesBench is a Host with the fake STS (its clock can be set back), a
// dockerd with the client image, and imdsguard with rolesConfig.
type rolesBench struct {
	e          *testbed.Env
	h          *testbed.Host
	d          *testbed.Dockerd
	g          *testbed.Guard
	sts        *testbed.FakeSTS
	skew       atomic.Int64 // how far the fake's clock is behind, ns
	user, slow testbed.User
	execBase   time.Duration // a `docker exec` of sh -c :
	top        *testing.T    // TestRoles: containers that outlive a subtest
	ciA        string        // the container ci-a, kept to the end
}

func newRolesBench(t testing.TB, delay time.Duration) *rolesBench {
	t.Helper()
	e := testbed.New(t)
	e.RequireBins("aemm", "imdsguard", "imdsclient-static")
	b := &rolesBench{e: e}
	b.user = testbed.EnsureUser(t, testbed.TestUserName)
	b.slow = testbed.EnsureUser(t, rolesSlowUser)
	b.h = e.NewHost(testbed.HostOptions{})
	b.sts = e.StartFakeSTS(testbed.FakeSTSOptions{NS: b.h.HostNS, Now: func() time.Time {
		return time.Now().Add(-time.Duration(b.skew.Load()))
	}})
	if delay > 0 {
		b.sts.SetFault(fakests.Fault{Delay: delay})
	}
	// dockerd on a containerd of its own: left to itself it would use
	// /run/containerd/containerd.sock whenever a cluster test beside this
	// one has its containerd there, and lose it when that test ends.
	c := e.StartContainerd(b.h.HostNS)
	b.d = e.StartDockerdOn(b.h.HostNS, c.Sock)
	b.d.Import(e.ClientImage(), clientImage)
	b.g = b.h.StartGuardWith(testbed.HostGuardConfig{Extra: rolesConfig(b.d.Sock, b.user.Name, b.slow.Name)},
		testbed.GuardOptions{Env: []string{b.sts.Env()}})
	return b
}

func roleARN(name string) string { return rolesBaseARN + name }

// minted is the AccessKeyId of the fake's n-th credentials of a session.
func minted(role, session string, n int) string {
	return fakests.Mint(roleARN(role), session, n).AccessKeyID
}

// run starts a container named name with labels (k=v) and returns its
// id; it is removed when t ends.
func (b *rolesBench) run(t *testing.T, name string, labels ...string) string {
	t.Helper()
	args := []string{"--name", name}
	for _, l := range labels {
		args = append(args, "--label", l)
	}
	id := b.d.RunDetached(append(args, clientImage, "sleep", "3600")...)
	t.Cleanup(func() { b.e.Run(b.d.Docker("rm", "-f", id)) })
	return id
}

// wgetResult is one busybox wget of an IMDS path in a container.
type wgetResult struct {
	status int // 200, or the error status wget printed (0: none)
	body   string
	took   time.Duration // wall time of the docker exec
}

var wgetStatus = regexp.MustCompile(`HTTP/1\.[01] (\d{3})`)

// wget reads path (IMDSv1, upgraded by imdsguard) from container id.
func (b *rolesBench) wget(t *testing.T, id, path string) wgetResult {
	t.Helper()
	var r testbed.Result
	var start time.Time
	for try := 0; ; try++ {
		start = time.Now()
		r = b.e.Run(b.d.Exec(id, "/bin/wget", "-q", "-O-", testbed.IMDSURL(4)+path))
		if r.Err == nil || strings.Contains(r.Stderr, "wget:") || try == 2 {
			break
		}
		t.Logf("docker exec failed (not wget), again: %v", r) // the runtime, not the answer
		time.Sleep(time.Second)
	}
	w := wgetResult{body: r.Stdout, took: time.Since(start)}
	if r.Err == nil {
		w.status = 200
	} else if m := wgetStatus.FindStringSubmatch(r.Stderr); m != nil {
		w.status, _ = strconv.Atoi(m[1])
	}
	return w
}

// curlAs reads path as host user u with curl; it returns the body, the
// status and curl's own time_total (the request, not the process).
func (b *rolesBench) curlAs(t testing.TB, u testbed.User, path string) (string, int, time.Duration) {
	t.Helper()
	c := testbed.Cmd{Name: "curl", Path: testbed.CurlPath, Env: b.e.ClientEnv(),
		Args: []string{"-s", "-g", "--max-time", "5", "-w", "\nSTATUS=%{http_code} TIME=%{time_total}\n", testbed.IMDSURL(4) + path}}
	r := b.e.Run(b.e.AsUser(u, b.h.InHost(c)))
	body, tail, _ := strings.Cut(r.Stdout, "\nSTATUS=")
	var status int
	var secs float64
	if _, err := fmt.Sscanf(tail, "%d TIME=%g", &status, &secs); err != nil {
		t.Fatalf("curl as %s: %v: %v", u, err, r)
	}
	return body, status, time.Duration(secs * float64(time.Second))
}

var akid = regexp.MustCompile(`"AccessKeyId"\s*:\s*"([^"]+)"`)

func accessKey(body string) string {
	if m := akid.FindStringSubmatch(body); m != nil {
		return m[1]
	}
	return ""
}

// callsOf are the fake's calls for one session.
func (b *rolesBench) callsOf(t testing.TB, session string) []fakests.Call {
	var out []fakests.Call
	for _, c := range b.sts.Calls() {
		if c.RoleSessionName == session {
			out = append(out, c)
		}
	}
	return out
}

// waitCall waits for a call of session that has an outcome (OK or an
// error code) and returns the calls.
func (b *rolesBench) waitCall(t testing.TB, session, outcome string) []fakests.Call {
	t.Helper()
	var calls []fakests.Call
	testbed.WaitFor(t, "an STS call for "+session+" answered "+outcome, func() bool {
		calls = b.callsOf(t, session)
		for _, c := range calls {
			if c.Outcome == outcome {
				return true
			}
		}
		return false
	})
	return calls
}

// checkSigned wants every call signed with the node's key (AEMM's), for role.
func checkSigned(t *testing.T, calls []fakests.Call, role string) {
	t.Helper()
	for _, c := range calls {
		if c.SignerKeyID != fakests.NodeKey.AccessKeyID || c.RoleARN != roleARN(role) {
			t.Errorf("STS call %+v: want role %s signed by the node key %s", c, roleARN(role), fakests.NodeKey.AccessKeyID)
		}
	}
}

// noNodeRole fails when an answer to a caller with a role shows the node's.
func noNodeRole(t *testing.T, who, out string) {
	t.Helper()
	if strings.Contains(out, testbed.AEMMAccessKeyID) || strings.Contains(out, testbed.AEMMRole) {
		t.Errorf("%s: the node role in an answer to a caller with a role: %q", who, out)
	}
}

// lastCredsEvent is the last audit event of a read of a role's credentials.
func lastCredsEvent(t *testing.T, g *testbed.Guard, from int) event {
	t.Helper()
	evs := eventsFor(t, g, from, 1)
	for i := len(evs) - 1; i >= 0; i-- {
		if strings.HasPrefix(evs[i].Path, credsPath) && evs[i].Path != credsPath {
			return evs[i]
		}
	}
	t.Fatalf("no credentials read among %d events", len(evs))
	return event{}
}

func wantRoleEvent(t *testing.T, ev event, role, session string, status int) {
	t.Helper()
	if str(ev.Raw["role"]) != roleARN(role) || str(ev.Raw["session"]) != session || ev.Status != status {
		t.Errorf("event %v role=%q session=%q cache=%q; want role %s session %s status %d",
			ev, str(ev.Raw["role"]), str(ev.Raw["session"]), str(ev.Raw["role_cache"]), roleARN(role), session, status)
	} else {
		t.Logf("audit: %s %s -> %d role=%s session=%s role_cache=%s", ev.Method, ev.Path, ev.Status, str(ev.Raw["role"]), str(ev.Raw["session"]), str(ev.Raw["role_cache"]))
	}
}

// stsMetrics reads imdsguard_sts_calls_total by outcome.
func (b *rolesBench) stsMetrics(t testing.TB) map[string]float64 {
	t.Helper()
	m, err := testbed.RawRequestIn(b.h.HostNS, rolesMetrics, "GET", "/metrics", nil)
	if err != nil || m.Status != 200 {
		t.Fatalf("metrics: %+v %v", m, err)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(m.Body), "\n") {
		if rest, ok := strings.CutPrefix(line, `imdsguard_sts_calls_total{outcome="`); ok {
			k, v, _ := strings.Cut(rest, `"} `)
			out[k], _ = strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return out
}

// TestRoles: per-workload roles end to end (issue 22) on Docker and host
// users, with the fake STS, its faults, the audit, `imdsguard roles` and
// the metrics.
func TestRoles(t *testing.T) {
	b := newRolesBench(t, 0)
	b.top = t
	start := time.Now()
	b.e.Run(b.d.Exec(b.run(t, "probe"), "/bin/sh", "-c", ":"))
	b.execBase = time.Since(start)
	t.Logf("a docker exec of sh -c : takes %v here", b.execBase.Round(time.Millisecond))
	before := b.stsMetrics(t)

	t.Run("docker-ci-container", b.dockerCI)
	t.Run("first-request-at-start", b.firstRequest)
	t.Run("host-user-botocore-awscli", b.hostUser)
	t.Run("no-role-containers", b.noRole)
	t.Run("faults", func(t *testing.T) {
		for _, code := range []fakests.Code{fakests.Throttling, fakests.InternalFailure, fakests.ServiceUnavailable} {
			t.Run("held-then-"+string(code), func(t *testing.T) { b.heldThenFault(t, code) })
		}
		t.Run("slow-sts-2s", b.slowSTS)
		t.Run("access-denied", b.accessDenied)
		t.Run("bucket", b.bucket)
	})
	t.Run("admin-and-metrics", func(t *testing.T) { b.adminAndMetrics(t, before) })
}

// A container labelled app=ci gets ci-builder's credentials through the
// Go SDK v2 (and v1), sees only its role, 404 elsewhere; the fake saw
// AssumeRole signed with the node's key, the session the container's name.
func (b *rolesBench) dockerCI(t *testing.T) {
	id := b.run(b.top, "ci-a", "app=ci") // imdsguard roles lists it at the end
	b.ciA = id
	want := minted("ci-builder", "ci-a", 1) // the prefetch's, or the first read's
	for _, sdk := range []string{"v2", "v1"} {
		n := auditCount(b.g)
		args := []string{"/bin/imdsclient", "-sdk", sdk, "-creds"}
		if sdk == "v2" {
			args = append(args, "-no-fallback")
		}
		r := b.e.Run(b.d.Exec(id, args...))
		if r.Err != nil || !strings.Contains(r.Stdout, want) {
			t.Errorf("sdk %s in ci-a: want %s: %v", sdk, want, r)
		}
		noNodeRole(t, "sdk "+sdk, r.Stdout+r.Stderr)
		wantRoleEvent(t, lastCredsEvent(t, b.g, n), "ci-builder", "ci-a", 200)
		t.Logf("sdk %s: %s", sdk, lastLine(r.Stdout))
	}
	calls := b.callsOf(t, "ci-a")
	checkSigned(t, calls, "ci-builder")
	if len(calls) != 1 || calls[0].Outcome != fakests.OK || calls[0].AccessKeyID != want {
		t.Errorf("STS calls for ci-a: %+v; want one, OK, minting %s", calls, want)
	}
	t.Logf("STS: %d call(s) for session ci-a, signer %s, region %s, duration %ds",
		len(calls), calls[0].SignerKeyID, calls[0].Region, calls[0].DurationSeconds)

	list := b.wget(t, id, credsPath)
	if list.status != 200 || strings.TrimSpace(list.body) != "ci-builder" {
		t.Errorf("listing: %+v; want ci-builder alone", list)
	}
	for _, p := range []string{credsPath + testbed.AEMMRole, credsPath + "other-role", "/latest/meta-data/iam/info"} {
		w := b.wget(t, id, p)
		if w.status != 404 {
			t.Errorf("%s: %+v; want 404", p, w)
		}
		noNodeRole(t, p, w.body)
	}
	t.Logf("listing %q; node role's name, another name and iam/info: 404", strings.TrimSpace(list.body))
}

// A container whose command is the credentials read (its first request,
// made as it starts) gets its own role, never the node's: the start-up
// race of kube2iam and kiam.
func (b *rolesBench) firstRequest(t *testing.T) {
	for i := range 3 {
		name := fmt.Sprintf("starter-%d", i)
		r := b.e.Run(b.d.Docker("run", "--rm", "--name", name, "--label", "app=ci", clientImage,
			"/bin/imdsclient", "-sdk", "v2", "-no-fallback", "-creds"))
		if want := minted("ci-builder", name, 1); r.Err != nil || !strings.Contains(r.Stdout, want) {
			t.Errorf("%s: want %s: %v", name, want, r)
		}
		noNodeRole(t, name, r.Stdout+r.Stderr)
		t.Logf("%s: %s", name, lastLine(r.Stdout))
	}
}

// A host user with a role: botocore and the AWS CLI, unconfigured.
func (b *rolesBench) hostUser(t *testing.T) {
	session := fmt.Sprintf("host.uid-%d", b.user.UID)
	want := minted("host-agent", session, 1)
	as := func(c testbed.Cmd) testbed.Cmd { return b.e.AsUser(b.user, b.h.InHost(c)) }
	for _, c := range []struct {
		name string
		cmd  testbed.Cmd
	}{{"botocore", as(b.e.Botocore(""))}, {"aws configure export-credentials", as(b.e.AWSCLIExport(""))}} {
		n := auditCount(b.g)
		r := b.e.Run(c.cmd)
		if r.Err != nil || !strings.Contains(r.Stdout, want) {
			t.Errorf("%s as %s: want %s: %v", c.name, b.user, want, r)
		}
		noNodeRole(t, c.name, r.Stdout+r.Stderr)
		wantRoleEvent(t, lastCredsEvent(t, b.g, n), "host-agent", session, 200)
		t.Logf("%s: %s", c.name, lastLine(r.Stdout))
	}
	calls := b.callsOf(t, session)
	checkSigned(t, calls, "host-agent")
	if len(calls) != 1 {
		t.Errorf("STS calls for %s: %+v; want one for both clients", session, calls)
	}
}

// Without a role, what policy gives: the node's credentials under a rule
// that allows iam/, 403 under the catch-all.
func (b *rolesBench) noRole(t *testing.T) {
	legacy := b.run(t, "legacy-a", "app=legacy")
	r := b.e.Run(b.d.Exec(legacy, "/bin/imdsclient", "-sdk", "v2", "-no-fallback", "-creds"))
	if r.Err != nil || !strings.Contains(r.Stdout, testbed.AEMMAccessKeyID) {
		t.Errorf("legacy-a (rule without role): want the node's %s: %v", testbed.AEMMAccessKeyID, r)
	}
	plain := b.run(t, "plain-a")
	w := b.wget(t, plain, credsPath)
	if w.status != 403 {
		t.Errorf("unlabelled container: %+v; want 403", w)
	}
	if n := len(b.callsOf(t, "legacy-a")) + len(b.callsOf(t, "plain-a")); n != 0 {
		t.Errorf("%d STS calls for callers without a role", n)
	}
	t.Logf("legacy-a: %s (node role, rule legacy); plain-a: %d", lastLine(r.Stdout), w.status)
}

// creds reads the role's credentials document in a container.
func (b *rolesBench) creds(t *testing.T, id, role string) wgetResult {
	return b.wget(t, id, credsPath+role)
}

// heldThenFault: a caller holds credentials (minted by a fake clock 13 min
// behind: 2 min left, below the 225 s a 15 min session must have to be
// served from memory, so each read asks STS again); STS then fails with
// code: the caller keeps its valid credentials. A new caller of another
// role gets 503 within the wait bound, never the node's.
func (b *rolesBench) heldThenFault(t *testing.T, code fakests.Code) {
	name := "held-" + strings.ToLower(string(code))
	b.skew.Store(int64(13 * time.Minute))
	defer b.skew.Store(0)
	id := b.run(t, name, "app=ci")
	b.waitCall(t, name, fakests.OK)
	first := b.creds(t, id, "ci-builder")
	held := accessKey(first.body)
	if first.status != 200 || !strings.HasPrefix(held, "ASIA") {
		t.Fatalf("%s before the fault: %+v", name, first)
	}
	b.sts.SetFault(fakests.Fault{Code: code})
	defer b.sts.ClearFaults()
	for i := range 3 {
		n := auditCount(b.g)
		w := b.creds(t, id, "ci-builder")
		if w.status != 200 || accessKey(w.body) != held {
			t.Errorf("read %d during %s: %+v; want the held %s", i, code, w, held)
		}
		ev := lastCredsEvent(t, b.g, n)
		wantRoleEvent(t, ev, "ci-builder", name, 200)
	}
	failed := 0
	for _, c := range b.callsOf(t, name) {
		if c.Outcome == string(code) {
			failed++
		}
	}
	if failed == 0 {
		t.Errorf("no STS call for %s answered %s: the held credentials were not put to the test", name, code)
	}
	t.Logf("%s held %s; %d AssumeRole answered %s meanwhile; still served", name, held, failed, code)

	nn := "new-" + strings.ToLower(string(code))
	nid := b.run(t, nn, "app=deploy")
	n := auditCount(b.g)
	w := b.creds(t, nid, "deployer")
	if w.status != 503 || w.took > 2*time.Second+b.execBase+time.Second {
		t.Errorf("new caller %s during %s: %+v; want 503 within about 2 s", nn, code, w)
	}
	noNodeRole(t, nn, w.body)
	wantRoleEvent(t, lastCredsEvent(t, b.g, n), "deployer", nn, 503)
	t.Logf("new caller %s: %d after %v (docker exec alone %v)", nn, w.status, w.took.Round(time.Millisecond), b.execBase.Round(time.Millisecond))
}

// slowSTS: STS answers after 2 s. A first read (a host user: no container
// event prefetches it) answers within the bound with an error; once the
// fetch is done the next read gets the credentials.
func (b *rolesBench) slowSTS(t *testing.T) {
	session := fmt.Sprintf("host.uid-%d", b.slow.UID)
	b.sts.SetRoleFault("slow-agent", fakests.Fault{Delay: 2 * time.Second})
	defer b.sts.ClearFaults()
	body, status, took := b.curlAs(t, b.slow, credsPath+"slow-agent")
	if status != 503 || took > 2500*time.Millisecond {
		t.Errorf("first read with STS slow: %d after %v (%q); want 503 within about 2 s", status, took, body)
	}
	noNodeRole(t, "slow first read", body)
	t.Logf("first read: %d after %v", status, took.Round(time.Millisecond))
	b.waitCall(t, session, fakests.OK)
	body, status, took = b.curlAs(t, b.slow, credsPath+"slow-agent")
	if status != 200 || accessKey(body) != minted("slow-agent", session, 1) {
		t.Errorf("read after the fetch: %d %q; want %s", status, body, minted("slow-agent", session, 1))
	}
	t.Logf("after the fetch: %d %s in %v", status, accessKey(body), took.Round(time.Millisecond))
}

// accessDenied: 500, and the denial remembered for about 30 s: reads
// every 3 s make no second STS call for the session until 30 s after the
// first; a read after that asks STS again (denied again: 500).
func (b *rolesBench) accessDenied(t *testing.T) {
	const remembered = 30 * time.Second // sts.DeniedFor
	b.sts.SetRoleFault("deployer", fakests.Fault{Code: fakests.AccessDenied})
	defer b.sts.ClearFaults()
	id := b.run(t, "denied-a", "app=deploy")
	read := func(what string) {
		t.Helper()
		n := auditCount(b.g)
		w := b.creds(t, id, "deployer")
		if w.status != 500 {
			t.Errorf("%s: %+v; want 500", what, w)
		}
		noNodeRole(t, "denied-a", w.body)
		wantRoleEvent(t, lastCredsEvent(t, b.g, n), "deployer", "denied-a", 500)
	}
	read("first read")
	first := b.waitCall(t, "denied-a", string(fakests.AccessDenied))[0].Time
	reads := 1
	for time.Since(first) < remembered-3*time.Second {
		time.Sleep(3 * time.Second)
		read(fmt.Sprintf("read at +%v", time.Since(first).Round(time.Second)))
		reads++
	}
	calls := b.callsOf(t, "denied-a")
	if len(calls) != 1 || calls[0].Outcome != string(fakests.AccessDenied) {
		t.Errorf("STS calls for denied-a over %v: %+v; want one AccessDenied", time.Since(first).Round(time.Millisecond), calls)
	}
	t.Logf("%d reads over %v after the denial: 500 each; %d STS call", reads, time.Since(first).Round(time.Millisecond), len(calls))
	time.Sleep(time.Until(first.Add(remembered + time.Second)))
	read("read after the denial expired")
	calls = b.callsOf(t, "denied-a")
	if len(calls) != 2 {
		t.Errorf("STS calls for denied-a at +%v: %d; want a second one once the denial expired", time.Since(first).Round(time.Second), len(calls))
	} else {
		t.Logf("at +%v: STS asked again (%s, %v after the first)", time.Since(first).Round(time.Second), calls[1].Outcome, calls[1].Time.Sub(calls[0].Time).Round(time.Millisecond))
	}
}

// bucket: containers with roles start at once; every one gets its own
// credentials, one AssumeRole per session, and the calls stay within
// roles.sts_rate and sts_burst.
func (b *rolesBench) bucket(t *testing.T) {
	const n = 8
	b.sts.ClearCalls()
	ids := make([]string, n)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := b.e.Run(b.d.Docker("run", "-d", "--name", fmt.Sprintf("burst-%d", i), "--label", "app=ci", clientImage, "sleep", "3600"))
			ids[i], errs[i] = strings.TrimSpace(r.Stdout), r.Err
		}()
	}
	wg.Wait()
	for i, id := range ids {
		if errs[i] != nil {
			t.Fatalf("docker run burst-%d: %v", i, errs[i])
		}
		t.Cleanup(func() { b.e.Run(b.d.Docker("rm", "-f", id)) })
	}
	for i, id := range ids {
		name := fmt.Sprintf("burst-%d", i)
		var w wgetResult
		testbed.WaitFor(t, name+"'s credentials", func() bool {
			w = b.creds(t, id, "ci-builder")
			return w.status == 200
		})
		if accessKey(w.body) != minted("ci-builder", name, 1) {
			t.Errorf("%s: %s, want %s", name, accessKey(w.body), minted("ci-builder", name, 1))
		}
	}
	calls := b.sts.Calls()
	sort.Slice(calls, func(i, j int) bool { return calls[i].Time.Before(calls[j].Time) })
	per := map[string]int{}
	for _, c := range calls {
		per[c.RoleSessionName]++
	}
	for i := range n {
		if k := per[fmt.Sprintf("burst-%d", i)]; k != 1 {
			t.Errorf("burst-%d: %d STS calls, want 1", i, k)
		}
	}
	var times []string
	for i := range calls {
		times = append(times, calls[i].Time.Sub(calls[0].Time).Round(time.Millisecond).String())
		for j := i; j < len(calls); j++ {
			allowed := float64(rolesBurst) + rolesRate*calls[j].Time.Sub(calls[i].Time).Seconds() + 1 // +1: a token refilled mid-window
			if float64(j-i+1) > allowed {
				t.Errorf("calls %d..%d: %d calls in %v; the bucket (rate %d/s, burst %d) allows %.1f", i, j, j-i+1, calls[j].Time.Sub(calls[i].Time), rolesRate, rolesBurst, allowed)
			}
		}
	}
	t.Logf("%d containers at once: %d STS calls at +%s", n, len(calls), strings.Join(times, " +"))
}

// adminAndMetrics: `imdsguard roles` lists the sessions and expiries; the
// STS call counters moved by outcome.
func (b *rolesBench) adminAndMetrics(t *testing.T, before map[string]float64) {
	r := b.e.Run(guardCmd(b.e, b.h, b.g, "roles"))
	t.Logf("imdsguard roles:\n%s", r.Stdout)
	if r.Err != nil || !regexp.MustCompile(`ci-builder\s+ci-a\s+\d{4}-\d\d-\d\dT\S+Z \(in 1[0-5]m\S*\)\s+`+b.ciA[:12]).MatchString(r.Stdout) {
		t.Errorf("imdsguard roles: want ci-builder, session ci-a, its expiry in about 15 min and container %.12s: %v", b.ciA, r)
	}
	if strings.Contains(r.Stdout, "burst-") || strings.Contains(r.Stdout, "denied-a") {
		t.Errorf("imdsguard roles lists sessions of removed containers: %s", r.Stdout)
	}
	r = b.e.Run(guardCmd(b.e, b.h, b.g, "roles", "--json"))
	var list []map[string]any
	if err := json.Unmarshal([]byte(r.Stdout), &list); err != nil || r.Err != nil {
		t.Fatalf("roles --json: %v %v", err, r)
	}
	sessions := map[string]bool{}
	for _, s := range list {
		for _, v := range s {
			if str(v) != "" {
				sessions[str(v)] = true
			}
		}
	}
	for _, want := range []string{"ci-a", fmt.Sprintf("host.uid-%d", b.user.UID)} {
		if !sessions[want] {
			t.Errorf("roles --json has no session %s: %s", want, r.Stdout)
		}
	}
	after := b.stsMetrics(t)
	t.Logf("imdsguard_sts_calls_total before %v, after %v", before, after)
	for _, k := range []string{"ok", "throttled", "server_error", "denied"} {
		if after[k] <= before[k] {
			t.Errorf("imdsguard_sts_calls_total{outcome=%q} did not move: %v -> %v", k, before[k], after[k])
		}
	}
}
