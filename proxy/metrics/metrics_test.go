package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/proxy/audit"
	"github.com/imdsguard/imdsguard/proxy/identity"
)

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func TestCounts(t *testing.T) {
	m := New(Sources{TokenRefreshes: func() uint64 { return 3 }, RuleRestores: func() uint64 { return 2 }})
	host := &identity.Caller{}
	cont := &identity.Caller{Class: identity.Container}
	m.Observe(&audit.Event{Caller: host, Method: "GET", Version: audit.V1, Decision: audit.Allow, Rule: "root", Status: 200, Upstream: 2 * time.Millisecond})
	m.Observe(&audit.Event{Caller: host, Method: "GET", Version: audit.V1, Decision: audit.Allow, Rule: "root", Status: 200, Upstream: time.Millisecond})
	m.Observe(&audit.Event{Caller: cont, Method: "GET", Version: audit.V2, Decision: audit.Deny, Rule: "containers", Status: 403})
	m.Observe(&audit.Event{Caller: host, Method: "PUT", Token: true, Decision: audit.Allow, Rule: "root", Status: 200})
	m.Observe(&audit.Event{Caller: host, Method: "PUT", Token: true, Decision: audit.Reject, Status: 400})
	m.IdentityFailed()
	m.Reloaded(true)
	m.Reloaded(false)
	m.Reloaded(false)
	out := scrape(t, m)
	for _, want := range []string{
		`imdsguard_requests_total{class="host",decision="allow",rule="root",version="v1"} 2`,
		`imdsguard_requests_total{class="container",decision="deny",rule="containers",version="v2"} 1`,
		`imdsguard_requests_total{class="host",decision="allow",rule="root",version="none"} 1`,
		`imdsguard_requests_total{class="host",decision="reject",rule="-",version="none"} 1`,
		`imdsguard_upstream_latency_seconds_count 2`,
		`imdsguard_tokens_minted_total 1`,
		`imdsguard_identity_lookup_failures_total 1`,
		`imdsguard_policy_reloads_total{result="ok"} 1`,
		`imdsguard_policy_reloads_total{result="failed"} 2`,
		`imdsguard_upstream_token_refreshes_total 3`,
		`imdsguard_rule_restores_total 2`,
		`go_goroutines`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
}
