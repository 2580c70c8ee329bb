package e2e

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/tools/testbed"
)

// Callers and commands as the demo shows them.
const (
	asUser   = "host, " + demoUser
	asRoot   = "host, root"
	inC1     = "c1, root"
	curlID   = "curl http://" + testbed.IMDSv4 + "/latest/meta-data/instance-id"
	curlIDv6 = "curl http://[" + testbed.IMDSv6 + "]/latest/meta-data/instance-id"
	boto     = "python3 boto"
	sdkV1    = "imdsclient -sdk v1"
	sdkV2    = "imdsclient -sdk v2"
	awsCLI   = "aws configure export-credentials"
	refused  = "Failed to connect" // curl's exit 7: nothing accepted the connection
)

// demoCase is a command of the demo (every one in the step whose caller
// and label prefix match) and what it must have shown.
type demoCase struct {
	step          int
	caller, label string
	exit          string   // "" when it must succeed; "fail": any failure
	want          []string // in its output
}

// demoCases are the story's facts: IMDSv1-only clients fail before
// imdsguard and work after it (host and container); the non-root user is
// denied the role credentials, root gets them; bypass attempts are refused;
// with imdsguard killed every caller is refused at once; after the restart
// the token taken before the kill still works.
var demoCases = []demoCase{
	{1, asUser, curlID, "", []string{"HTTP 401"}},
	{1, asUser, boto, "exit 1", []string{"no instance metadata"}},
	{1, asUser, sdkV1, "exit 1", []string{"HTTP 401"}},
	{1, asUser, sdkV2, "", []string{testbed.AEMMInstanceID}},
	{2, asUser, curlID, "", []string{testbed.AEMMInstanceID, "HTTP 200"}},
	{2, asUser, boto, "", []string{testbed.AEMMInstanceID}},
	{2, asUser, sdkV1, "", []string{testbed.AEMMInstanceID}},
	{2, asUser, "ec2-metadata -i", "", []string{"instance-id: " + testbed.AEMMInstanceID}},
	{2, asUser, "ec2metadata", "", []string{testbed.AEMMInstanceID}},
	{2, asUser, curlIDv6, "", []string{testbed.AEMMInstanceID, "HTTP 200"}},
	{2, inC1, curlID, "", []string{testbed.AEMMInstanceID, "HTTP 200"}},
	{2, inC1, boto, "", []string{testbed.AEMMInstanceID}},
	{2, inC1, sdkV1, "", []string{testbed.AEMMInstanceID}},
	{3, asUser, awsCLI, "fail", []string{"no credentials"}},
	{3, asUser, "python3 botocore", "exit 1", []string{"no credentials"}},
	{3, asUser, "curl http://" + testbed.IMDSv4 + "/latest/meta-data/iam/", "", []string{"403 - Forbidden", "HTTP 403"}},
	{3, asRoot, awsCLI, "", []string{"AWS_ACCESS_KEY_ID=" + testbed.AEMMAccessKeyID}},
	{4, asUser, "curl --path-as-is", "", []string{"HTTP 403"}},
	{4, asRoot, "curl -H 'X-Forwarded-For:", "", []string{"HTTP 403"}},
	{5, asRoot, "imdsguard rules status", "", []string{"all rules in place"}},
	{6, asRoot, "imdsguard rules status", "", []string{"all rules in place"}},
	{6, asUser, curlID, "exit 7", []string{refused}},
	{6, inC1, curlID, "exit 7", []string{refused}},
	{6, asUser, curlIDv6, "exit 7", []string{refused}},
	{6, asUser, boto, "exit 1", []string{"no instance metadata"}},
	{7, asUser, curlID, "", []string{testbed.AEMMInstanceID}},
	{7, asUser, boto, "", []string{testbed.AEMMInstanceID}},
	{7, inC1, sdkV2, "", []string{testbed.AEMMInstanceID}},
	{7, asUser, "curl -H 'X-aws-ec2-metadata-token: <the token from before the kill>'", "", []string{testbed.AEMMInstanceID, "HTTP 200"}},
}

// demoRows are audit rows the steps must show (columns caller, comm,
// request, version, decision, status, rule).
var demoRows = []struct {
	step int
	row  string
}{
	{2, demoUser + " (host) imdsclient GET /latest/meta-data/instance-id v1 allow 200"},
	{2, "(container 198.51.100.2) python3 GET /latest/meta-data/instance-id v1 allow 200"},
	{3, demoUser + " (host) aws GET /latest/meta-data/iam/security-credentials/ v2 deny 403 others"},
	{3, "root (host) aws GET /latest/meta-data/iam/security-credentials/" + testbed.AEMMRole + " v2 allow 200 root"},
	{4, demoUser + " (host) curl GET /latest/meta-data/iam/security-credentials/ v1 deny 403 others"},
	{4, "root (host) curl GET /latest/meta-data/instance-id - reject 403"},
	{6, demoUser + " (host) curl PUT /latest/api/token token allow 200"},
	{7, demoUser + " (host) curl GET /latest/meta-data/instance-id v2 allow 200"},
}

// TestDemo runs bin/demo (make demo) to its end and checks, from its
// output, the story it tells (demoCases, demoRows, nothing reaching IMDS
// while imdsguard is dead), that it printed no colours to a pipe, exited 0
// and left no namespace, process or user behind.
func TestDemo(t *testing.T) {
	userBefore := userExists(demoUser)
	r := startDemo(t)
	status := r.wait(t)
	out := r.stdout.String()
	t.Logf("demo output:\n%s", out)
	if status != 0 {
		t.Fatalf("demo exited %d:\n%s", status, r.stderr.String())
	}
	steps := parseDemo(out)
	for n := 1; n <= 7; n++ {
		if steps[n] == nil {
			t.Fatalf("no step %d in the output", n)
		}
	}
	checkDemoCases(t, steps)
	checkDemoAudit(t, steps)
	if !anyContains(steps[6].notes, "requests that reached IMDS meanwhile: 0") {
		t.Errorf("step 6 does not say that nothing reached IMDS: %q", steps[6].notes)
	}
	if strings.Contains(out, "\x1b[") {
		t.Error("colour codes in output to a pipe")
	}
	if !strings.Contains(out, "Every process stopped; removed the namespaces") {
		t.Error("no closing line")
	}
	checkNothingLeft(t, r.cmd.Process.Pid, userBefore)
}

func checkDemoCases(t *testing.T, steps map[int]*demoStep) {
	t.Helper()
	for _, c := range demoCases {
		found := steps[c.step].find(c.caller, c.label)
		if len(found) == 0 {
			t.Errorf("step %d: no command %q run by %s", c.step, c.label, c.caller)
		}
		for _, cmd := range found {
			text := strings.Join(cmd.output, "\n")
			failedOK := cmd.exit == c.exit || (c.exit == "fail" && cmd.exit != "")
			if !failedOK || !containsAll(text, c.want) {
				t.Errorf("step %d, [%s] %s: status %q (want %q), output (want %q in it):\n%s",
					c.step, cmd.caller, cmd.label, cmd.exit, c.exit, c.want, text)
			}
		}
	}
}

func checkDemoAudit(t *testing.T, steps map[int]*demoStep) {
	t.Helper()
	for _, w := range demoRows {
		if !steps[w.step].hasRow(w.row) {
			t.Errorf("step %d: no audit row %q in:\n%s", w.step, w.row, strings.Join(steps[w.step].audit, "\n"))
		}
	}
	if steps[4].hasRow("allow") {
		t.Errorf("step 4: a bypass attempt was allowed:\n%s", strings.Join(steps[4].audit, "\n"))
	}
}

// TestDemoInterrupted: Ctrl-C in the middle of the demo (step 3) stops it
// with status 130, and it removes everything it made.
func TestDemoInterrupted(t *testing.T) {
	userBefore := userExists(demoUser)
	r := startDemo(t)
	deadline := time.Now().Add(demoTimeout)
	for !strings.Contains(r.stdout.String(), "\n== 3. ") {
		if done, _ := r.exited(); done || time.Now().After(deadline) {
			t.Fatalf("the demo never reached step 3:\n%s\n%s", r.stdout.String(), r.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := r.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatalf("interrupt demo: %v", err)
	}
	if status := r.wait(t); status != 130 {
		t.Errorf("demo exited %d after SIGINT, want 130:\n%s", status, r.stderr.String())
	}
	if out := r.stdout.String(); !strings.Contains(out, "stopped before its end; everything it made is removed") {
		t.Errorf("no closing line after the interrupt:\n%s", out)
	}
	checkNothingLeft(t, r.cmd.Process.Pid, userBefore)
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// anyContains reports whether a line of lines contains sub.
func anyContains(lines []string, sub string) bool {
	for _, l := range lines {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}
