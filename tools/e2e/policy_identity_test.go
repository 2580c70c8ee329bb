package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imdsguard/imdsguard/internal/testenv"
	"github.com/imdsguard/imdsguard/tools/testbed"
)

// TestPolicyLegacyV1Client: a legacy application that speaks only IMDSv1
// (aws-sdk-go v1.25.0, `imdsclient -sdk v1`, built-in endpoint
// 169.254.169.254), run as imdsapp (group legacy) in the host namespace:
// the instance id is served through the redirect (audit: v1, allow, rule
// legacy); its role credentials are refused with 403, whether it asks for
// them the SDK's way (-creds) or lists the directory itself.
func TestPolicyLegacyV1Client(t *testing.T) {
	b := newPolicyBed(t, "enforce", "")
	app := b.hostApp()
	cases := []struct {
		name     string
		args     []string
		wantOK   bool
		want     string
		decision string
		status   int
		path     string
	}{
		{"get instance-id", []string{"-get", "instance-id"}, true, testbed.AEMMInstanceID, "allow", 200, instanceIDPath},
		{"creds", []string{"-creds"}, false, "HTTP 403", "deny", 403, credsDir},
		{"get iam/security-credentials/", []string{"-get", "iam/security-credentials/"}, false, "HTTP 403", "deny", 403, credsDir},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := auditCount(b.g)
			r := b.e.Run(b.as(app, b.e.IMDSClient("v1", "", c.args...)))
			checkClient(t, r, c.wantOK, c.want)
			evs := eventsFor(t, b.g, n, 1)
			for _, ev := range evs {
				if ev.Class != "host" || ev.UID != int(b.app.UID) || ev.User != appUser || ev.Comm != "imdsclient" || ev.Version != "v1" || ev.Rule != "legacy" {
					t.Errorf("event %v: want host imdsapp imdsclient v1 rule legacy", ev)
				}
			}
			last := evs[len(evs)-1]
			wantEvent(t, c.name, &last, c.decision, "legacy", c.status, c.path)
			if strings.Contains(r.Stdout+r.Stderr, testbed.AEMMAccessKeyID) {
				t.Errorf("the client saw the AccessKeyId: %v", r)
			}
			t.Logf("%s: %s; %d events, last: %v", c.name, strings.TrimSpace(firstLine(r.Stdout+r.Stderr)), len(evs), last)
		})
	}
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func withToken(r helperRequest, tok string) helperRequest {
	r.Token = tok
	return r
}

// TestPolicyTokenReplay: tokens are bound to their caller. imdsagent gets a
// token through the redirect and reads the credentials with it (200, v2,
// rule agent); imdsapp presenting the same token gets 401 even for the
// instance id; root in c1 presenting it gets 401; a token c1 got is
// worthless to root on the host. The agent's token also works for the
// agent over the other family (bound to the uid, not the address).
func TestPolicyTokenReplay(t *testing.T) {
	b := newPolicyBed(t, "enforce", "")
	secrets := secretsOf(t, b.h)
	for _, v := range []int{4, 6} {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			agent := b.hostAgent()
			out, evs := b.sendAudited(t, agent, putToken(v), getV2(v, credsDir), getV2(v, instanceIDPath))
			tok := string(out.Results[0].Body)
			if out.Results[0].Status != 200 || tok == "" {
				t.Fatalf("agent's token PUT: %+v", out.Results[0])
			}
			for i, r := range out.Results[1:] {
				if r.Status != 200 {
					t.Errorf("agent %s with its own token: %q", r.Req, r.StatusLine)
				}
				wantEvent(t, "agent with its own token", evs[i+1], "allow", "agent", 200, "")
				if evs[i+1] != nil && evs[i+1].Version != "v2" {
					t.Errorf("agent with its own token: version %q, want v2", evs[i+1].Version)
				}
			}
			if !strings.Contains(string(out.Results[1].Body), testbed.AEMMRole) {
				t.Errorf("agent's credentials listing lacks the role: %q", out.Results[1].Body)
			}

			other := 10 - v // the other family
			replays := []struct {
				who  caller
				reqs []helperRequest
				want int
			}{
				{b.hostApp(), []helperRequest{withToken(get(v, instanceIDPath), tok), withToken(get(v, credsDir), tok)}, 401},
				{b.hostAppNoGroups(), []helperRequest{withToken(get(v, instanceIDPath), tok)}, 401},
				{b.c1Root(), []helperRequest{withToken(get(v, instanceIDPath), tok), withToken(get(v, credsDir), tok)}, 401},
				{b.hostAgent(), []helperRequest{withToken(get(other, credsDir), tok)}, 200},
			}
			for _, rp := range replays {
				out, evs := b.sendAudited(t, rp.who, rp.reqs...)
				for i, r := range out.Results {
					ev := evs[i]
					if r.Status != rp.want {
						t.Errorf("%v presents the agent's token: %s: %q, want %d; event %v", rp.who, r.Req, r.StatusLine, rp.want, ev)
					}
					if rp.want != 200 {
						if l := leaks(r.Body, secrets); len(l) > 0 {
							t.Errorf("%v: %s leaks %q", rp.who, r.Req, l)
						}
						if ev != nil && ev.Decision == "allow" {
							t.Errorf("%v: event %v", rp.who, ev)
						}
					}
					t.Logf("%v presents the agent's token: %s -> %d; event %v", rp.who, r.Req, r.Status, ev)
				}
			}

			c1, _ := b.sendAudited(t, b.c1Root(), putToken(v), getV2(v, instanceIDPath))
			ctok := string(c1.Results[0].Body)
			if c1.Results[0].Status != 200 || c1.Results[1].Status != 200 {
				t.Fatalf("c1 with its own token: %q, %q", c1.Results[0].StatusLine, c1.Results[1].StatusLine)
			}
			out, evs = b.sendAudited(t, b.hostRoot(), withToken(get(v, instanceIDPath), ctok))
			if out.Results[0].Status != 401 {
				t.Errorf("host root presents c1's token: %q, want 401; event %v", out.Results[0].StatusLine, evs[0])
			}
			t.Logf("host root presents c1's token: %d; event %v", out.Results[0].Status, evs[0])
		})
	}
}

// TestPolicyContainerCIDR: c1's callers (198.51.100.2, 2001:db8:2::2 behind
// veth-c1) are decided by the containers rule, matched by source CIDR:
// placement and the instance id are served, the credentials and user data
// are not, over both families, for IMDSv1 and IMDSv2. It is the same for
// c1's root (uid 0, not the host's root) and for a c1 process running as
// the agent's uid: users and groups never match a container caller.
func TestPolicyContainerCIDR(t *testing.T) {
	b := newPolicyBed(t, "enforce", "")
	secrets := secretsOf(t, b.h)
	for _, who := range []caller{b.c1Root(), b.c1Agent()} {
		for _, v := range []int{4, 6} {
			t.Run(fmt.Sprintf("%s/v%d", who.name, v), func(t *testing.T) {
				reqs := []helperRequest{
					get(v, "/latest/meta-data/placement/availability-zone"),
					get(v, instanceIDPath),
					get(v, credsDir),
					get(v, "/latest/user-data"),
					putToken(v),
					getV2(v, "/latest/meta-data/placement/region"),
					getV2(v, credsDir+testbed.AEMMRole),
				}
				want := []int{200, 200, 403, 403, 200, 200, 403}
				out, evs := b.sendAudited(t, who, reqs...)
				for i, r := range out.Results {
					ev := evs[i]
					if r.Status != want[i] {
						t.Errorf("%s: %q, want %d", r.Req, r.StatusLine, want[i])
					}
					if why := b.identityProblem(who, v, out, ev); why != "" {
						t.Errorf("%s: %s", r.Req, why)
					}
					if ev != nil && ev.Rule != "containers" {
						t.Errorf("%s: event %v, want rule containers", r.Req, ev)
					}
					if l := leaks(r.Body, secrets); len(l) > 0 && r.Req.Method != "PUT" {
						t.Errorf("%s: leaks %q", r.Req, l)
					}
				}
				t.Logf("%v v%d: first event %v", who, v, evs[0])
				if ev := evs[0]; ev != nil && ev.UIDKnown {
					t.Logf("c1's %s is attested as uid %d (user %q) and still gets rule %q", who.name, ev.UID, ev.User, ev.Rule)
				}
			})
		}
	}
}

// TestPolicySocketOwner: the kernel attests a socket's owner, the user who
// made it, not the user of the process that uses it. A helper connects to
// 169.254.169.254:80 (and [fd00:ec2::254]:80) as root, drops to imdsapp for
// good (setgroups, setgid, setuid), then sends GET for the credentials
// listing on that socket: served (rule root), and the audit event names uid
// 0, user root, with the helper's pid and comm. The reverse: a root process
// that makes the socket with its effective uid set to imdsapp and goes
// back to root before it sends is judged as imdsapp (no users/groups entry:
// rule others, 403).
func TestPolicySocketOwner(t *testing.T) {
	b := newPolicyBed(t, "enforce", "")
	for _, v := range []int{4, 6} {
		t.Run(fmt.Sprintf("root then imdsapp v%d", v), func(t *testing.T) {
			out, ev := b.setuid(t, "root-then-user", get(v, credsDir))
			r := out.Results[0]
			t.Logf("helper pid %d comm %q (%s), now uid %d: %q; audit event %v", out.PID, out.Comm, out.Note, out.EUID, r.StatusLine, ev)
			if out.EUID != int(b.app.UID) {
				t.Fatalf("helper did not drop to imdsapp: euid %d", out.EUID)
			}
			if r.Status != 200 || !strings.Contains(string(r.Body), testbed.AEMMRole) {
				t.Errorf("request on root's socket after setuid(imdsapp): %q %q, want 200 with the role (root's socket)", r.StatusLine, r.Body)
			}
			wantEvent(t, "root's socket used by imdsapp", ev, "allow", "root", 200, credsDir)
			if ev != nil && (!ev.UIDKnown || ev.UID != 0 || ev.User != "root" || ev.PID != out.PID || ev.Comm != out.Comm) {
				t.Errorf("event caller uid %d user %q pid %d comm %q; want uid 0 user root pid %d comm %q (the socket's owner, the helper process)",
					ev.UID, ev.User, ev.PID, ev.Comm, out.PID, out.Comm)
			}
		})
		t.Run(fmt.Sprintf("imdsapp then root v%d", v), func(t *testing.T) {
			out, ev := b.setuid(t, "user-then-root", get(v, credsDir))
			r := out.Results[0]
			t.Logf("helper pid %d comm %q (%s): %q; audit event %v", out.PID, out.Comm, out.Note, r.StatusLine, ev)
			if out.EUID != 0 {
				t.Fatalf("helper did not go back to root: euid %d", out.EUID)
			}
			if r.Status != 403 {
				t.Errorf("request by root on a socket made as imdsapp: %q, want 403 (imdsapp's socket)", r.StatusLine)
			}
			wantEvent(t, "imdsapp's socket used by root", ev, "deny", "others", 403, credsDir)
			if ev != nil && (ev.UID != int(b.app.UID) || ev.User != appUser || ev.PID != out.PID) {
				t.Errorf("event caller uid %d user %q pid %d; want uid %d user %s pid %d", ev.UID, ev.User, ev.PID, b.app.UID, appUser, out.PID)
			}
		})
	}
}

// setuid runs the setuid helper in the host namespace (as root) with r and
// returns its output and r's audit event.
func (b *policyBed) setuid(t *testing.T, order string, r helperRequest) (*helperOutput, *event) {
	t.Helper()
	n := auditCount(b.g)
	job := helperJob{Requests: []helperRequest{r}, Order: order, UID: int(b.app.UID), GID: int(b.app.GID)}
	out := runHelperCmd(t, b.e, helper(t, b.e, b.h.HostNS, "setuid", job))
	evs := eventsFor(t, b.g, n, 1)
	return out, pair(out.Results, evs)[0]
}

// TestPolicyAuditEventFields: one audit event per request, with every
// field, for a host request (imdsapp, IMDSv1, a non-canonical target that
// is allowed; then IMDSv2, denied) and a container request (root in c1,
// IMDSv2, allowed; then one from a process in a container's cgroup, whose
// container id the event must name).
func TestPolicyAuditEventFields(t *testing.T) {
	b := newPolicyBed(t, "enforce", "")
	const target = "//latest/meta-data/./placement/availability-zone"
	const canonical = "/latest/meta-data/placement/availability-zone"

	check := func(t *testing.T, ev *event, want map[string]any) {
		t.Helper()
		got := map[string]any{
			"class": ev.Class, "source": ev.Source, "uid": ev.UID, "user": ev.User, "pid": ev.PID,
			"comm": ev.Comm, "exe": ev.Exe, "container": ev.Container, "interface": ev.Interface,
			"method": ev.Method, "path": ev.Path, "version": ev.Version, "decision": ev.Decision,
			"rule": ev.Rule, "status": ev.Status,
		}
		for k, w := range want {
			if got[k] != w {
				t.Errorf("event %s = %v, want %v", k, got[k], w)
			}
		}
		if !ev.UIDKnown || !ev.HasPID {
			t.Errorf("event lacks uid or pid: %v", ev.Raw)
		}
		if ev.Reason == "" || !strings.Contains(ev.Reason, ev.Rule) {
			t.Errorf("event reason %q does not name rule %q", ev.Reason, ev.Rule)
		}
		t.Logf("audit event: %v", ev.Raw)
	}

	t.Run("host", func(t *testing.T) {
		app := b.hostApp()
		out, evs := b.sendAudited(t, app, get(4, target), putToken(4), getV2(4, credsDir))
		if len(events(b.g)) == 0 {
			t.Fatal("no events")
		}
		if out.Results[0].Status != 200 || out.Results[2].Status != 403 {
			t.Fatalf("statuses %d, %d; want 200, 403", out.Results[0].Status, out.Results[2].Status)
		}
		for i, ev := range evs {
			if ev == nil {
				t.Fatalf("request %d (%s): no event (one per request)", i, out.Results[i].Req)
			}
		}
		base := map[string]any{
			"class": "host", "source": testbed.HostUpV4, "uid": int(b.app.UID), "user": appUser, "pid": out.PID,
			"comm": out.Comm, "exe": out.Exe, "container": "", "interface": "", "rule": "legacy",
		}
		check(t, evs[0], merge(base, map[string]any{"method": "GET", "path": canonical, "version": "v1", "decision": "allow", "status": 200}))
		check(t, evs[1], merge(base, map[string]any{"method": "PUT", "path": "/latest/api/token", "decision": "allow", "status": 200}))
		check(t, evs[2], merge(base, map[string]any{"method": "GET", "path": credsDir, "version": "v2", "decision": "deny", "status": 403}))
		if evs[0].HasContainer {
			t.Errorf("host event carries a container field: %v", evs[0].Raw)
		}
	})

	t.Run("container", func(t *testing.T) {
		c := b.c1Root()
		out, evs := b.sendAudited(t, c, putToken(6), getV2(6, target))
		if out.Results[1].Status != 200 || evs[1] == nil {
			t.Fatalf("c1 GET: %q, event %v", out.Results[1].StatusLine, evs[1])
		}
		check(t, evs[1], map[string]any{
			"class": "container", "source": testbed.C1V6, "interface": testbed.C1If, "uid": 0, "user": "",
			"pid": out.PID, "comm": out.Comm, "exe": out.Exe, "container": "",
			"method": "GET", "path": canonical, "version": "v2", "decision": "allow", "rule": "containers", "status": 200,
		})
	})

	t.Run("container id from the cgroup", func(t *testing.T) {
		id, cg := containerCgroup(t)
		c := b.c1Root()
		n := auditCount(b.g)
		cmd := helper(t, b.e, "", "requests", helperJob{Requests: []helperRequest{get(4, target)}})
		// Join the cgroup, then become the helper in c1 (ip netns exec
		// execs it: same pid). The cgroup is joined outside: ip netns exec
		// mounts a sysfs of its own, without the cgroup hierarchies.
		cmd.Args = append([]string{"-c", `echo $$ > "$1/cgroup.procs" && shift && exec "$@"`, "sh", cg,
			"ip", "netns", "exec", c.ns, cmd.Path}, cmd.Args...)
		cmd.Path = "/bin/sh"
		out := runHelperCmd(t, b.e, cmd)
		ev := pair(out.Results, eventsFor(t, b.g, n, 1))[0]
		if ev == nil {
			t.Fatal("no event")
		}
		check(t, ev, map[string]any{
			"class": "container", "source": testbed.C1V4, "interface": testbed.C1If, "uid": 0, "user": "",
			"pid": out.PID, "comm": out.Comm, "exe": out.Exe, "container": id,
			"method": "GET", "path": canonical, "version": "v1", "decision": "allow", "rule": "containers", "status": 200,
		})
	})
}

func merge(a, b map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// containerCgroup makes a cgroup whose path looks like a docker
// container's (docker-<64 hex>.scope) in a cgroup hierarchy of this
// machine, and removes it after the test (the helper has exited by then).
// It skips the test when no hierarchy lets it.
func containerCgroup(t *testing.T) (id, dir string) {
	t.Helper()
	pid := fmt.Sprint(os.Getpid())
	id = strings.Repeat("e2e0", 16)[:64-len(pid)] + pid // 64 hex digits
	for _, root := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup/pids", "/sys/fs/cgroup"} {
		if _, err := os.Stat(filepath.Join(root, "cgroup.procs")); err != nil {
			continue
		}
		parent := filepath.Join(root, fmt.Sprintf("imdsguard-e2e-%d", os.Getpid()))
		dir = filepath.Join(parent, "docker-"+id+".scope")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			_ = os.Remove(parent)
			continue
		}
		t.Cleanup(func() {
			// The helper was reaped; the kernel may take a moment to empty the cgroup.
			testbed.WaitFor(t, "cgroup "+dir+" removed", func() bool {
				err := os.Remove(dir)
				return err == nil || os.IsNotExist(err)
			})
			_ = os.Remove(parent)
		})
		return id, dir
	}
	testenv.Skipf(t, "no cgroup hierarchy where a container-like cgroup can be made")
	return "", ""
}

// TestPolicySourcesHostCaller: `sources` is how containers, callers
// through PREROUTING, are matched (docs/policy.md, "How a rule applies":
// `users` and `groups` name processes of this host, `sources` and
// `interfaces` name containers). A host process stays a host caller whatever
// local address its socket has. With a containers rule that lets
// containers read the role credentials (as the example policy
// may), imdsapp without its group (rule others: credentials denied) binds
// its socket to the host's own address on c1's link (198.51.100.1,
// 2001:db8:2::1: inside the containers CIDRs, and any local user may bind
// it) and asks for the credentials: it must still be denied by rule
// others, not served by rule containers. Controls: c1's root is served
// (rule containers); imdsapp without the bind is denied (rule others).
func TestPolicySourcesHostCaller(t *testing.T) {
	b := newPolicyBed(t, "enforce", "")
	rules := strings.Replace(suiteRules,
		`allow: ["/meta-data/placement/**", "/meta-data/instance-id"]`,
		`allow: ["/meta-data/placement/**", "/meta-data/instance-id", "/meta-data/iam/**"]`, 1)
	n := eventCount(b.g, "policy reloaded")
	if err := b.h.ReloadGuard(b.g, testbed.HostGuardConfig{Extra: "policy:\n  rules:\n" + rules}); err != nil {
		t.Fatal(err)
	}
	testbed.WaitFor(t, "policy reloaded", func() bool { return eventCount(b.g, "policy reloaded") > n })
	for _, v := range []int{4, 6} {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			gw := testbed.C1GwV4
			if v == 6 {
				gw = testbed.C1GwV6
			}
			out, evs := b.sendAudited(t, b.c1Root(), get(v, credsDir))
			if out.Results[0].Status != 200 {
				t.Errorf("control: c1's root: %q, want 200", out.Results[0].StatusLine)
			}
			wantEvent(t, "control: c1's root", evs[0], "allow", "containers", 200, credsDir)

			app := b.hostAppNoGroups()
			bound := get(v, credsDir)
			bound.Bind = gw
			out, evs = b.sendAudited(t, app, get(v, credsDir), bound)
			if out.Results[0].Status != 403 {
				t.Errorf("control: imdsapp: %q, want 403", out.Results[0].StatusLine)
			}
			wantEvent(t, "control: imdsapp", evs[0], "deny", "others", 403, credsDir)
			r, ev := out.Results[1], evs[1]
			t.Logf("imdsapp, socket bound to %s: %q; event %v", gw, r.StatusLine, ev)
			if r.Status != 403 || strings.Contains(string(r.Body), testbed.AEMMRole) {
				t.Errorf("imdsapp with its socket bound to %s (a host address inside the containers CIDR): %q %.60q, want 403: a host user got the containers rule",
					gw, r.StatusLine, r.Body)
			}
			if ev != nil && (ev.Class != "host" || ev.Rule != "others") {
				t.Errorf("event %v: want a host caller decided by rule others", ev)
			}
		})
	}
}
