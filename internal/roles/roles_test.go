package roles

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/internal/config/field"
	"github.com/imdsguard/imdsguard/internal/workload"
)

const base = "arn:aws:iam::123456789012:role/"

func TestValidate(t *testing.T) {
	ok := DefaultConfig()
	ok.BaseARN = base
	ok.Namespaces = map[string][]string{"payments": {"payments-*"}, "kube-system": {"*"}}
	ok.STSEndpoint = "https://sts.eu-west-1.amazonaws.com"
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, c := range []struct {
		edit func(*Config)
		path string
	}{
		{func(c *Config) { c.BaseARN = "arn:aws:iam::123456789012:role" }, "base_arn"},
		{func(c *Config) { c.BaseARN = "arn:aws:s3:::bucket/" }, "base_arn"},
		{func(c *Config) { c.BaseARN = "arn:aws:iam::12345:role/" }, "base_arn"},
		{func(c *Config) { c.Namespaces = map[string][]string{"payments": {}} }, "namespaces.payments"},
		{func(c *Config) { c.Namespaces = map[string][]string{"payments": {"a b"}} }, "namespaces.payments[0]"},
		{func(c *Config) { c.Namespaces = map[string][]string{"": {"x"}} }, "namespaces.''"},
		{func(c *Config) { c.SessionDuration = field.Duration{Duration: 10 * time.Minute} }, "session_duration"},
		{func(c *Config) { c.SessionDuration = field.Duration{Duration: 13 * time.Hour} }, "session_duration"},
		{func(c *Config) { c.SessionDuration = field.Duration{Duration: -1, Text: "1 hour"} }, "session_duration"},
		{func(c *Config) { c.STSEndpoint = "sts.amazonaws.com" }, "sts_endpoint"},
		{func(c *Config) { c.STSEndpoint = "ftp://sts" }, "sts_endpoint"},
		{func(c *Config) { c.STSRate = 0 }, "sts_rate"},
		{func(c *Config) { c.STSBurst = 0 }, "sts_burst"},
	} {
		cfg := ok
		c.edit(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), c.path+": ") {
			t.Errorf("want an error at %s, got %v", c.path, err)
		}
	}
}

func TestExpand(t *testing.T) {
	for _, c := range []struct {
		base, ref, arn, name, err string
	}{
		{base, "ci-builder", base + "ci-builder", "ci-builder", ""},
		{base, "team/ci", base + "team/ci", "ci", ""},
		{"", "arn:aws:iam::999999999999:role/x", "arn:aws:iam::999999999999:role/x", "x", ""},
		{base, "arn:aws-cn:iam::999999999999:role/p/x", "arn:aws-cn:iam::999999999999:role/p/x", "x", ""},
		{"", "ci-builder", "", "", "base_arn is not set"},
		{base, "bad name", "", "", "not allowed"},
		{base, "a//b", "", "", "empty path segment"},
		{base, strings.Repeat("x", 65), "", "", "longer than 64"},
		{base, "arn:aws:iam::123456789012:user/x", "", "", "not a role ARN"},
		{base, "arn:aws:sts::123456789012:role/x", "", "", "not an IAM ARN"},
		{base, "", "", "", "empty role"},
	} {
		a, err := Expand(c.base, c.ref)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("Expand(%q, %q) = %v, want error with %q", c.base, c.ref, err, c.err)
			}
			continue
		}
		if err != nil || a.Full != c.arn || a.Name != c.name {
			t.Errorf("Expand(%q, %q) = %+v, %v; want %s (%s)", c.base, c.ref, a, err, c.arn, c.name)
		}
	}
}

func TestCleanSessionName(t *testing.T) {
	long := "payments." + strings.Repeat("billing-api-7f9c8d6b5-", 4)
	long2 := long[:len(long)-1] + "y"
	for _, c := range []struct{ in, want string }{
		{"payments.api-1", "payments.api-1"},
		{"kube-system.coredns_x+y=z,a@b", "kube-system.coredns_x+y=z,a@b"},
		{"a b/c:d", "a-b-c-d"},
		{"héllo", "h-llo"},
		{"x", "imdsguard.x"},
		{"", "imdsguard."},
	} {
		if got := CleanSessionName(c.in); got != c.want {
			t.Errorf("CleanSessionName(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	a, b := CleanSessionName(long), CleanSessionName(long2)
	if len(a) != MaxSessionName || len(b) != MaxSessionName || a == b || a[:55] != long[:55] || a[55] != '-' {
		t.Errorf("long names: %q, %q", a, b)
	}
	if CleanSessionName(long) != a {
		t.Error("not stable")
	}
}

func pod(ns, name string, annotations map[string]string) *workload.Workload {
	return &workload.Workload{Runtime: workload.Containerd, Name: "app", Labels: map[string]string{},
		Pod: &workload.Pod{Namespace: ns, Name: name, UID: "uid-" + name, Labels: map[string]string{}, Annotations: annotations}}
}

func TestResolve(t *testing.T) {
	cfg := DefaultConfig()
	cfg.BaseARN = base
	cfg.Namespaces = map[string][]string{"payments": {"payments-*"}, "kube-system": {"*"}, "ext": {"arn:aws:iam::999999999999:role/shared"}}
	r := NewResolver(cfg)
	ann := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, c := range []struct {
		name    string
		s       Subject
		arn     string // "" no role
		session string
		extID   string
		source  string
		reason  string
		broken  bool
	}{
		{"rule role, docker container", Subject{Rule: "ci", RuleRole: "ci-builder", Workload: &workload.Workload{Name: "runner-1"}},
			base + "ci-builder", "runner-1", "", "rule ci", "from rule ci", false},
		{"rule role beats annotation", Subject{Rule: "ci", RuleRole: "arn:aws:iam::999999999999:role/x", Workload: pod("payments", "api-1", ann(AnnotationRole, "payments-api"))},
			"arn:aws:iam::999999999999:role/x", "payments.api-1", "", "rule ci", "", false},
		{"rule role, host user", Subject{Rule: "agent", RuleRole: "agent", UIDKnown: true, UID: 1001},
			base + "agent", "host.uid-1001", "", "rule agent", "", false},
		{"rule role, container the runtime did not name", Subject{Rule: "net", RuleRole: "agent", Container: true, Source: netip.MustParseAddr("fd00::5")},
			base + "agent", "container.fd00--5", "", "rule net", "", false},
		{"rule role, unknown user", Subject{Rule: "all", RuleRole: "agent"}, base + "agent", "host", "", "rule all", "", false},
		{"annotation allowed", Subject{Rule: "pods", Workload: pod("payments", "api-1", ann(AnnotationRole, "payments-api", AnnotationExternalID, "xid"))},
			base + "payments-api", "payments.api-1", "xid", "annotation", `roles.namespaces.payments "payments-*"`, false},
		{"annotation full ARN under base", Subject{Workload: pod("payments", "api-1", ann(AnnotationRole, base+"payments-api"))},
			base + "payments-api", "payments.api-1", "", "annotation", "", false},
		{"annotation session name", Subject{Workload: pod("kube-system", "dns", ann(AnnotationRole, "dns", AnnotationSessionName, "my session"))},
			base + "dns", "my-session", "", "annotation", "", false},
		{"annotation cross-account listed", Subject{Workload: pod("ext", "p", ann(AnnotationRole, "arn:aws:iam::999999999999:role/shared"))},
			"arn:aws:iam::999999999999:role/shared", "ext.p", "", "annotation", "", false},
		{"annotation role not allowed", Subject{Workload: pod("payments", "api-1", ann(AnnotationRole, "admin"))},
			"", "", "", "annotation", "which roles.namespaces.payments (payments-*) does not allow", false},
		{"annotation ARN elsewhere not allowed by name glob", Subject{Workload: pod("payments", "api-1", ann(AnnotationRole, "arn:aws:iam::999999999999:role/payments-x"))},
			"", "", "", "annotation", "does not allow", false},
		{"namespace not listed", Subject{Workload: pod("default", "web", ann(AnnotationRole, "payments-api"))},
			"", "", "", "annotation", "namespace default is not in roles.namespaces", false},
		{"bad annotation", Subject{Workload: pod("payments", "api-1", ann(AnnotationRole, "no such/"))},
			"", "", "", "annotation", "annotation", false},
		{"pod without annotation", Subject{Rule: "pods", Workload: pod("payments", "api-1", ann())},
			"", "", "", "", "has no iam.amazonaws.com/role annotation", false},
		{"sandbox not the kubelet's", Subject{Workload: pod("payments", "api-1", nil)},
			"", "", "", "", "has no iam.amazonaws.com/role annotation", false},
		{"not a pod", Subject{Workload: &workload.Workload{Name: "web", Labels: map[string]string{AnnotationRole: "x"}}},
			"", "", "", "", "not a pod", false},
		{"host process", Subject{UIDKnown: true}, "", "", "", "", "not a pod", false},
	} {
		a := r.Resolve(c.s)
		if a.Session.RoleARN != c.arn || a.Session.Name != c.session || a.Session.ExternalID != c.extID || a.Source != c.source ||
			!strings.Contains(a.Reason, c.reason) || a.Broken != c.broken || a.Session.RoleARN != c.arn ||
			a.Refused != (c.source == "annotation" && c.arn == "") {
			t.Errorf("%s: %+v", c.name, a)
		}
		if c.arn != "" && a.Session.RoleName != c.arn[strings.LastIndex(c.arn, "/")+1:] {
			t.Errorf("%s: role name %q", c.name, a.Session.RoleName)
		}
	}
}

// A rule's role that cannot be expanded (validation refuses it, but a
// resolver built on another path could meet it) is broken: the caller gets
// no credentials, never the node's.
func TestResolveBrokenRule(t *testing.T) {
	a := NewResolver(DefaultConfig()).Resolve(Subject{Rule: "ci", RuleRole: "ci-builder"})
	if !a.Broken || !a.HasRole() || a.Session.RoleARN != "" || !strings.Contains(a.Reason, "base_arn") {
		t.Errorf("%+v", a)
	}
}

func TestSessionTags(t *testing.T) {
	cfg := DefaultConfig()
	cfg.BaseARN, cfg.SessionTags = base, true
	cfg.Namespaces = map[string][]string{"payments": {"*"}}
	r := NewResolver(cfg)
	a := r.Resolve(Subject{Workload: pod("payments", "api-1", map[string]string{AnnotationRole: "x"})})
	want := []Tag{{TagNamespace, "payments"}, {TagPodName, "api-1"}, {TagPodUID, "uid-api-1"}}
	if len(a.Session.Tags) != 3 || a.Session.Tags[0] != want[0] || a.Session.Tags[1] != want[1] || a.Session.Tags[2] != want[2] {
		t.Errorf("tags %v", a.Session.Tags)
	}
	b := r.Resolve(Subject{Workload: pod("payments", "api-1", map[string]string{AnnotationRole: "x"})})
	if a.Session.Key() != b.Session.Key() {
		t.Error("same pod, different keys")
	}
	c := r.Resolve(Subject{RuleRole: "x", Rule: "r", Workload: &workload.Workload{Name: "web"}})
	if c.Session.Tags != nil {
		t.Errorf("a container that is not a pod gets tags %v", c.Session.Tags)
	}
	if a.Session.Key() == NewResolver(DefaultConfig()).Resolve(Subject{RuleRole: base + "x", Rule: "r", Workload: pod("payments", "api-1", nil)}).Session.Key() {
		t.Error("tags are not part of the key")
	}
}

func TestGlob(t *testing.T) {
	for _, c := range []struct {
		pat, s string
		want   bool
	}{
		{"*", "anything/at:all", true}, {"payments-*", "payments-api", true}, {"payments-*", "payments-", true},
		{"payments-*", "admin", false}, {"a*b*c", "axxbyyc", true}, {"a*b*c", "axxbyy", false}, {"x", "x", true}, {"x", "xy", false},
	} {
		if Glob(c.pat, c.s) != c.want {
			t.Errorf("Glob(%q, %q) != %v", c.pat, c.s, c.want)
		}
	}
}
