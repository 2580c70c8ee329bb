package proxy

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/imdsguard/imdsguard/policy"
)

// testNames is the passwd/group database of the explain tests.
type testNames struct{}

func (testNames) LookupUser(name string) (uint32, error) {
	if id, ok := map[string]uint32{"root": 0, "app": 1000}[name]; ok {
		return id, nil
	}
	return 0, errors.New("unknown user " + name)
}

func (testNames) LookupGroup(name string) (uint32, error) {
	if name == "legacy" {
		return 2000, nil
	}
	return 0, errors.New("unknown group " + name)
}

func explainPolicy(t *testing.T, mode string) *policy.Policy {
	t.Helper()
	c := examplePolicy(t)
	c.Mode = mode
	pol, _, err := policy.Compile(c, testNames{})
	if err != nil {
		t.Fatal(err)
	}
	return pol
}

// The decision line says what the proxy answers; the rest is the policy's.
func TestExplainDecision(t *testing.T) {
	p, pa := explainPolicy(t, "enforce"), explainPolicy(t, "audit")
	app := policy.Caller{UIDKnown: true, UID: 1000, GIDs: []uint32{1000}, Source: netip.MustParseAddr("127.0.0.1")}
	cont := policy.Caller{Source: netip.MustParseAddr("172.17.0.5"), Interface: "docker0", Container: true}
	for _, tt := range []struct {
		name string
		pol  *policy.Policy
		req  policy.Request
		want string
	}{
		{"deny pattern", p, policy.Request{Caller: app, Path: "/meta-data/iam/info"}, "decision: deny (403)\nrule:     legacy-app\npattern:  /meta-data/iam/**\n"},
		{"allow", p, policy.Request{Caller: app, Path: "/meta-data/instance-id"}, "decision: allow\nrule:     legacy-app\npattern:  /meta-data/**\n"},
		{"no allow", p, policy.Request{Caller: app, Path: "/user-data"}, "decision: deny (403)\nrule:     legacy-app\nreason:"},
		{"v1 reject", p, policy.Request{Caller: cont, Path: "/meta-data/instance-id", V1: true}, "decision: reject IMDSv1 (401)\nrule:     containers\nreason:"},
		{"token", p, policy.Request{Caller: cont, Path: "/api/token", Token: true}, "decision: allow\nrule:     containers\nreason:"},
		{"audit", pa, policy.Request{Caller: app, Path: "/meta-data/iam/info"},
			"decision: deny (403), not enforced (audit mode: served anyway, logged as a would-be denial)\nrule:     legacy-app\npattern:  /meta-data/iam/**\n"},
		{"not canonical", p, policy.Request{Caller: app, Path: "/a/../b"}, "decision: deny (403)\nrule:     (none)\nreason:"},
	} {
		d := tt.pol.Decide(tt.req)
		got := ExplainDecision(d)
		if !strings.HasPrefix(got, tt.want) || !strings.HasSuffix(got, d.String()) {
			t.Errorf("%s:\n got\n%s want it to start with\n%s", tt.name, got, tt.want)
		}
	}
}

// Explain routes the request as the pipeline does before asking the policy.
func TestExplainRoutes(t *testing.T) {
	p := explainPolicy(t, "enforce")
	root := policy.Caller{UIDKnown: true, Source: netip.MustParseAddr("127.0.0.1")}
	for _, tt := range []struct {
		method, target string
		v1             bool
		want           string
	}{
		{"GET", "/latest/meta-data/%252e", false, "request:  GET /latest/meta-data/%252e\ndecision: refused before policy (400): "},
		{"GET", "/latest/api/token", false, "request:  GET /latest/api/token\ndecision: refused before policy (405): the token path takes PUT\n"},
		{"OPTIONS", "/latest/api/token", false, "request:  OPTIONS /latest/api/token\ndecision: answered 200 with Allow: OPTIONS, PUT (no policy)\n"},
		{"PUT", "/latest/api/token", false, "request:  PUT /latest/api/token, token request; policy path /api/token\ndecision: allow\nrule:     root\n"},
		{"GET", "//latest/meta-data/placement/../iam/", true, "request:  GET /latest/meta-data/iam/, IMDSv1 (no token); policy path /meta-data/iam\ndecision: allow\n"},
		{"GET", "/latest/meta-data/iam/", false, "request:  GET /latest/meta-data/iam/, IMDSv2 (valid token); policy path /meta-data/iam\n"},
	} {
		var b strings.Builder
		Explain(&b, p, root, tt.v1, tt.method, tt.target)
		if !strings.HasPrefix(b.String(), tt.want) {
			t.Errorf("%s %s:\n got\n%s want it to start with\n%s", tt.method, tt.target, b.String(), tt.want)
		}
	}
}
