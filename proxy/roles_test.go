package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/internal/audit"
	"github.com/imdsguard/imdsguard/internal/identity"
	"github.com/imdsguard/imdsguard/internal/roles"
	"github.com/imdsguard/imdsguard/internal/sts"
	"github.com/imdsguard/imdsguard/internal/workload"
	"github.com/imdsguard/imdsguard/policy"
)

const roleBase = "arn:aws:iam::123456789012:role/"

// stubSTS is an sts.Assumer whose answer the test sets.
type stubSTS struct {
	calls atomic.Int64
	delay time.Duration
	err   error
}

func (s *stubSTS) AssumeRole(ctx context.Context, sess roles.Session, d time.Duration) (roles.Credentials, error) {
	s.calls.Add(1)
	if s.delay > 0 {
		select {
		case <-time.After(s.delay):
		case <-ctx.Done():
			return roles.Credentials{}, ctx.Err()
		}
	}
	if s.err != nil {
		return roles.Credentials{}, s.err
	}
	now := time.Now()
	return roles.Credentials{AccessKeyID: "ASIA-" + sess.RoleName, SecretAccessKey: "secret-" + sess.Name, SessionToken: "token\"/+=",
		Expiration: now.Add(d), LastUpdated: now}, nil
}

// withRoles gives every caller of the proxy the workload w, the roles
// configuration of the example, and a broker over s.
func withRoles(t *testing.T, w *workload.Workload, s *stubSTS) envOpt {
	return func(o *Options) {
		cfg := roles.DefaultConfig()
		cfg.BaseARN = roleBase
		cfg.Namespaces = map[string][]string{"payments": {"payments-*"}, "kube-system": {"*"}}
		o.Roles = roles.NewResolver(cfg)
		b := sts.New(sts.Options{Assumer: s})
		t.Cleanup(b.Close)
		o.Credentials = b
		o.Identify = func(c net.Conn) identity.Caller {
			return identity.Caller{Class: identity.Container, Remote: netip.MustParseAddrPort("198.51.100.2:40000"), Workload: w}
		}
	}
}

func rolePod(ns, name, role string) *workload.Workload {
	ann := map[string]string{}
	if role != "" {
		ann[roles.AnnotationRole] = role
	}
	return &workload.Workload{Runtime: workload.Containerd, Name: "app", Labels: map[string]string{},
		Pod: &workload.Pod{Namespace: ns, Name: name, UID: "u-1", Labels: map[string]string{}, Annotations: ann}}
}

// every caller may read everything: the role step, not the policy, is
// what these tests are about.
const allowAll = "rules: [{name: all, match: {}, allow: ['/**']}]"

func (e *env) noIAMUpstream(t *testing.T) {
	t.Helper()
	for _, r := range e.imds.received() {
		if p := strings.ToLower(r.URL.Path); strings.Contains(p, "/iam") || strings.Contains(p, "identity-credentials") {
			t.Errorf("IMDS was asked %s for a caller with a role", r.URL.Path)
		}
	}
}

func (e *env) lastEvent(t *testing.T) *audit.Event {
	t.Helper()
	var ev *audit.Event
	for {
		select {
		case ev = <-e.events:
		default:
			if ev == nil {
				t.Fatal("no event")
			}
			return ev
		}
	}
}

// A pod whose annotation its namespace allows: the listing names its role
// only, the credentials are IMDS's JSON from STS, everything else under
// iam/ is 404, and IMDS is never asked.
func TestRoleServed(t *testing.T) {
	s := &stubSTS{}
	e := newEnv(t, withPolicy(t, allowAll), withCache(t), withRoles(t, rolePod("payments", "api-1", "payments-api"), s))
	for _, c := range []struct {
		path   string
		status int
		body   string
	}{
		{"/latest/meta-data/iam/security-credentials/", 200, "payments-api"},
		{"/latest/meta-data/iam/security-credentials", 200, "payments-api"},
		{"/2009-04-04/meta-data/iam/security-credentials/", 200, "payments-api"},
		{"/latest/meta-data/IAM/Security-Credentials/", 200, "payments-api"},
		{"/latest/meta-data/iam/", 200, "security-credentials/"},
		{"/latest/meta-data/iam/info", 404, "404 - Not Found"},
		{"/latest/meta-data/iam/security-credentials/node-role", 404, "404 - Not Found"},
		{"/latest/meta-data/iam/security-credentials/payments-api/x", 404, "404 - Not Found"},
		{"/latest/meta-data/identity-credentials/ec2/security-credentials/ec2-instance", 404, "404 - Not Found"},
	} {
		resp := e.raw(t, "GET", c.path)
		if body := bodyOf(resp); resp.StatusCode != c.status || !strings.Contains(body, c.body) || resp.Header.Get("Server") != "EC2ws" {
			t.Errorf("GET %s: %d %q, want %d %q", c.path, resp.StatusCode, body, c.status, c.body)
		}
	}
	resp := e.raw(t, "GET", "/latest/meta-data/iam/security-credentials/payments-api")
	body := bodyOf(resp)
	var doc map[string]string
	if err := json.Unmarshal([]byte(body), &doc); err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/plain" {
		t.Fatalf("credentials: %d %q: %v", resp.StatusCode, body, err)
	}
	if doc["Code"] != "Success" || doc["Type"] != "AWS-HMAC" || doc["AccessKeyId"] != "ASIA-payments-api" ||
		doc["SecretAccessKey"] != "secret-payments.api-1" || doc["Token"] != "token\"/+=" || len(doc) != 7 {
		t.Errorf("credentials document %v", doc)
	}
	for _, k := range []string{"LastUpdated", "Expiration"} {
		if ts, err := time.Parse(time.RFC3339, doc[k]); err != nil || !strings.HasSuffix(doc[k], "Z") || ts.Nanosecond() != 0 {
			t.Errorf("%s %q: want RFC 3339 UTC to the second", k, doc[k])
		}
	}
	ev := e.lastEvent(t)
	if ev.Role != roleBase+"payments-api" || ev.Session != "payments.api-1" || ev.Decision != audit.Allow || ev.RoleCache == "" ||
		!strings.Contains(ev.RoleReason, "annotation") {
		t.Errorf("event %+v", ev)
	}
	if resp := e.raw(t, "GET", "/latest/meta-data/placement/region"); resp.StatusCode != 200 {
		t.Errorf("other paths still from IMDS: %d", resp.StatusCode)
	}
	e.noIAMUpstream(t)
	if n := s.calls.Load(); n != 1 {
		t.Errorf("%d STS calls, want 1", n)
	}
}

// Callers without a role of their own keep what the policy gives them:
// IMDS's answer; the event says why they have no role.
func TestNoRoleUnchanged(t *testing.T) {
	for name, w := range map[string]*workload.Workload{
		"no annotation":        rolePod("payments", "api-1", ""),
		"not a pod":            {Runtime: workload.Docker, Name: "web", Labels: map[string]string{}},
		"runtime said nothing": nil,
	} {
		t.Run(name, func(t *testing.T) {
			s := &stubSTS{}
			e := newEnv(t, withPolicy(t, allowAll), withRoles(t, w, s))
			resp := e.raw(t, "GET", "/latest/meta-data/iam/security-credentials/node-role")
			if body := bodyOf(resp); resp.StatusCode != 200 || !strings.Contains(body, "ASIASECRET") {
				t.Errorf("%d %q, want IMDS's answer", resp.StatusCode, body)
			}
			if ev := e.lastEvent(t); ev.Role != "" || !strings.HasPrefix(ev.RoleReason, "no role") {
				t.Errorf("event %+v", ev)
			}
			if s.calls.Load() != 0 {
				t.Error("STS asked for a caller without a role")
			}
		})
	}
}

// A pod that asks for a role it may not take gets no role and no
// credentials at all (403, the reason in the audit), even where the
// policy would give the node's: it asked for a narrow role, and must not
// fall back on the node's broad one.
func TestRefusedRoleNoNodeCredentials(t *testing.T) {
	for name, w := range map[string]*workload.Workload{
		"namespace not listed": rolePod("default", "web-1", "payments-api"),
		"role not allowed":     rolePod("payments", "api-1", "admin"),
	} {
		t.Run(name, func(t *testing.T) {
			s := &stubSTS{}
			e := newEnv(t, withPolicy(t, allowAll), withRoles(t, w, s))
			for _, path := range []string{"/latest/meta-data/iam/security-credentials/", "/latest/meta-data/iam/security-credentials/node-role"} {
				resp := e.raw(t, "GET", path)
				if body := bodyOf(resp); resp.StatusCode != 403 || strings.Contains(body, "ASIASECRET") || strings.Contains(body, "node-role") {
					t.Errorf("%s: %d %q, want 403 and nothing of the node's", path, resp.StatusCode, body)
				}
				if ev := e.lastEvent(t); ev.Role != "" || !strings.HasPrefix(ev.RoleReason, "no role") || ev.Decision != "deny" {
					t.Errorf("%s: event %+v", path, ev)
				}
			}
			if s.calls.Load() != 0 {
				t.Error("STS asked for a refused role")
			}
		})
	}
}

// A rule's role: gives a container that is not a pod its role, and the
// policy still decides first whether iam/ may be read.
func TestRuleRole(t *testing.T) {
	ci := &workload.Workload{Runtime: workload.Docker, Name: "runner-1", Labels: map[string]string{"app": "ci"}}
	pol := `rules:
  - {name: ci, match: {containers: {labels: {app: ci}}}, role: ci-builder, allow: ['/**']}
  - {name: others, match: {}, allow: ['/**'], deny: ['/meta-data/iam/**']}`
	e := newEnv(t, withPolicy(t, pol), withRoles(t, ci, &stubSTS{}))
	resp := e.raw(t, "GET", "/latest/meta-data/iam/security-credentials/ci-builder")
	if body := bodyOf(resp); resp.StatusCode != 200 || !strings.Contains(body, `"AccessKeyId" : "ASIA-ci-builder"`) {
		t.Errorf("%d %q", resp.StatusCode, body)
	}
	if ev := e.lastEvent(t); ev.Rule != "ci" || ev.Role != roleBase+"ci-builder" || ev.Session != "runner-1" {
		t.Errorf("event %+v", ev)
	}
	denyIAM := `rules: [{name: ci, match: {containers: {labels: {app: ci}}}, role: ci-builder, allow: ['/**'], deny: ['/meta-data/iam/**']}]`
	e = newEnv(t, withPolicy(t, denyIAM), withRoles(t, ci, &stubSTS{}))
	if resp := e.raw(t, "GET", "/latest/meta-data/iam/security-credentials/ci-builder"); resp.StatusCode != 403 {
		t.Errorf("policy denies iam/**: %d, want 403", resp.StatusCode)
	}
	e.noIAMUpstream(t)
}

// When STS fails or is slow, a caller with a role gets an IMDS-style
// error, never the node's credentials: 503 while fetching or STS fails,
// 500 when STS refuses; within the broker's 2 s bound.
func TestRoleFailuresNeverNodeCredentials(t *testing.T) {
	for _, c := range []struct {
		name   string
		s      *stubSTS
		status int
		within time.Duration
	}{
		{"throttled", &stubSTS{err: &sts.Error{Kind: sts.Throttled, Code: "Throttling", Err: errors.New("rate exceeded")}}, 503, time.Second},
		{"5xx", &stubSTS{err: &sts.Error{Kind: sts.ServerError, Code: "InternalFailure", Err: errors.New("boom")}}, 503, time.Second},
		{"denied", &stubSTS{err: &sts.Error{Kind: sts.Denied, Code: "AccessDenied", Err: errors.New("no")}}, 500, time.Second},
		{"slow", &stubSTS{delay: 10 * time.Second}, 503, sts.DefaultWait + 500*time.Millisecond},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, withPolicy(t, allowAll), withCache(t), withRoles(t, rolePod("payments", "api-1", "payments-api"), c.s))
			start := time.Now()
			resp := e.raw(t, "GET", "/latest/meta-data/iam/security-credentials/payments-api")
			took := time.Since(start)
			body := bodyOf(resp)
			if resp.StatusCode != c.status || !strings.Contains(body, "<title>") || strings.Contains(body, "ASIA") || took > c.within {
				t.Errorf("%d after %s: %q", resp.StatusCode, took, body)
			}
			if c.name == "slow" && took < sts.DefaultWait {
				t.Errorf("answered after %s, before the fetch's bound %s", took, sts.DefaultWait)
			}
			if ev := e.lastEvent(t); ev.Decision != audit.Error || ev.Role == "" || ev.Reason == "" {
				t.Errorf("event %+v", ev)
			}
			e.noIAMUpstream(t)
		})
	}
}

// A rule's role that cannot be expanded (a resolver without base_arn; the
// configuration refuses it) refuses credentials, never falls back.
func TestBrokenRoleRefused(t *testing.T) {
	e := newEnv(t, withPolicy(t, `rules: [{name: r, match: {}, role: short, allow: ['/**']}]`), withRoles(t, nil, &stubSTS{}),
		func(o *Options) { o.Roles = roles.NewResolver(roles.DefaultConfig()) })
	for _, p := range []string{"/latest/meta-data/iam/security-credentials/", "/latest/meta-data/iam/security-credentials/short"} {
		if resp := e.raw(t, "GET", p); resp.StatusCode != http.StatusInternalServerError {
			t.Errorf("GET %s: %d, want 500", p, resp.StatusCode)
		}
	}
	e.noIAMUpstream(t)
}

func TestCredentialsJSONShape(t *testing.T) {
	ts := time.Date(2024, 5, 1, 10, 0, 0, 123, time.FixedZone("x", 3600))
	got := credentialsJSON(roles.Credentials{AccessKeyID: "A", SecretAccessKey: "S", SessionToken: "T", Expiration: ts.Add(time.Hour), LastUpdated: ts})
	want := "{\n  \"Code\" : \"Success\",\n  \"LastUpdated\" : \"2024-05-01T09:00:00Z\",\n  \"Type\" : \"AWS-HMAC\",\n  \"AccessKeyId\" : \"A\",\n" +
		"  \"SecretAccessKey\" : \"S\",\n  \"Token\" : \"T\",\n  \"Expiration\" : \"2024-05-01T10:00:00Z\"\n}"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// policy explain says which role a caller would get, why, and how iam/
// is then answered; the same resolution as the proxy's.
func TestExplainRole(t *testing.T) {
	cfg := roles.DefaultConfig()
	cfg.BaseARN = roleBase
	cfg.Namespaces = map[string][]string{"payments": {"payments-*"}}
	res := roles.NewResolver(cfg)
	pol := compilePolicy(t, allowAll)
	for _, c := range []struct {
		w     *workload.Workload
		path  string
		wants []string
	}{
		{rolePod("payments", "api-1", "payments-api"), "/latest/meta-data/iam/security-credentials/payments-api",
			[]string{"role:     " + roleBase + "payments-api, session payments.api-1 (from annotation)", "answer:   the role's credentials from STS"}},
		{rolePod("payments", "api-1", "payments-api"), "/latest/meta-data/iam/info", []string{"answer:   404"}},
		{rolePod("payments", "api-1", "payments-api"), "/latest/meta-data/iam/security-credentials/", []string{"answer:   200, the role's name payments-api alone"}},
		{rolePod("default", "web", "payments-api"), "/latest/meta-data/iam/security-credentials/", []string{"role:     refused", "namespace default is not in roles.namespaces"}},
	} {
		var b strings.Builder
		ExplainRole(&b, res, pol, policy.Caller{Container: true, Workload: c.w}, false, "GET", c.path)
		for _, want := range c.wants {
			if !strings.Contains(b.String(), want) {
				t.Errorf("%s:\n%s\nwant %q", c.path, b.String(), want)
			}
		}
	}
}

// The node's credentials that the cache holds for a caller without a role
// are never served to one with a role: its answer comes from the broker.
func TestCachedNodeCredentialsNotServedToRole(t *testing.T) {
	var current atomic.Pointer[workload.Workload]
	current.Store(rolePod("default", "web", ""))
	e := newEnv(t, withPolicy(t, allowAll), withCache(t), withRoles(t, nil, &stubSTS{}), func(o *Options) {
		o.Identify = func(net.Conn) identity.Caller {
			return identity.Caller{Class: identity.Container, Remote: netip.MustParseAddrPort("198.51.100.2:40000"), Workload: current.Load()}
		}
	})
	for range 2 { // the second read is a cache hit
		resp := e.raw(t, "GET", "/latest/meta-data/iam/security-credentials/payments-api")
		if body := bodyOf(resp); !strings.Contains(body, "ASIASECRET") {
			t.Fatalf("no role: %d %q, want IMDS's answer", resp.StatusCode, body)
		}
	}
	current.Store(rolePod("payments", "api-1", "payments-api"))
	resp := e.raw(t, "GET", "/latest/meta-data/iam/security-credentials/payments-api")
	if body := bodyOf(resp); resp.StatusCode != 200 || strings.Contains(body, "ASIASECRET") || !strings.Contains(body, "ASIA-payments-api") {
		t.Errorf("with a role after the cache held the node's: %d %q", resp.StatusCode, body)
	}
}
