package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/tools/testbed"
)

// The runtime tests put real container runtimes (Debian's dockerd,
// containerd with ctr, the CNI bridge plugin) inside a Host's host
// namespace, next to imdsguard and its rules, and run the real AWS SDK
// clients (bin/imdsclient-static) in their containers, from images made
// offline (testbed.ClientImage).

// clientImage is the name of the client image in a test's runtime.
const clientImage = "imdsguard-client:test"

// rtEvent is an audit event with the caller's container id.
type rtEvent struct {
	audit
	Container string
}

func (e rtEvent) String() string {
	c := e.Container
	if len(c) > 12 {
		c = c[:12]
	}
	return e.audit.String() + " container=" + c
}

// rtEvents returns g's audit events after the first n, with container ids.
func rtEvents(g *testbed.Guard, n int) []rtEvent {
	base := audits(g)
	var ids []string
	for _, ev := range g.Events() {
		if ev["msg"] != "imds request" {
			continue
		}
		c, _ := ev["caller"].(map[string]any)
		ids = append(ids, str(c["container"]))
	}
	var out []rtEvent
	for i := n; i < len(base) && i < len(ids); i++ {
		out = append(out, rtEvent{audit: base[i], Container: ids[i]})
	}
	return out
}

// rtCase is one client run inside a container and what its last audit
// event must say.
type rtCase struct {
	name     string
	cmd      testbed.Cmd
	want     string // in stdout (or, for a refused run, in stdout+stderr)
	ok       bool   // the run must exit 0
	version  string // last event's version
	decision string // last event's decision
	status   int    // last event's status
}

// caller checks that an event names the right caller; "" when it does.
type callerCheck func(rtEvent) string

// runRuntimeCases runs each case and checks its run and every event it
// caused against who; it logs how long each run took.
func runRuntimeCases(t *testing.T, e *testbed.Env, g *testbed.Guard, who callerCheck, cases []rtCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := len(audits(g))
			start := time.Now()
			r := e.Run(c.cmd)
			took := time.Since(start)
			out := r.Stdout + r.Stderr
			if (r.Err == nil) != c.ok || !strings.Contains(out, c.want) {
				t.Fatalf("want ok=%v and %q: %v", c.ok, c.want, r)
			}
			var evs []rtEvent
			testbed.WaitFor(t, "audit events of "+c.name, func() bool {
				evs = rtEvents(g, n)
				return len(evs) > 0 && evs[len(evs)-1].Version == c.version
			})
			for _, ev := range evs {
				if why := who(ev); why != "" {
					t.Errorf("event %v: %s", ev, why)
				}
			}
			last := evs[len(evs)-1]
			if last.Decision != c.decision || last.Status != c.status {
				t.Errorf("last event %v; want %s %s %d", last, c.version, c.decision, c.status)
			}
			t.Logf("%s (run %v); %d events, last: %v", lastLine(r.Stdout), took.Round(time.Millisecond), len(evs), last)
		})
	}
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// containerCaller wants class container, the container's id, its source
// address and ingress interface.
func containerCaller(id, source, iface string) callerCheck {
	return func(ev rtEvent) string {
		switch {
		case ev.Class != "container":
			return "class " + ev.Class + ", want container"
		case ev.Container != id:
			return "container " + ev.Container + ", want " + id
		case ev.Source != source:
			return "source " + ev.Source + ", want " + source
		case ev.Interface != iface:
			return "interface " + ev.Interface + ", want " + iface
		}
		return ""
	}
}

// v1v2Denied are the three requests every runtime test makes from a
// container: the legacy SDK's plain IMDSv1 GET (upgraded), the v2 SDK's
// token session (no fallback), and a path the default policy denies to
// every caller but host root. exec turns argv into a run in the container;
// base "" is the SDKs' built-in endpoint (http://169.254.169.254).
func v1v2Denied(exec func(argv ...string) testbed.Cmd, base string) []rtCase {
	denied := base
	if denied == "" {
		denied = testbed.IMDSURL(4)
	}
	return []rtCase{
		{name: "sdk-v1", cmd: exec("/bin/imdsclient", "-sdk", "v1", "-endpoint", base, "-get", "instance-id"),
			want: testbed.AEMMInstanceID, ok: true, version: "v1", decision: "allow", status: 200},
		{name: "sdk-v2", cmd: exec("/bin/imdsclient", "-sdk", "v2", "-no-fallback", "-endpoint", base, "-get", "instance-id"),
			want: testbed.AEMMInstanceID, ok: true, version: "v2", decision: "allow", status: 200},
		{name: "denied-iam", cmd: exec("/bin/wget", "-q", "-O-", denied+"/latest/meta-data/iam/security-credentials/"),
			want: "403", ok: false, version: "v1", decision: "deny", status: 403},
	}
}

// forwardCounter counts, in the host namespace's mangle FORWARD (a table
// imdsguard never touches), the TCP SYNs routed towards IMDS: metadata
// traffic that went past imdsguard. It returns a function reading it.
func forwardCounter(t *testing.T, h *testbed.Host) func() int {
	t.Helper()
	h.Shell(h.HostNS, `iptables -t mangle -A FORWARD -p tcp -d 169.254.169.254 --dport 80 --syn -m comment --comment e2e-past-guard
ip6tables -t mangle -A FORWARD -p tcp -d fd00:ec2::254 --dport 80 --syn -m comment --comment e2e-past-guard`)
	return func() int {
		return ruleCounter(t, h, h.HostNS, "iptables -t mangle -S FORWARD -v; ip6tables -t mangle -S FORWARD -v", "e2e-past-guard")
	}
}

// onlyGuardReachedIMDS fails t when AEMM logged a request that did not come
// from imdsguard (its User-Agent), or the counter saw routed metadata SYNs.
func onlyGuardReachedIMDS(t *testing.T, h *testbed.Host, past func() int) {
	t.Helper()
	reqs := bothAEMM(h)
	for _, r := range reqs {
		if !strings.HasPrefix(r.UserAgent, "imdsguard/") {
			t.Errorf("AEMM served %+v: not imdsguard's request", r)
		}
	}
	n := past()
	if n != 0 {
		t.Errorf("%d metadata connections were routed past imdsguard towards IMDS", n)
	}
	t.Logf("IMDS saw %d requests, all imdsguard's; %d metadata SYNs forwarded past it", len(reqs), n)
}
