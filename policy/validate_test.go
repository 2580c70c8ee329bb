package policy

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/imdsguard/imdsguard/internal/config/field"
)

func TestValidateAccepts(t *testing.T) {
	good := map[string]Config{
		"default": DefaultConfig(),
		"example": decodeConfig(t, exampleYAML),
		"empty":   {},
		"all fields": {Mode: "audit", Default: "allow", Rules: []RuleConfig{{
			Name: "x",
			Match: &MatchConfig{
				Users: []string{"root", "0", "4294967295", "svc.agent", "DOMAIN\\bob"}, Groups: []string{"wheel", "10"},
				Sources:    []string{"10.0.0.0/8", "10.1.2.3", "fd00::/8", "fd00::1", "::ffff:172.17.0.0/112"},
				Interfaces: []string{"docker0", "br-+", "veth+", "eth0.100", "a_b", "abcdefghijklmno", "abcdefghijklmn+", "+", "lxc_health", "flannel.1"},
			},
			Allow:  []string{"/", "/**", "/meta-data/", "/meta-data/*/x", "/a/team-*", "/*-role*/b", "/x+y=z,w_v:u@t~s"},
			Deny:   []string{"/api/token", "/...", "/a.b/**/c"},
			IMDSv1: "reject",
		}}},
	}
	for name, c := range good {
		if err := c.Validate(); err != nil {
			t.Errorf("%s: Validate() = %v, want nil", name, err)
		}
	}
}

func TestValidateErrors(t *testing.T) {
	rule := func(mut func(*RuleConfig)) Config {
		r := RuleConfig{Name: "r", Match: &MatchConfig{}, Allow: []string{"/**"}}
		mut(&r)
		return Config{Rules: []RuleConfig{{Name: "first", Match: &MatchConfig{Users: []string{"root"}}, Allow: []string{"/**"}}, r}}
	}
	tests := []struct {
		name string
		c    Config
		path string
		msg  string // a fragment of the message
	}{
		{"mode", Config{Mode: "enforcing"}, "mode", "write enforce or audit"},
		{"mode case", Config{Mode: "Audit"}, "mode", `"Audit" is not valid`},
		{"default", Config{Default: "permit"}, "default", "write deny or allow"},
		{"imds_v1", rule(func(r *RuleConfig) { r.IMDSv1 = "block" }), "rules[1].imds_v1", "write upgrade or reject"},
		{"no name", rule(func(r *RuleConfig) { r.Name = "" }), "rules[1].name", "needs a name"},
		{"dup name", rule(func(r *RuleConfig) { r.Name = "first" }), "rules[1].name", `duplicate rule name "first": rules[0]`},
		{"no match", rule(func(r *RuleConfig) { r.Match = nil }), "rules[1].match", "match: {}"},
		{"empty users list", rule(func(r *RuleConfig) { r.Match.Users = []string{} }), "rules[1].match.users", "empty list"},
		{"empty sources list", rule(func(r *RuleConfig) { r.Match.Sources = []string{} }), "rules[1].match.sources", "empty list"},
		{"empty user", rule(func(r *RuleConfig) { r.Match.Users = []string{"app", ""} }), "rules[1].match.users[1]", "empty user"},
		{"empty group", rule(func(r *RuleConfig) { r.Match.Groups = []string{""} }), "rules[1].match.groups[0]", "empty group"},
		{"uid range", rule(func(r *RuleConfig) { r.Match.Users = []string{"4294967296"} }), "rules[1].match.users[0]", "out of range"},
		{"user space", rule(func(r *RuleConfig) { r.Match.Users = []string{"root app"} }), "rules[1].match.users[0]", "not a user name"},
		{"group colon", rule(func(r *RuleConfig) { r.Match.Groups = []string{"a:b"} }), "rules[1].match.groups[0]", "not a group name"},
		{"source", rule(func(r *RuleConfig) { r.Match.Sources = []string{"172.17.0.0/33"} }), "rules[1].match.sources[0]", "not a CIDR"},
		{"source name", rule(func(r *RuleConfig) { r.Match.Sources = []string{"10.0.0.0/8", "docker0"} }), "rules[1].match.sources[1]", "e.g. 172.17.0.0/16"},
		{"source empty", rule(func(r *RuleConfig) { r.Match.Sources = []string{""} }), "rules[1].match.sources[0]", "not a CIDR"},
		{"source zone", rule(func(r *RuleConfig) { r.Match.Sources = []string{"fe80::1%eth0"} }), "rules[1].match.sources[0]", "not a CIDR"},
		{"iface long", rule(func(r *RuleConfig) { r.Match.Interfaces = []string{"abcdefghijklmnop"} }), "rules[1].match.interfaces[0]", "1 to 15"},
		{"iface char", rule(func(r *RuleConfig) { r.Match.Interfaces = []string{"eth/0"} }), "rules[1].match.interfaces[0]", "not an interface name"},
		{"iface long with plus", rule(func(r *RuleConfig) { r.Match.Interfaces = []string{"abcdefghijklmno+"} }), "rules[1].match.interfaces[0]", "1 to 15 (IFNAMSIZ-1), a trailing \"+\" included; write abcdefghijklmno"},
		{"iface plus inside", rule(func(r *RuleConfig) { r.Match.Interfaces = []string{"ve+th"} }), "rules[1].match.interfaces[0]", "veth+"},
		{"iface ip link peer", rule(func(r *RuleConfig) { r.Match.Interfaces = []string{"veth1@if3"} }), "rules[1].match.interfaces[0]", "not an interface name"},
		{"iface negation", rule(func(r *RuleConfig) { r.Match.Interfaces = []string{"!eth0"} }), "rules[1].match.interfaces[0]", "negation is not supported"},
		{"iface star", rule(func(r *RuleConfig) { r.Match.Interfaces = []string{"veth*"} }), "rules[1].match.interfaces[0]", "not an interface name"},
		{"iface empty", rule(func(r *RuleConfig) { r.Match.Interfaces = []string{""} }), "rules[1].match.interfaces[0]", "not an interface name"},
		{"iface dotdot", rule(func(r *RuleConfig) { r.Match.Interfaces = []string{".."} }), "rules[1].match.interfaces[0]", "not an interface name"},
		{"allow empty", rule(func(r *RuleConfig) { r.Allow = []string{"/a", ""} }), "rules[1].allow[1]", "empty pattern"},
		{"allow relative", rule(func(r *RuleConfig) { r.Allow = []string{"meta-data/**"} }), "rules[1].allow[0]", `write "/meta-data/**"`},
		{"allow latest", rule(func(r *RuleConfig) { r.Allow = []string{"/latest/meta-data/**"} }), "rules[1].allow[0]", `drop the prefix (write "/meta-data/**")`},
		{"deny dated", rule(func(r *RuleConfig) { r.Deny = []string{"/2009-04-04/meta-data/iam/**"} }), "rules[1].deny[0]", `version prefix "/2009-04-04"`},
		{"deny 1.0", rule(func(r *RuleConfig) { r.Deny = []string{"/1.0/user-data"} }), "rules[1].deny[0]", `write "/user-data"`},
		{"deny latest alone", rule(func(r *RuleConfig) { r.Deny = []string{"/Latest/"} }), "rules[1].deny[0]", `write "/**"`},
		{"double slash", rule(func(r *RuleConfig) { r.Deny = []string{"/meta-data//iam"} }), "rules[1].deny[0]", "empty segment"},
		{"dot", rule(func(r *RuleConfig) { r.Deny = []string{"/meta-data/./iam"} }), "rules[1].deny[0]", `"." segment`},
		{"dotdot", rule(func(r *RuleConfig) { r.Deny = []string{"/meta-data/../iam"} }), "rules[1].deny[0]", `".." segment`},
		{"star star in segment", rule(func(r *RuleConfig) { r.Deny = []string{"/meta-data/iam**"} }), "rules[1].deny[0]", "whole segment"},
		{"question mark", rule(func(r *RuleConfig) { r.Deny = []string{"/meta-data/ia?"} }), "rules[1].deny[0]", `character '?' is not allowed`},
		{"class", rule(func(r *RuleConfig) { r.Deny = []string{"/meta-data/[i]am"} }), "rules[1].deny[0]", "not allowed"},
		{"percent", rule(func(r *RuleConfig) { r.Deny = []string{"/meta-data/%69am"} }), "rules[1].deny[0]", `character '%' is not allowed`},
		{"backslash", rule(func(r *RuleConfig) { r.Deny = []string{`/meta-data\iam`} }), "rules[1].deny[0]", "not allowed"},
		{"space", rule(func(r *RuleConfig) { r.Deny = []string{"/meta-data/ iam"} }), "rules[1].deny[0]", "not allowed"},
		{"query", rule(func(r *RuleConfig) { r.Deny = []string{"/meta-data?x"} }), "rules[1].deny[0]", "not allowed"},
		{"non-ascii", rule(func(r *RuleConfig) { r.Deny = []string{"/meta-data/ıam"} }), "rules[1].deny[0]", "not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := field.Split(tt.c.Validate())
			if len(errs) != 1 {
				t.Fatalf("Validate() = %v, want one error", errs)
			}
			var fe *field.Error
			if !errors.As(errs[0], &fe) {
				t.Fatalf("error %v (%T) is not a *field.Error", errs[0], errs[0])
			}
			if fe.Path != tt.path || !strings.Contains(fe.Msg, tt.msg) {
				t.Errorf("got %q: %q, want %q: ...%s...", fe.Path, fe.Msg, tt.path, tt.msg)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := Config{
		Mode:    "strict",
		Default: "nope",
		Rules: []RuleConfig{
			{Name: "a", Match: &MatchConfig{Sources: []string{"x", "10.0.0.0/8", "y"}}, Allow: []string{"/latest/**"}, IMDSv1: "v2"},
			{Name: "a"},
			{Match: &MatchConfig{Interfaces: []string{"veth*"}}, Deny: []string{"*"}},
		},
	}
	var got []string
	for _, err := range field.Split(c.Validate()) {
		var fe *field.Error
		if !errors.As(err, &fe) {
			t.Fatalf("error %v (%T) is not a *field.Error", err, err)
		}
		got = append(got, fe.Path)
	}
	want := []string{
		"mode", "default",
		"rules[0].match.sources[0]", "rules[0].match.sources[2]", "rules[0].allow[0]", "rules[0].imds_v1",
		"rules[1].name", "rules[1].match",
		"rules[2].name", "rules[2].match.interfaces[0]", "rules[2].deny[0]",
	}
	if !slices.Equal(got, want) {
		t.Errorf("paths:\n got  %q\n want %q", got, want)
	}
}
