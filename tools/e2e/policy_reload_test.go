package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/tools/testbed"
)

// phase is how long (at least) the hammers run in each of the three
// phases of TestPolicyReloadUnderLoad, besides a count of requests: load,
// not a bound.
const phase = time.Second

// metricsExtra turns on Prometheus metrics in the host namespace.
const metricsExtra = "metrics: {listen: \"" + metricsAddr + "\"}\n"

// brokenRule is put first in the rules of the broken file: a bad pattern
// and an unknown field ("allw").
const brokenRule = `    - name: broken
      match: {users: [` + appUser + `]}
      allow: ["/meta-data/iam/**x"]
      allw: ["/**"]
`

// TestPolicyReloadUnderLoad: while six helper processes hammer the
// redirect (imdsapp and imdsagent, IPv4 and IPv6, each a loop of IMDSv2
// and IMDSv1 reads of the instance id and of the credentials listing, a
// connection per request; and imdsapp on one keep-alive connection per
// family, which must see the new policy too), an
// invalid file (a bad pattern and an unknown field) is written and SIGHUP
// sent: the daemon logs "reload refused" naming file:line:column, the
// failed-reload counter is 1, and every answer stays the old policy's
// (imdsapp's credentials 403 by rule legacy). Then a valid change that
// moves imdsapp to a rule of its own (everything allowed) and SIGHUP: new
// requests get it. No request fails at any point: every one is answered
// 200 or, for imdsapp's credentials under the old policy, 403.
func TestPolicyReloadUnderLoad(t *testing.T) {
	b := newPolicyBed(t, "enforce", metricsExtra)
	if got := reloadMetric(t, b, "failed"); got != 0 {
		t.Fatalf("failed reloads before any reload: %d", got)
	}
	stop := filepath.Join(stopDir(t), "stop")
	type hammer struct {
		c  caller
		v  int
		ka bool // one keep-alive connection: the policy applies per request, not per connection
	}
	hammers := []hammer{
		{b.hostApp(), 4, false}, {b.hostApp(), 6, false}, {b.hostAgent(), 4, false}, {b.hostAgent(), 6, false},
		{b.hostApp(), 4, true}, {b.hostApp(), 6, true},
	}
	cmds := make([]testbed.Cmd, len(hammers))
	for i, hm := range hammers {
		job := helperJob{
			Prelude:     []helperRequest{putToken(hm.v)},
			Requests:    []helperRequest{getV2(hm.v, credsDir), get(hm.v, instanceIDPath), get(hm.v, credsDir), getV2(hm.v, instanceIDPath)},
			StopFile:    stop,
			MaxDuration: 40 * time.Second,
			Pause:       2 * time.Millisecond,
			KeepAlive:   hm.ka,
		}
		cmds[i] = b.as(hm.c, helper(t, b.e, "", "hammer", job))
	}
	results := make([]testbed.Result, len(hammers))
	var wg sync.WaitGroup
	for i := range cmds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = b.e.Run(cmds[i])
		}()
	}
	stopped := false
	stopAll := func() {
		if !stopped {
			stopped = true
			if err := os.WriteFile(stop, nil, 0o644); err != nil {
				t.Errorf("stop file: %v", err)
			}
			wg.Wait()
		}
	}
	defer stopAll()

	// Phase 1: the hammers run under the suite's policy.
	n0 := auditCount(b.g)
	testbed.WaitFor(t, "the hammers run", func() bool { return auditCount(b.g) >= n0+100 })
	time.Sleep(phase)

	// Phase 2: a broken file.
	current, err := os.ReadFile(b.g.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(current), "  rules:\n", "  rules:\n"+brokenRule, 1)
	if broken == string(current) {
		t.Fatalf("no rules: in %s", current)
	}
	badSpots := []string{position(b.g.ConfigPath, broken, "allw:"), position(b.g.ConfigPath, broken, `"/meta-data/iam/**x"`)}
	refused := strings.Count(b.g.Stderr(), "reload refused")
	if err := os.WriteFile(b.g.ConfigPath, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := b.g.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testbed.WaitFor(t, "reload refused logged", func() bool { return strings.Count(b.g.Stderr(), "reload refused") > refused })
	tBadSeen := time.Now()
	var refusal map[string]any
	for _, ev := range b.g.Events() {
		if strings.Contains(str(ev["msg"]), "reload refused") {
			refusal = ev
		}
	}
	t.Logf("broken file refused: %v", refusal)
	errText := str(refusal["err"])
	if !strings.Contains(errText, badSpots[0]) && !strings.Contains(errText, badSpots[1]) {
		t.Errorf("refusal %q names neither defect's file:line:column (%s or %s)", errText, badSpots[0], badSpots[1])
	}
	if got := reloadMetric(t, b, "failed"); got != 1 {
		t.Errorf(`imdsguard_policy_reloads_total{result="failed"} = %d after one broken reload, want 1`, got)
	}
	n1 := auditCount(b.g)
	testbed.WaitFor(t, "requests under the refused reload", func() bool { return auditCount(b.g) >= n1+200 })
	time.Sleep(phase)

	// Phase 3: a valid change.
	reloaded := eventCount(b.g, "policy reloaded")
	tGood := time.Now()
	if err := b.h.ReloadGuard(b.g, testbed.HostGuardConfig{Extra: metricsExtra + suitePolicy("enforce", appCredsRule)}); err != nil {
		t.Fatal(err)
	}
	testbed.WaitFor(t, "policy reloaded", func() bool { return eventCount(b.g, "policy reloaded") > reloaded })
	tGoodSeen := time.Now()
	n2 := auditCount(b.g)
	testbed.WaitFor(t, "requests under the new policy", func() bool { return auditCount(b.g) >= n2+200 })
	time.Sleep(phase)
	stopAll()

	if got := reloadMetric(t, b, "failed"); got != 1 {
		t.Errorf(`imdsguard_policy_reloads_total{result="failed"} = %d, want 1`, got)
	}
	if got := reloadMetric(t, b, "ok"); got != 1 {
		t.Errorf(`imdsguard_policy_reloads_total{result="ok"} = %d, want 1`, got)
	}

	// Every answer, by phase.
	type tally struct{ old, refusedWindow, transition, new map[string]int }
	tl := tally{map[string]int{}, map[string]int{}, map[string]int{}, map[string]int{}}
	total := 0
	for i, hm := range hammers {
		out, err := decodeHelper(results[i])
		if err != nil {
			t.Fatalf("hammer %v v%d: %v", hm.c, hm.v, err)
		}
		b.checkRanAs(t, hm.c, out)
		if hm.ka {
			t.Logf("keep-alive hammer %v v%d: %d requests on %d connections", hm.c, hm.v, len(out.Results), out.Conns)
		}
		for _, r := range out.Results {
			total++
			start, end := time.Unix(0, r.Start), time.Unix(0, r.End)
			isCreds := r.Req.Method == "GET" && r.Req.Target == credsDir
			app := hm.c.name == appUser
			ka := ""
			if hm.ka {
				ka = " keep-alive"
			}
			key := fmt.Sprintf("%s%s %s %s→%d", hm.c.name, ka, r.Req.Method, shortTarget(r.Req), r.Status)
			var want []int
			switch {
			case r.Err != "":
				t.Errorf("%v: %s failed: %s", hm.c, r.Req, r.Err)
				continue
			case !app || !isCreds:
				want = []int{200}
			case end.Before(tGood):
				want = []int{403} // the suite's policy, broken file or not
			case start.After(tGoodSeen):
				want = []int{200} // the new rule app
			default:
				want = []int{200, 403} // sent while the reload happened
			}
			if !containsInt(want, r.Status) {
				t.Errorf("%v: %s at %s: %q, want %v (reload sent %s, seen %s)", hm.c, r.Req,
					start.Format("15:04:05.000000"), r.StatusLine, want, tGood.Format("15:04:05.000000"), tGoodSeen.Format("15:04:05.000000"))
			}
			switch {
			case end.Before(tGood) && start.After(tBadSeen):
				tl.refusedWindow[key]++
			case end.Before(tGood):
				tl.old[key]++
			case start.After(tGoodSeen):
				tl.new[key]++
			default:
				tl.transition[key]++
			}
		}
	}
	t.Logf("%d requests; before the broken file: %v", total, tl.old)
	t.Logf("after the broken file was refused, before the valid reload: %v", tl.refusedWindow)
	t.Logf("while the valid reload happened: %v", tl.transition)
	t.Logf("after it: %v", tl.new)
	if len(tl.refusedWindow) == 0 || len(tl.new) == 0 {
		t.Errorf("no requests in some phase: refused window %v, new policy %v", tl.refusedWindow, tl.new)
	}

	// The audit trail: allow or deny only; deny only for imdsapp's
	// credentials by rule legacy, and never after the first request decided
	// by the new rule.
	sawApp := false
	decisions := map[string]int{}
	for _, ev := range events(b.g)[n0:] {
		decisions[ev.User+" "+ev.Decision+"/"+ev.Rule]++
		if ev.Decision != "allow" && ev.Decision != "deny" {
			t.Errorf("event %v: decision %s", ev, ev.Decision)
		}
		if ev.Decision == "deny" && (ev.User != appUser || ev.Rule != "legacy" || ev.Path != credsDir) {
			t.Errorf("event %v: a denial the suite's policy does not make", ev)
		}
		if ev.User == appUser && ev.Rule == "legacy" && sawApp {
			t.Errorf("event %v: the old rule after the new policy applied", ev)
		}
		sawApp = sawApp || ev.User == appUser && ev.Rule == "app"
	}
	t.Logf("audit decisions/rules during the run: %v", decisions)
	if !sawApp {
		t.Error("no event decided by the new rule app")
	}
}

// shortTarget names what the hammers ask for: "creds v1", "instance-id v2".
func shortTarget(r helperRequest) string {
	v := "v1"
	if r.UseToken {
		v = "v2"
	}
	switch r.Target {
	case credsDir:
		return "creds " + v
	case instanceIDPath:
		return "instance-id " + v
	}
	return r.Target
}

func containsInt(list []int, v int) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// position is "path:line:column" of the first occurrence of needle in text
// (1-based, as the daemon's configuration errors name it).
func position(path, text, needle string) string {
	i := strings.Index(text, needle)
	if i < 0 {
		return path + ":?:?"
	}
	line := strings.Count(text[:i], "\n") + 1
	col := i - strings.LastIndex(text[:i], "\n")
	return fmt.Sprintf("%s:%d:%d", path, line, col)
}

var reloadLine = regexp.MustCompile(`(?m)^imdsguard_policy_reloads_total\{result="(\w+)"\} (\d+)`)

// reloadMetric reads imdsguard_policy_reloads_total{result} from the
// daemon's metrics listener in the host namespace (0 when absent).
func reloadMetric(t *testing.T, b *policyBed, result string) int {
	t.Helper()
	r, err := testbed.RawRequestIn(b.h.HostNS, metricsAddr, "GET", "/metrics", nil)
	if err != nil || r.Status != 200 {
		t.Fatalf("metrics: %+v %v", r, err)
	}
	for _, m := range reloadLine.FindAllStringSubmatch(string(r.Body), -1) {
		if m[1] == result {
			n, _ := strconv.Atoi(m[2])
			return n
		}
	}
	return 0
}

// TestPolicyAuditMode: with policy.mode: audit, imdsapp's credential reads
// (IMDSv1 and IMDSv2) are served, and their audit events say "would-deny"
// with the rule (legacy) that would have refused them; an allowed read
// stays "allow"; c1's root gets the credentials too (would-deny by rule
// containers). A target without a canonical path is still refused (400):
// that is not a policy question.
func TestPolicyAuditMode(t *testing.T) {
	b := newPolicyBed(t, "audit", "")
	for _, v := range []int{4, 6} {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			out, evs := b.sendAudited(t, b.hostApp(),
				get(v, credsDir), putToken(v), getV2(v, credsDir+testbed.AEMMRole), get(v, instanceIDPath),
				get(v, "/latest/meta-data/placement/%252e%252e/iam/security-credentials/"))
			r := out.Results
			if r[0].Status != 200 || !strings.Contains(string(r[0].Body), testbed.AEMMRole) {
				t.Errorf("imdsapp v1 credentials listing in audit mode: %q %q, want 200 with the role", r[0].StatusLine, r[0].Body)
			}
			if r[2].Status != 200 || !strings.Contains(string(r[2].Body), testbed.AEMMAccessKeyID) {
				t.Errorf("imdsapp v2 credentials in audit mode: %q %q, want 200 with the AccessKeyId", r[2].StatusLine, r[2].Body)
			}
			wantEvent(t, "v1 credentials", evs[0], "would-deny", "legacy", 200, credsDir)
			wantEvent(t, "v2 credentials", evs[2], "would-deny", "legacy", 200, credsDir+testbed.AEMMRole)
			wantEvent(t, "instance id", evs[3], "allow", "legacy", 200, instanceIDPath)
			if r[4].Status != 400 || evs[4] == nil || evs[4].Decision != "reject" {
				t.Errorf("double encoding in audit mode: %q, event %v; want 400 reject", r[4].StatusLine, evs[4])
			}
			for i, ev := range evs {
				t.Logf("%s -> %d; event %v; reason %q", r[i].Req, r[i].Status, ev, reason(ev))
			}
			out, evs = b.sendAudited(t, b.c1Root(), get(v, credsDir))
			if out.Results[0].Status != 200 {
				t.Errorf("c1 root credentials in audit mode: %q", out.Results[0].StatusLine)
			}
			wantEvent(t, "c1 credentials", evs[0], "would-deny", "containers", 200, credsDir)
		})
	}
}

func reason(ev *event) string {
	if ev == nil {
		return ""
	}
	return ev.Reason
}
