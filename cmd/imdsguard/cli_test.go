package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := execute(args, &out, &errb)
	return code, out.String(), errb.String()
}

const example = "../../internal/config/testdata/spec-example.yaml"

func TestPolicyCheck(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("version: 1\npolicy:\n  rules:\n    - name: x\n      match: {users: [root]}\n      allow: [\"/latest/meta-data/**\"]\n      imds_v1: maybe\n"), 0o644)
	// One interface pattern type: the same entry gets the same verdict in
	// the redirect and the policy, each at its own line and column.
	ifaces := filepath.Join(dir, "ifaces.yaml")
	os.WriteFile(ifaces, []byte("version: 1\nredirect:\n  container_interfaces: [\"+\", \"veth1@if3\"]\npolicy:\n  rules:\n    - name: x\n      match: {interfaces: [\"+\", \"veth1@if3\"]}\n      allow: [\"/**\"]\n"), 0o644)
	const badIface = `: "veth1@if3" is not an interface name: "@" is not part of a name`
	for _, c := range []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr []string
	}{
		{"valid", []string{"policy", "check", example}, 0, "valid (5 rules, mode enforce, default deny)", nil},
		{"invalid, every error positioned", []string{"policy", "check", bad}, 1, "", []string{
			bad + ":6:15: policy.rules[0].allow[0]:", bad + ":7:16: policy.rules[0].imds_v1:"}},
		{"interface patterns, one verdict in both sections", []string{"policy", "check", ifaces}, 1, "", []string{
			ifaces + ":3:31: redirect.container_interfaces[1]" + badIface, ifaces + ":7:33: policy.rules[0].match.interfaces[1]" + badIface}},
		{"missing file", []string{"policy", "check", filepath.Join(dir, "none.yaml")}, 1, "", []string{"no such file"}},
		{"no argument", []string{"policy", "check"}, 2, "", []string{"accepts 1 arg"}},
		{"bad flag", []string{"policy", "check", "--frobnicate", example}, 2, "", []string{"unknown flag"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, c.args...)
			if code != c.code || !strings.Contains(stdout, c.stdout) {
				t.Fatalf("exit %d stdout %q stderr %q; want exit %d stdout containing %q", code, stdout, stderr, c.code, c.stdout)
			}
			for _, want := range c.stderr {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr %q lacks %q", stderr, want)
				}
			}
		})
	}
}

func TestPolicyExplain(t *testing.T) {
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--config", example, "--uid", "0", "GET", "/latest/meta-data/iam/info"},
			[]string{"decision: allow", "rule:     root"}},
		{[]string{"--config", example, "--uid", "4321", "--v1", "GET", "//latest/meta-data/placement/..%2fiam/info"},
			[]string{"request:  GET /latest/meta-data/iam/info, IMDSv1", "decision: deny (403)", "rule:     (none)", "default is deny"}},
		{[]string{"--config", example, "--source", "172.17.0.9", "--v1", "GET", "/latest/meta-data/instance-id"},
			[]string{"decision: reject IMDSv1 (401)", "rule:     containers"}},
		{[]string{"--config", example, "--source", "172.17.0.9", "PUT", "/latest/api/token"},
			[]string{"token request", "decision: allow", "rule:     containers"}},
		{[]string{"--uid", "1000", "GET", "/latest/meta-data/IAM/info"}, // built-in default policy
			[]string{"decision: deny (403)", "rule:     others", "pattern:  /meta-data/iam/**"}},
		{[]string{"GET", "/latest/meta-data/%252e%252e/"}, []string{"refused before policy (400): double percent-encoding"}},
		{[]string{"POST", "/latest/meta-data/instance-id"}, []string{"refused before policy (405)"}},
		{[]string{"GET", "/latest/api/token"}, []string{"refused before policy (405)"}},
	} {
		code, stdout, stderr := runCLI(t, append([]string{"policy", "explain"}, c.args...)...)
		for _, want := range c.want {
			if code != 0 || !strings.Contains(stdout, want) {
				t.Errorf("explain %v: exit %d\n%s%s\nwant %q", c.args, code, stdout, stderr, want)
			}
		}
	}
}

func TestVersionAndHelp(t *testing.T) {
	code, out, _ := runCLI(t, "version")
	if code != 0 || !strings.HasPrefix(out, "imdsguard ") || !strings.Contains(out, "github.com/elazarl/goproxy") {
		t.Fatalf("version: %d %q", code, out)
	}
	for _, cmd := range [][]string{{"--help"}, {"run", "--help"}, {"rules", "--help"}, {"policy", "check", "--help"}, {"policy", "explain", "--help"}} {
		code, out, _ := runCLI(t, cmd...)
		if code != 0 || !strings.Contains(out, "Usage:") {
			t.Errorf("%v: %d %q", cmd, code, out)
		}
	}
}

func TestExplainContainerRoot(t *testing.T) {
	code, out, _ := runCLI(t, "policy", "explain", "--uid", "0", "--container", "GET", "/latest/meta-data/iam/info")
	if code != 0 || !strings.Contains(out, "decision: deny (403)") || !strings.Contains(out, "rule:     others") {
		t.Fatalf("container root: %d\n%s", code, out)
	}
}

// explain takes a container or pod as its runtime would describe it, and
// decides on it as the proxy would.
func TestExplainWorkload(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"--config", example, "--pod-namespace", "kube-system", "--pod-name", "aws-node-x7k2p", "--container-name", "aws-node", "GET", "/latest/meta-data/iam/info"},
			0, []string{"decision: allow", "rule:     node-agents", "containerd container \"aws-node\" of pod kube-system/aws-node-x7k2p", "container (users/groups entries do not apply)"}},
		{[]string{"--config", example, "--container-name", "cw-agent", "--label", "team=observability", "--source", "10.9.9.9", "GET", "/latest/meta-data/iam/info"},
			0, []string{"decision: allow", "rule:     node-agents", "docker container \"cw-agent\""}},
		{[]string{"--config", example, "--container-name", "cw-agent", "--label", "team=other", "--source", "10.9.9.9", "GET", "/latest/meta-data/iam/info"},
			0, []string{"decision: deny (403)", "rule:     (none)", "docker container cw-agent): the default is deny"}},
		{[]string{"--config", example, "--uid", "1000", "--host-network", "--pod-namespace", "kube-system", "--pod-name", "aws-node-x", "GET", "/latest/meta-data/iam/info"},
			0, []string{"decision: allow", "rule:     node-agents", "uid 1000"}},
		{[]string{"--config", example, "--uid", "0", "--host-network", "--container-name", "x", "GET", "/latest/meta-data/iam/info"},
			0, []string{"rule:     root"}},
		{[]string{"--pod-name", "x", "GET", "/"}, 2, []string{"--pod-namespace and --pod-name"}},
		{[]string{"--container-name", "x", "--label", "novalue", "GET", "/"}, 2, []string{"KEY=VALUE"}},
	} {
		code, stdout, stderr := runCLI(t, append([]string{"policy", "explain"}, c.args...)...)
		for _, want := range c.want {
			if code != c.code || !strings.Contains(stdout+stderr, want) {
				t.Errorf("explain %v: exit %d\n%s%s\nwant exit %d and %q", c.args, code, stdout, stderr, c.code, want)
			}
		}
	}
}
