package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/imdsguard/imdsguard/tools/testbed"
)

// TestPolicyExplainAgrees: `imdsguard policy explain` with the daemon's own
// configuration file gives, for a sample of callers and requests, the
// decision and rule the running daemon logged for the same request: root,
// imdsagent, imdsapp with and without group legacy on the host; root and
// the agent's uid in c1 (IPv4 and IPv6); token PUTs, IMDSv1 and IMDSv2
// reads, allowed, denied, non-canonical and refused targets.
func TestPolicyExplainAgrees(t *testing.T) {
	b := newPolicyBed(t, "enforce", "")
	type sample struct {
		c caller
		v int
	}
	samples := []sample{
		{b.hostRoot(), 4}, {b.hostAgent(), 4}, {b.hostApp(), 4}, {b.hostAppNoGroups(), 4},
		{b.hostApp(), 6}, {b.c1Root(), 4}, {b.c1Root(), 6}, {b.c1Agent(), 4},
	}
	var table strings.Builder
	table.WriteString("| caller | family | request | daemon | explain |\n|---|---|---|---|---|\n")
	for _, s := range samples {
		t.Run(fmt.Sprintf("%s/%s/v%d", s.c.place, s.c.name, s.v), func(t *testing.T) {
			v := s.v
			reqs := []helperRequest{
				get(v, instanceIDPath),
				putToken(v),
				getV2(v, credsDir),
				get(v, "//latest/meta-data/placement/../iam/info"),
				getV2(v, "/latest/user-data"),
				getV2(v, "/latest/meta-data/placement/availability-zone"),
				get(v, "/2009-04-04/meta-data/iam/security-credentials/"),
				get(v, "/latest/dynamic/instance-identity/document"),
				get(v, "/latest/meta-data/placement/%252e%252e/iam/info"),
			}
			out, evs := b.sendAudited(t, s.c, reqs...)
			for i, r := range out.Results {
				ev := evs[i]
				if ev == nil {
					t.Errorf("%s: no audit event", r.Req)
					continue
				}
				args := []string{"policy", "explain", "--config", b.g.ConfigPath}
				args = append(args, explainCaller(s.c, v, out, ev)...)
				if ev.Version == "v1" {
					args = append(args, "--v1")
				}
				args = append(args, r.Req.Method, r.Req.Target)
				res := b.e.Run(testbed.Cmd{Name: "imdsguard policy explain", Path: b.e.Bin("imdsguard"), Args: args, Env: b.e.ClientEnv()})
				if res.Err != nil {
					t.Errorf("explain: %v", res)
					continue
				}
				decision, rule, status := parseExplain(res.Stdout)
				daemon := fmt.Sprintf("%s %s (%d)", ev.Decision, orDash(ev.Rule), ev.Status)
				explained := fmt.Sprintf("%s %s", decision, orDash(rule))
				if status != 0 {
					explained += fmt.Sprintf(" (%d)", status)
				}
				fmt.Fprintf(&table, "| %s | IPv%d | %s %s %s | %s | %s |\n", s.c, v, r.Req.Method, r.Req.Target, ev.Version, daemon, explained)
				if decision != ev.Decision || rule != ev.Rule || (status != 0 && status != ev.Status) {
					t.Errorf("%s as %v: daemon %s, explain %s:\n%s", r.Req, s.c, daemon, explained, res.Stdout)
				}
			}
		})
	}
	t.Logf("daemon vs policy explain:\n%s", table.String())
}

// explainCaller is the caller as `policy explain` flags: the uid and gids
// of the helper process (host; its address matches no sources entry, so it
// is not given), or the source and interface (container).
func explainCaller(c caller, v int, out *helperOutput, ev *event) []string {
	if c.place == "c1" {
		return []string{"--uid", strconv.Itoa(out.UID), "--source", ev.Source, "--interface", testbed.C1If}
	}
	args := []string{"--uid", strconv.Itoa(out.UID), "--gid", strconv.Itoa(out.GID)}
	for _, g := range out.Groups {
		args = append(args, "--gid", strconv.Itoa(g))
	}
	return args
}

// parseExplain reads the decision and rule from `policy explain`, in the
// audit event's words: allow, deny (403, or 401 for a rejected IMDSv1
// request), would-deny (audit mode), reject (refused before policy, with
// its status).
func parseExplain(out string) (decision, rule string, status int) {
	for _, line := range strings.Split(out, "\n") {
		k, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		switch k {
		case "decision":
			switch {
			case strings.HasPrefix(val, "refused before policy"):
				decision = "reject"
				fmt.Sscanf(val, "refused before policy (%d)", &status)
			case strings.Contains(val, "not enforced"):
				decision = "would-deny"
			case strings.HasPrefix(val, "allow"):
				decision = "allow"
			case strings.HasPrefix(val, "deny"), strings.HasPrefix(val, "reject IMDSv1"):
				decision = "deny"
			default:
				decision = val
			}
		case "rule":
			if rule = val; rule == "(none)" {
				rule = ""
			}
		}
	}
	return decision, rule, status
}
