package policy

import (
	"net/netip"
	"strings"
	"testing"
)

// want is the part of a Decision a table row checks.
type want struct {
	allow, rejectV1 bool
	rule, pattern   string
}

func checkDecision(t *testing.T, p *Policy, name string, r Request, w want) {
	t.Helper()
	d := p.Decide(r)
	got := want{d.Allow, d.RejectV1, d.Rule, d.Pattern}
	if got != w {
		t.Errorf("%s: Decide(%s) = %+v, want %+v\n%s", name, r.Path, got, w, d)
	}
	if d.Reason == "" {
		t.Errorf("%s: Decide(%s) has no reason", name, r.Path)
	}
	if !d.Enforced {
		t.Errorf("%s: Decide(%s).Enforced = false in enforce mode", name, r.Path)
	}
}

func TestDecideExample(t *testing.T) {
	p := mustCompile(t, decodeConfig(t, exampleYAML), hostNames())
	tests := []struct {
		name string
		r    Request
		want want
	}{
		{"root reads credentials", Request{Caller: rootCaller, Path: "/meta-data/iam/security-credentials/baskinc-role"}, want{true, false, "root", "/**"}},
		{"root v1 listing", Request{Caller: rootCaller, Path: "/", V1: true}, want{true, false, "root", "/**"}},
		{"app instance-id", Request{Caller: appCaller, Path: "/meta-data/instance-id", V1: true}, want{true, false, "legacy-app", "/meta-data/**"}},
		{"app meta-data listing", Request{Caller: appCaller, Path: "/meta-data"}, want{true, false, "legacy-app", "/meta-data/**"}},
		{"app document", Request{Caller: appCaller, Path: "/dynamic/instance-identity/document"}, want{true, false, "legacy-app", "/dynamic/instance-identity/document"}},
		{"app iam", Request{Caller: appCaller, Path: "/meta-data/iam/info"}, want{false, false, "legacy-app", "/meta-data/iam/**"}},
		{"app IAM", Request{Caller: appCaller, Path: "/meta-data/IAM/info"}, want{false, false, "legacy-app", "/meta-data/iam/**"}},
		{"app listing", Request{Caller: appCaller, Path: "/"}, want{false, false, "legacy-app", ""}},
		{"app user-data", Request{Caller: appCaller, Path: "/user-data"}, want{false, false, "legacy-app", ""}},
		{"legacy group", Request{Caller: legacyCaller, Path: "/meta-data/placement/region"}, want{true, false, "legacy-app", "/meta-data/**"}},
		{"legacy group iam", Request{Caller: legacyCaller, Path: "/meta-data/iam/security-credentials"}, want{false, false, "legacy-app", "/meta-data/iam/**"}},
		{"container placement v2", Request{Caller: container, Path: "/meta-data/placement/availability-zone"}, want{true, false, "containers", "/meta-data/placement/**"}},
		{"container instance-id", Request{Caller: container, Path: "/meta-data/instance-id"}, want{true, false, "containers", "/meta-data/instance-id"}},
		{"container mapped source", Request{Caller: mappedCont, Path: "/meta-data/instance-id"}, want{true, false, "containers", "/meta-data/instance-id"}},
		{"container v1 rejected", Request{Caller: container, Path: "/meta-data/instance-id", V1: true}, want{false, true, "containers", ""}},
		{"container v1 secret rejected", Request{Caller: container, Path: "/meta-data/iam/info", V1: true}, want{false, true, "containers", ""}},
		{"container token", Request{Caller: container, Path: tokenPath, Token: true}, want{true, false, "containers", ""}},
		{"container token flagged v1", Request{Caller: container, Path: tokenPath, Token: true, V1: true}, want{true, false, "containers", ""}},
		{"container iam", Request{Caller: container, Path: "/meta-data/iam/info"}, want{false, false, "containers", ""}},
		{"container ami-id", Request{Caller: container, Path: "/meta-data/ami-id"}, want{false, false, "containers", ""}},
		{"other bridge: default deny", Request{Caller: otherCont, Path: "/meta-data/instance-id"}, want{false, false, "", ""}},
		{"alice: default deny", Request{Caller: aliceCaller, Path: "/meta-data/instance-id"}, want{false, false, "", ""}},
		{"alice token: default deny", Request{Caller: aliceCaller, Path: tokenPath, Token: true}, want{false, false, "", ""}},
		{"unknown uid 0 is not root", Request{Caller: unknownCaller, Path: "/meta-data/instance-id"}, want{false, false, "", ""}},
		{"container root is not root", Request{Caller: containerRoot, Path: "/meta-data/iam/info"}, want{false, false, "containers", ""}},
		{"not canonical", Request{Caller: rootCaller, Path: "/meta-data/../user-data"}, want{false, false, "", ""}},
		{"not canonical trailing slash", Request{Caller: rootCaller, Path: "/meta-data/"}, want{false, false, "", ""}},
		{"empty path", Request{Caller: rootCaller, Path: ""}, want{false, false, "", ""}},
	}
	for _, tt := range tests {
		checkDecision(t, p, tt.name, tt.r, tt.want)
	}
}

func TestDecideDefaultPolicy(t *testing.T) {
	p := mustCompile(t, DefaultConfig(), hostNames())
	deny := want{false, false, "others", ""}
	tests := []struct {
		name string
		r    Request
		want want
	}{
		{"root iam", Request{Caller: rootCaller, Path: "/meta-data/iam/security-credentials/r", V1: true}, want{true, false, "root", "/**"}},
		{"alice instance-id v1", Request{Caller: aliceCaller, Path: "/meta-data/instance-id", V1: true}, want{true, false, "others", "/**"}},
		{"alice listing", Request{Caller: aliceCaller, Path: "/"}, want{true, false, "others", "/**"}},
		{"alice document", Request{Caller: aliceCaller, Path: "/dynamic/instance-identity/document"}, want{true, false, "others", "/**"}},
		{"alice iam", Request{Caller: aliceCaller, Path: "/meta-data/iam"}, withPattern(deny, "/meta-data/iam/**")},
		{"alice pkcs7", Request{Caller: aliceCaller, Path: "/dynamic/instance-identity/pkcs7"}, withPattern(deny, "/dynamic/instance-identity/pkcs7")},
		{"alice rsa2048", Request{Caller: aliceCaller, Path: "/dynamic/instance-identity/RSA2048"}, withPattern(deny, "/dynamic/instance-identity/rsa2048")},
		{"alice token", Request{Caller: aliceCaller, Path: tokenPath, Token: true}, want{true, false, "others", ""}},
		{"unknown identity reads non-secret", Request{Caller: unknownCaller, Path: "/meta-data/instance-id"}, want{true, false, "others", "/**"}},
		{"unknown identity uid 0 iam", Request{Caller: unknownCaller, Path: "/meta-data/iam/info"}, withPattern(deny, "/meta-data/iam/**")},
		{"container iam", Request{Caller: container, Path: "/meta-data/iam/info"}, withPattern(deny, "/meta-data/iam/**")},
		{"container root iam", Request{Caller: containerRoot, Path: "/meta-data/iam/security-credentials/r"}, withPattern(deny, "/meta-data/iam/**")},
		{"container root reads non-secret", Request{Caller: containerRoot, Path: "/meta-data/instance-id"}, want{true, false, "others", "/**"}},
	}
	for _, tt := range tests {
		checkDecision(t, p, tt.name, tt.r, tt.want)
	}
}

func withPattern(w want, pattern string) want {
	w.pattern = pattern
	return w
}

// TestDecideSecrets: the canonical paths of the bypass cases are denied to
// every caller but root, under the default policy and under legacy-app, and
// an unattested uid 0 is never root.
func TestDecideSecrets(t *testing.T) {
	rootByID := decodeConfig(t, strings.Replace(exampleYAML, "users: [root]", `users: ["0"]`, 1))
	policies := map[string]Config{"default": DefaultConfig(), "example": decodeConfig(t, exampleYAML), "example uid 0": rootByID}
	callers := map[string]Caller{"app": appCaller, "legacy": legacyCaller, "alice": aliceCaller, "unknown uid 0": unknownCaller, "container": container}
	for pname, c := range policies {
		p := mustCompile(t, c, hostNames())
		for _, path := range secretPaths {
			for _, v1 := range []bool{false, true} {
				if d := p.Decide(Request{Caller: rootCaller, Path: path, V1: v1}); !d.Allow || d.Rule != "root" {
					t.Errorf("%s: root %s: %s", pname, path, d)
				}
				for cname, caller := range callers {
					if d := p.Decide(Request{Caller: caller, Path: path, V1: v1}); d.Allow || d.Rule == "root" {
						t.Errorf("%s: %s %s: %s", pname, cname, path, d)
					}
				}
			}
		}
	}
}

func TestDecideToken(t *testing.T) {
	c := Config{Rules: []RuleConfig{
		{Name: "no-tokens", Match: &MatchConfig{Users: []string{"1001"}}, Allow: []string{"/**"}, Deny: []string{"/api/**"}},
		{Name: "token-only-deny", Match: &MatchConfig{Users: []string{"1000"}}, Allow: []string{"/meta-data/**"}, Deny: []string{"/api/token"}},
		{Name: "nothing", Match: &MatchConfig{Sources: []string{"172.17.0.0/16"}}, IMDSv1: "reject"},
	}}
	p := mustCompile(t, c, nil)
	tok := func(c Caller) Request { return Request{Caller: c, Path: tokenPath, Token: true} }
	checkDecision(t, p, "deny /api/**", tok(aliceCaller), want{false, false, "no-tokens", "/api/**"})
	checkDecision(t, p, "deny /api/token", tok(appCaller), want{false, false, "token-only-deny", "/api/token"})
	checkDecision(t, p, "rule without allow", tok(container), want{true, false, "nothing", ""})
	checkDecision(t, p, "reads still need allow", Request{Caller: container, Path: "/meta-data/instance-id"}, want{false, false, "nothing", ""})
	checkDecision(t, p, "no rule, default deny", tok(rootCaller), want{false, false, "", ""})
	c.Default = "allow"
	p = mustCompile(t, c, nil)
	checkDecision(t, p, "no rule, default allow", tok(rootCaller), want{true, false, "", ""})
}

func TestDecideDefault(t *testing.T) {
	c := Config{Rules: []RuleConfig{{Name: "app", Match: &MatchConfig{Users: []string{"1000"}}, Allow: []string{"/**"}, IMDSv1: "reject"}}}
	for _, def := range []string{"", "deny", "allow"} {
		c.Default = def
		p := mustCompile(t, c, nil)
		for _, v1 := range []bool{false, true} {
			d := p.Decide(Request{Caller: aliceCaller, Path: "/meta-data/iam/info", V1: v1})
			if d.Allow != (def == "allow") || d.RejectV1 || d.Rule != "" || d.Pattern != "" {
				t.Errorf("default %q v1=%v: %+v", def, v1, d)
			}
			for _, s := range []string{"no rule matched", "uid 1001", "source 10.0.0.9", "the default is " + map[bool]string{true: "allow", false: "deny"}[d.Allow]} {
				if !strings.Contains(d.Reason, s) {
					t.Errorf("default %q: reason %q does not say %q", def, d.Reason, s)
				}
			}
		}
	}
	c.Default = "deny"
	p := mustCompile(t, c, nil)
	d := p.Decide(Request{Caller: Caller{Interface: "veth1"}, Path: "/"})
	if want := "no rule matched the caller (uid unknown, source unknown, interface veth1): the default is deny"; d.Reason != want {
		t.Errorf("reason %q, want %q", d.Reason, want)
	}
}

func TestDecideAudit(t *testing.T) {
	enforce := decodeConfig(t, exampleYAML)
	audit := enforce
	audit.Mode = "audit"
	pe, pa := mustCompile(t, enforce, hostNames()), mustCompile(t, audit, hostNames())
	if pe.Mode() != Enforce || pa.Mode() != Audit || pa.Mode().String() != "audit" {
		t.Fatalf("modes %v %v", pe.Mode(), pa.Mode())
	}
	for _, c := range []Caller{rootCaller, appCaller, aliceCaller, unknownCaller, container} {
		for _, path := range append([]string{"/", "/meta-data/instance-id", "/meta-data/placement/region"}, secretPaths...) {
			for _, v1 := range []bool{false, true} {
				r := Request{Caller: c, Path: path, V1: v1}
				de, da := pe.Decide(r), pa.Decide(r)
				if !de.Enforced || da.Enforced {
					t.Errorf("%s: Enforced %v (enforce) %v (audit)", path, de.Enforced, da.Enforced)
				}
				da.Enforced = true
				if de != da {
					t.Errorf("%s: audit %+v, enforce %+v", path, da, de)
				}
			}
		}
	}
	if d := pa.Decide(Request{Caller: rootCaller, Path: "/a/../b"}); d.Allow || !d.Enforced {
		t.Errorf("non-canonical path in audit mode: %+v, want an enforced denial", d)
	}
}

func TestDecideNilPolicy(t *testing.T) {
	var p *Policy
	if d := p.Decide(Request{Caller: rootCaller, Path: "/"}); d.Allow || !d.Enforced || p.Mode() != Enforce {
		t.Errorf("nil policy: %+v", d)
	}
}

func TestDecideMatching(t *testing.T) {
	c := Config{Rules: []RuleConfig{
		{Name: "by-group", Match: &MatchConfig{Groups: []string{"wheel", "3000"}}, Allow: []string{"/**"}},
		{Name: "by-iface", Match: &MatchConfig{Interfaces: []string{"docker0", "veth+"}}, Allow: []string{"/**"}},
		{Name: "by-v6", Match: &MatchConfig{Sources: []string{"fd00::/8", "192.0.2.7"}}, Allow: []string{"/**"}},
		{Name: "by-mapped", Match: &MatchConfig{Sources: []string{"::ffff:198.51.100.0/120"}}, Allow: []string{"/**"}},
	}}
	p := mustCompile(t, c, hostNames())
	tests := []struct {
		name   string
		caller Caller
		rule   string
	}{
		{"supplementary group by name", Caller{UIDKnown: true, UID: 5, GIDs: []uint32{5, 10}}, "by-group"},
		{"group by number", Caller{UIDKnown: true, UID: 5, GIDs: []uint32{3000}}, "by-group"},
		{"groups need a known uid", Caller{UID: 5, GIDs: []uint32{10}}, ""},
		{"interface exact", Caller{Container: true, Interface: "docker0"}, "by-iface"},
		{"interface is case-sensitive", Caller{Container: true, Interface: "Docker0"}, ""},
		{"interface not a prefix unless +", Caller{Container: true, Interface: "docker01"}, ""},
		{"interface prefix", Caller{Container: true, Interface: "veth9a8b7c"}, "by-iface"},
		{"interface prefix needs the prefix", Caller{Container: true, Interface: "vet"}, ""},
		{"host process has no interface", Caller{Container: true, Interface: ""}, ""},
		{"v6 source", Caller{Container: true, Source: netip.MustParseAddr("fd00:ec2::5")}, "by-v6"},
		{"v6 source with zone", Caller{Container: true, Source: netip.MustParseAddr("fd00::5%eth0")}, "by-v6"},
		{"bare ip source", Caller{Container: true, Source: netip.MustParseAddr("192.0.2.7")}, "by-v6"},
		{"bare ip is /32", Caller{Container: true, Source: netip.MustParseAddr("192.0.2.8")}, ""},
		{"mapped prefix, v4 caller", Caller{Container: true, Source: netip.MustParseAddr("198.51.100.9")}, "by-mapped"},
		{"mapped prefix, mapped caller", Caller{Container: true, Source: netip.MustParseAddr("::ffff:198.51.100.9")}, "by-mapped"},
		{"no source", Caller{Container: true}, ""},
		{"host caller at a listed source", Caller{UIDKnown: true, UID: 995, Source: netip.MustParseAddr("192.0.2.7")}, ""},
		{"host caller at a listed interface's address", Caller{UIDKnown: true, UID: 995, Source: netip.MustParseAddr("fd00::1")}, ""},
		{"container caller in a listed group", Caller{Container: true, UIDKnown: true, UID: 5, GIDs: []uint32{10}, Source: netip.MustParseAddr("203.0.113.1")}, ""},
	}
	for _, tt := range tests {
		if d := p.Decide(Request{Caller: tt.caller, Path: "/"}); d.Rule != tt.rule {
			t.Errorf("%s: rule %q, want %q", tt.name, d.Rule, tt.rule)
		}
	}
}

func TestDecideFirstRuleWins(t *testing.T) {
	c := Config{Rules: []RuleConfig{
		{Name: "narrow", Match: &MatchConfig{Users: []string{"1001"}}, Allow: []string{"/meta-data/placement/**"}},
		{Name: "wide", Match: &MatchConfig{}, Allow: []string{"/**"}},
	}}
	p := mustCompile(t, c, nil)
	checkDecision(t, p, "first rule applies, no fall-through", Request{Caller: aliceCaller, Path: "/meta-data/instance-id"}, want{false, false, "narrow", ""})
	checkDecision(t, p, "others reach the wide rule", Request{Caller: appCaller, Path: "/meta-data/instance-id"}, want{true, false, "wide", "/**"})
}
