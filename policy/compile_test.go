package policy

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/imdsguard/imdsguard/internal/config/field"
	"github.com/imdsguard/imdsguard/internal/testenv"
)

func TestCompileRefusesInvalid(t *testing.T) {
	p, warns, err := Compile(Config{Mode: "x", Rules: []RuleConfig{{Name: "a"}}}, hostNames())
	if p != nil || warns != nil || len(field.Split(err)) != 2 {
		t.Fatalf("Compile = %v, %v, %v; want nil, nil and Validate's two errors", p, warns, err)
	}
	var fe *field.Error
	if !errors.As(field.Split(err)[0], &fe) || fe.Path != "mode" {
		t.Errorf("first error %v, want a *field.Error at mode", err)
	}
}

func TestCompileResolvesNames(t *testing.T) {
	names := hostNames()
	p, warns, err := Compile(decodeConfig(t, exampleYAML), names)
	if err != nil || len(warns) != 0 {
		t.Fatalf("Compile: %v, warnings %q", err, warns)
	}
	if names.lookups != 3 { // root, app, legacy
		t.Errorf("%d lookups, want 3", names.lookups)
	}
	checkDecision(t, p, "app by name", Request{Caller: appCaller, Path: "/meta-data/instance-id"}, want{true, false, "legacy-app", "/meta-data/**"})
	checkDecision(t, p, "legacy by group name", Request{Caller: legacyCaller, Path: "/meta-data/instance-id"}, want{true, false, "legacy-app", "/meta-data/**"})

	numeric := Config{Rules: []RuleConfig{{Name: "n", Match: &MatchConfig{Users: []string{"0", "1000"}, Groups: []string{"2000"}}, Allow: []string{"/**"}}}}
	names = hostNames()
	if _, _, err := Compile(numeric, names); err != nil || names.lookups != 0 {
		t.Errorf("numeric ids: err %v, %d lookups, want none", err, names.lookups)
	}
}

// The interfaces entries compile to package ifname's patterns, the ones
// redirect.container_interfaces uses: "+" is every container caller whose
// ingress interface is known, never a host caller.
func TestCompileInterfacePatterns(t *testing.T) {
	c := Config{Rules: []RuleConfig{
		{Name: "cilium", Match: &MatchConfig{Interfaces: []string{"lxc+", "cilium_host"}}, Allow: []string{"/**"}},
		{Name: "any-iface", Match: &MatchConfig{Interfaces: []string{"+"}}, Allow: []string{"/**"}},
	}}
	p := mustCompile(t, c, nil)
	for _, tc := range []struct {
		caller Caller
		rule   string
	}{
		{Caller{Container: true, Interface: "lxc_health"}, "cilium"},
		{Caller{Container: true, Interface: "cilium_host"}, "cilium"},
		{Caller{Container: true, Interface: "cilium_net"}, "any-iface"},
		{container, "any-iface"},
		{otherCont, "any-iface"},
		{Caller{Container: true, Source: container.Source}, ""}, // interface unknown
		{rootCaller, ""},
	} {
		if d := p.Decide(Request{Caller: tc.caller, Path: "/"}); d.Rule != tc.rule {
			t.Errorf("caller %+v: rule %q, want %q", tc.caller, d.Rule, tc.rule)
		}
	}
}

func TestCompileUnknownNames(t *testing.T) {
	c := Config{Rules: []RuleConfig{
		{Name: "ghosts", Match: &MatchConfig{Users: []string{"ghost", "1001"}, Groups: []string{"spectres"}}, Allow: []string{"/**"}},
		{Name: "only-ghost", Match: &MatchConfig{Users: []string{"ghost"}}, Allow: []string{"/**"}},
	}}
	p, warns, err := Compile(c, hostNames())
	if err != nil {
		t.Fatal(err)
	}
	wantPrefixes := []string{"rules[0].match.users[0]: user \"ghost\"", "rules[0].match.groups[0]: group \"spectres\"", "rules[1].match.users[0]: user \"ghost\""}
	checkWarnings(t, warns, wantPrefixes)
	// The unknown entries match nobody; the numeric one still matches, and
	// a rule whose only entry is unknown does not turn into `match: {}`.
	checkDecision(t, p, "numeric entry beside an unknown name", Request{Caller: aliceCaller, Path: "/"}, want{true, false, "ghosts", "/**"})
	checkDecision(t, p, "unknown-only rule matches nobody", Request{Caller: appCaller, Path: "/"}, want{false, false, "", ""})
	checkDecision(t, p, "unknown identity", Request{Caller: unknownCaller, Path: "/"}, want{false, false, "", ""})

	_, warns, _ = Compile(DefaultConfig(), nil)
	checkWarnings(t, warns, []string{`rules[0].match.users[0]: user "root" does not resolve (no name resolver)`})
}

func TestCompileWarnings(t *testing.T) {
	c := Config{Rules: []RuleConfig{
		{Name: "empty", Match: &MatchConfig{Sources: []string{"172.17.0.5/16"}}},
		{Name: "slash", Match: &MatchConfig{Users: []string{"0"}}, Allow: []string{"/**/", "/"}, Deny: []string{"/meta-data/iam/"}},
		{Name: "all", Match: &MatchConfig{}, Allow: []string{"/**"}},
		{Name: "dead", Match: &MatchConfig{Users: []string{"1000"}}, Allow: []string{"/**"}},
	}}
	p, warns, err := Compile(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkWarnings(t, warns, []string{
		"rules[0].match.sources[0]: 172.17.0.5/16 has host bits set: it means 172.17.0.0/16",
		"rules[0]: rule empty has no allow patterns",
		`rules[1].deny[0]: "/meta-data/iam/" matches only /meta-data/iam itself (a trailing "/" is ignored); write "/meta-data/iam/**"`,
		"rules[3]: rule dead never applies: rule all before it has `match: {}`",
	})
	checkDecision(t, p, "masked source", Request{Caller: container, Path: "/"}, want{false, false, "empty", ""})
	if _, warns, _ := Compile(DefaultConfig(), hostNames()); len(warns) != 0 {
		t.Errorf("default policy warnings: %q", warns)
	}
}

// checkWarnings wants one warning starting with each prefix, in order.
func checkWarnings(t *testing.T, warns, prefixes []string) {
	t.Helper()
	ok := len(warns) == len(prefixes)
	for i := 0; ok && i < len(warns); i++ {
		ok = strings.HasPrefix(warns[i], prefixes[i])
	}
	if !ok {
		t.Errorf("warnings:\n  %s\nwant prefixes:\n  %s", strings.Join(warns, "\n  "), strings.Join(prefixes, "\n  "))
	}
}

func TestSystemNames(t *testing.T) {
	var n Names = SystemNames{}
	uid, err := n.LookupUser("root")
	if err != nil {
		testenv.Skipf(t, "no root user in this system's passwd database: %v", err)
	}
	gid, err := n.LookupGroup("root")
	if uid != 0 || err != nil || gid != 0 {
		t.Errorf("root: uid %d, gid %d, %v", uid, gid, err)
	}
	if _, err := n.LookupUser("imdsguard-no-such-user"); err == nil {
		t.Error("an unknown user resolved")
	}
}

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	if c.Mode != "enforce" || c.Default != "deny" || len(c.Rules) != 2 {
		t.Fatalf("DefaultConfig() = %+v", c)
	}
	if r := c.Rules[1]; !r.Match.empty() || !slices.Equal(r.Allow, []string{"/**"}) || len(r.Deny) != 6 || r.IMDSv1 != "upgrade" {
		t.Errorf("rule for every other caller: %+v", r)
	}
	c.Rules[1].Deny[0] = "/changed"
	if DefaultConfig().Rules[1].Deny[0] != "/meta-data/iam/**" {
		t.Error("DefaultConfig shares its slices between calls")
	}
}
