package policy

import "testing"

func TestDecisionString(t *testing.T) {
	p := mustCompile(t, decodeConfig(t, exampleYAML), hostNames())
	audit := decodeConfig(t, exampleYAML)
	audit.Mode = "audit"
	pa := mustCompile(t, audit, hostNames())
	tests := []struct {
		name string
		d    Decision
		want string
	}{
		{"deny pattern", p.Decide(Request{Caller: appCaller, Path: "/meta-data/iam/info"}),
			"rule:     legacy-app\npattern:  /meta-data/iam/**\n" +
				"reason:   denied by rule legacy-app: the path matches deny pattern /meta-data/iam/**\n"},
		{"allow", p.Decide(Request{Caller: appCaller, Path: "/meta-data/instance-id"}),
			"rule:     legacy-app\npattern:  /meta-data/**\n" +
				"reason:   allowed by rule legacy-app: the path matches allow pattern /meta-data/** and none of its deny patterns\n"},
		{"no allow", p.Decide(Request{Caller: appCaller, Path: "/user-data"}),
			"rule:     legacy-app\n" +
				"reason:   denied by rule legacy-app: none of its allow patterns matches the path\n"},
		{"v1 reject", p.Decide(Request{Caller: container, Path: "/meta-data/instance-id", V1: true}),
			"rule:     containers\n" +
				"reason:   rejected by rule containers: it refuses IMDSv1 requests, those without a token (imds_v1: reject)\n"},
		{"token", p.Decide(Request{Caller: container, Path: "/api/token", Token: true}),
			"rule:     containers\n" +
				"reason:   allowed by rule containers: its callers may get a token, since no deny pattern of the rule matches /api/token\n"},
		{"default", p.Decide(Request{Caller: aliceCaller, Path: "/"}),
			"rule:     (none)\n" +
				"reason:   no rule matched the caller (uid 1001, source 10.0.0.9): the default is deny\n"},
		{"audit", pa.Decide(Request{Caller: appCaller, Path: "/meta-data/iam/info"}),
			"rule:     legacy-app\npattern:  /meta-data/iam/**\n" +
				"reason:   denied by rule legacy-app: the path matches deny pattern /meta-data/iam/**\n"},
		{"not canonical", p.Decide(Request{Caller: rootCaller, Path: "/a/../b"}),
			"rule:     (none)\n" +
				"reason:   denied: the path \"/a/../b\" is not canonical (a canonicalization bug): it is never matched against the rules\n"},
	}
	for _, tt := range tests {
		if got := tt.d.String(); got != tt.want {
			t.Errorf("%s:\n got\n%s want\n%s", tt.name, got, tt.want)
		}
	}
}
