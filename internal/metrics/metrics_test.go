package metrics

import (
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/internal/audit"
	"github.com/imdsguard/imdsguard/internal/cache"
	"github.com/imdsguard/imdsguard/internal/identity"
)

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func TestCounts(t *testing.T) {
	m := New(Sources{TokenRefreshes: func() uint64 { return 3 }, TokenFailures: func() uint64 { return 1 }, RuleRestores: func() uint64 { return 2 }})
	host := &identity.Caller{}
	cont := &identity.Caller{Class: identity.Container}
	m.Observe(&audit.Event{Caller: host, Method: "GET", Version: audit.V1, Decision: audit.Allow, Rule: "root", Status: 200, Upstream: 2 * time.Millisecond})
	m.Observe(&audit.Event{Caller: host, Method: "GET", Version: audit.V1, Decision: audit.Allow, Rule: "root", Status: 200, Upstream: time.Millisecond})
	// a cache hit waited for no IMDS: counted, not timed
	m.Observe(&audit.Event{Caller: host, Method: "GET", Version: audit.V2, Decision: audit.Allow, Rule: "root", Status: 200, Upstream: time.Microsecond, Cache: cache.Hit.String()})
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
		`imdsguard_requests_total{class="host",decision="allow",rule="root",version="v2"} 1`,
		`imdsguard_tokens_minted_total 1`,
		`imdsguard_identity_lookup_failures_total 1`,
		`imdsguard_policy_reloads_total{result="ok"} 1`,
		`imdsguard_policy_reloads_total{result="failed"} 2`,
		`imdsguard_upstream_token_refreshes_total 3`,
		`imdsguard_upstream_token_failures_total 1`,
		`imdsguard_rule_restores_total 2`,
		`go_goroutines`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
}

// Counts stay right past the table of remembered counters: rules beyond
// maxCounters label sets are counted through the vector.
func TestCountsManyRules(t *testing.T) {
	m := New(Sources{})
	host := &identity.Caller{}
	rules := maxCounters + 50
	for round := range 2 {
		for i := range rules {
			m.Observe(&audit.Event{Caller: host, Method: "GET", Version: audit.V2, Decision: audit.Allow, Rule: fmt.Sprintf("r%d", i), Status: 200})
		}
		if n := len(*m.counters.table.Load()); n != maxCounters {
			t.Fatalf("round %d: %d counters remembered, want %d", round, n, maxCounters)
		}
	}
	out := scrape(t, m)
	for _, i := range []int{0, maxCounters - 1, maxCounters, rules - 1} {
		if want := fmt.Sprintf(`imdsguard_requests_total{class="host",decision="allow",rule="r%d",version="v2"} 2`, i); !strings.Contains(out, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
}

// The cache's counters are read from one snapshot at each scrape.
func TestCacheSeries(t *testing.T) {
	st := cache.Stats{Hits: 90, Misses: 5, Coalesced: 3, Stale: 2, Bypass: 1, Upstream: 7, Refreshes: 2,
		Failures: 1, Evictions: 4, ClockJumps: 1, Entries: 12, Bytes: 3456}
	out := scrape(t, New(Sources{Cache: func() cache.Stats { return st }}))
	for _, want := range []string{
		`imdsguard_cache_reads_total{outcome="hit"} 90`,
		`imdsguard_cache_reads_total{outcome="miss"} 5`,
		`imdsguard_cache_reads_total{outcome="coalesced"} 3`,
		`imdsguard_cache_reads_total{outcome="stale"} 2`,
		`imdsguard_cache_reads_total{outcome="bypass"} 1`,
		`imdsguard_cache_upstream_requests_total 7`,
		`imdsguard_cache_refreshes_total 2`,
		`imdsguard_cache_upstream_failures_total 1`,
		`imdsguard_cache_evictions_total 4`,
		`imdsguard_cache_clock_jumps_total 1`,
		`imdsguard_cache_entries 12`,
		`imdsguard_cache_bytes 3456`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	if out := scrape(t, New(Sources{})); strings.Contains(out, "imdsguard_cache_") {
		t.Error("cache series without a cache")
	}
}
