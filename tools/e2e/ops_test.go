package e2e

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/imdsguard/imdsguard/tools/testbed"
)

// The operations commands against a running daemon on a namespace host:
// imdsguard check, imdsguard audit, the metrics endpoint.

// guardCmd is `imdsguard ARGS... --config FILE` in the host namespace, as root.
func guardCmd(e *testbed.Env, h *testbed.Host, g *testbed.Guard, args ...string) testbed.Cmd {
	return h.InHost(testbed.Cmd{Name: "imdsguard " + args[0], Path: e.Bin("imdsguard"),
		Args: append(args, "--config", g.ConfigPath), Env: e.ClientEnv()})
}

func TestCheckTokensRequired(t *testing.T) {
	e, h, g := transparent(t, testbed.HostOptions{}, testbed.HostGuardConfig{})
	r := e.Run(guardCmd(e, h, g, "check"))
	t.Logf("imdsguard check (IMDS stand-in with tokens required):\n%s", r.Stdout)
	if r.Err != nil || strings.Count(r.Stdout, "PASS  ") != 10 || strings.Contains(r.Stdout, "FAIL") ||
		!strings.Contains(r.Stdout, "enforcement is in effect") || !strings.Contains(r.Stdout, testbed.AEMMInstanceID) {
		t.Fatalf("check: %v\n%s%s", r.Err, r.Stdout, r.Stderr)
	}

	// The daemon dies: its rules stay (PASS), nothing answers (FAIL), exit 1.
	if err := g.Kill(); err != nil {
		t.Fatal(err)
	}
	r = e.Run(guardCmd(e, h, g, "check"))
	t.Logf("imdsguard check with the daemon killed:\n%s", r.Stdout)
	if r.Err == nil || !strings.Contains(r.Stdout, "PASS  redirect rules") || !strings.Contains(r.Stdout, "FAIL  imdsguard answers") ||
		!strings.Contains(r.Stdout, "FAIL  an IMDSv1 request through the redirect") || !strings.Contains(r.Stdout, "PASS  IMDS itself rejects") {
		t.Fatalf("check with the daemon killed: %v\n%s%s", r.Err, r.Stdout, r.Stderr)
	}
}

func TestCheckTokensOptional(t *testing.T) {
	e, h, g := transparent(t, testbed.HostOptions{AllowIMDSv1: true}, testbed.HostGuardConfig{})
	r := e.Run(guardCmd(e, h, g, "check"))
	t.Logf("imdsguard check (IMDS stand-in with tokens optional):\n%s", r.Stdout)
	fix := "fix: aws ec2 modify-instance-metadata-options --instance-id " + testbed.AEMMInstanceID +
		" --http-tokens required --http-put-response-hop-limit 1 --http-endpoint enabled"
	if r.Err == nil || !strings.Contains(r.Stdout, "FAIL  IMDS itself rejects IMDSv1") || !strings.Contains(r.Stdout, fix) ||
		strings.Count(r.Stdout, "PASS  ") != 9 {
		t.Fatalf("check: %v\n%s%s", r.Err, r.Stdout, r.Stderr)
	}
}

// usageRow is one caller of `imdsguard audit --json`.
type usageRow struct {
	UID      uint32 `json:"uid"`
	User     string `json:"user"`
	Comm     string `json:"comm"`
	PID      int    `json:"pid"`
	V1, V2   uint64
	LastSeen string `json:"last_seen"`
}

func TestAuditShowsV1Callers(t *testing.T) {
	e, h, g := transparent(t, testbed.HostOptions{}, testbed.HostGuardConfig{})
	u := testbed.EnsureUser(t, "imdstest-e2e")
	for range 3 { // a legacy v1 client as the unprivileged user
		curlOK(t, e, h.InHost(e.AsUser(u, e.Curl(testbed.IMDSURL(4)+"/latest/meta-data/instance-id"))), testbed.AEMMInstanceID)
	}
	v2 := e.Run(h.InHost(e.IMDSClient("v2", "", "-no-fallback", "-get", "instance-id"))) // a v2 client as root
	if v2.Err != nil {
		t.Fatal(v2)
	}
	r := e.Run(guardCmd(e, h, g, "audit"))
	t.Logf("imdsguard audit:\n%s", r.Stdout)
	if r.Err != nil || !strings.Contains(r.Stdout, "1 of 2 callers used IMDSv1") {
		t.Fatalf("audit: %v\n%s%s", r.Err, r.Stdout, r.Stderr)
	}
	r = e.Run(guardCmd(e, h, g, "audit", "--json"))
	var snap struct{ Callers []usageRow }
	if err := json.Unmarshal([]byte(r.Stdout), &snap); err != nil || r.Err != nil {
		t.Fatalf("audit --json: %v %v\n%s", err, r.Err, r.Stdout)
	}
	got := map[string]usageRow{}
	for _, c := range snap.Callers {
		got[c.Comm] = c
	}
	if len(got) != 2 || got["curl"].User != u.Name || got["curl"].UID != u.UID || got["curl"].V1 != 3 || got["curl"].V2 != 0 ||
		got["imdsclient"].User != "root" || got["imdsclient"].V1 != 0 || got["imdsclient"].V2 != 2 {
		t.Fatalf("audit callers %+v; want exactly curl as %s with 3 v1, imdsclient as root with 2 v2 (PUT+GET)", snap.Callers, u.Name)
	}
	// The socket is root's: the user cannot ask.
	r = e.Run(h.InHost(e.AsUser(u, testbed.Cmd{Name: "audit as user", Path: e.Bin("imdsguard"), Args: []string{"audit", "--config", g.ConfigPath}, Env: e.ClientEnv()})))
	if r.Err == nil {
		t.Fatalf("audit as %s succeeded:\n%s", u.Name, r.Stdout)
	}
}

func TestMetricsCountRequests(t *testing.T) {
	const port = 19989
	e, h, _ := transparent(t, testbed.HostOptions{}, testbed.HostGuardConfig{Extra: fmt.Sprintf("metrics: {listen: \"127.0.0.1:%d\"}", port)})
	u := testbed.EnsureUser(t, "imdstest-e2e")
	for range 4 {
		curlOK(t, e, h.InHost(e.AsUser(u, e.Curl(testbed.IMDSURL(4)+"/latest/meta-data/instance-id"))), testbed.AEMMInstanceID)
	}
	for range 2 {
		curlStatus(t, e, h.InHost(e.AsUser(u, e.Curl(testbed.IMDSURL(4)+"/latest/meta-data/iam/security-credentials/"))), 403)
	}
	if r := e.Run(h.InHost(e.IMDSClient("v2", "", "-no-fallback", "-get", "instance-id"))); r.Err != nil {
		t.Fatal(r)
	}
	r := e.Run(h.InHost(e.Curl(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))))
	if r.Err != nil {
		t.Fatal(r)
	}
	for name, want := range map[string]int{
		`imdsguard_requests_total{class="host",decision="allow",rule="others",version="v1"}`: 4,
		`imdsguard_requests_total{class="host",decision="deny",rule="others",version="v1"}`:  2,
		`imdsguard_requests_total{class="host",decision="allow",rule="root",version="none"}`: 1,
		`imdsguard_requests_total{class="host",decision="allow",rule="root",version="v2"}`:   1,
		`imdsguard_tokens_minted_total`: 1,
		// five reads of instance-id: the first went to IMDS, the other
		// four were cache hits, which wait for no IMDS
		`imdsguard_cache_reads_total{outcome="miss"}`: 1,
		`imdsguard_cache_reads_total{outcome="hit"}`:  4,
		`imdsguard_upstream_latency_seconds_count`:    1,
		`imdsguard_upstream_token_refreshes_total`:    1,
		`imdsguard_upstream_token_failures_total`:     0,
		`imdsguard_rule_restores_total`:               0,
		`imdsguard_policy_reloads_total`:              -1, // no reload: not exported yet
	} {
		got := metricValue(r.Stdout, name)
		if got != want {
			t.Errorf("%s = %d, want %d", name, got, want)
		}
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", grepLines(r.Stdout, "imdsguard_"))
	}
}

// metricValue is a sample's value in a scrape, -1 when absent.
func metricValue(scrape, name string) int {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`)
	m := re.FindStringSubmatch(scrape)
	if m == nil {
		return -1
	}
	f, _ := strconv.ParseFloat(m[1], 64)
	return int(f)
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
