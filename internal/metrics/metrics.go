// Package metrics exposes what imdsguard does to Prometheus: requests by
// IMDS version, decision, rule and caller class; upstream latency; tokens
// minted; upstream token refreshes and their failures; rule restores,
// rules in place and fence rejects (rules.go); identity lookup
// failures; policy reloads; STS calls and role credentials (roles.go); and IMDSv1 requests by workload, a bounded
// series that tells, scraped from every node, who still uses IMDSv1
// across a fleet.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/imdsguard/imdsguard/internal/audit"
	"github.com/imdsguard/imdsguard/internal/cache"
	"github.com/imdsguard/imdsguard/internal/redirect"
	"github.com/imdsguard/imdsguard/internal/sts"
)

// Sources are counters kept elsewhere, read when Prometheus scrapes.
type Sources struct {
	TokenRefreshes func() uint64      // upstream token PUTs (upstream.Client.TokenPuts)
	TokenFailures  func() uint64      // upstream token PUTs that failed (upstream.Client.TokenPutFailures)
	RuleRestores   func() uint64      // rules restored after an outside deletion (redirect.Rules.Restores)
	Cache          func() cache.Stats // what the metadata cache did (cache.Cache.Stats); nil: no cache
	Roles          func() sts.Stats   // what the STS broker did (sts.Broker.Stats); nil: none
	// Rules is the redirect rules' health per family (redirect.Rules.Health);
	// nil: the daemon installs no rules.
	Rules func() []redirect.Health
}

// Metrics holds the collectors.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	counters counters // requests' counters by label set
	upstream prometheus.Histogram
	minted   prometheus.Counter
	identity prometheus.Counter
	reloads  *prometheus.CounterVec
	v1       *prometheus.CounterVec // IMDSv1 requests by workload
	v1names  v1Workloads
}

// New makes the collectors and registers them, with Go and process
// metrics, in a registry of their own.
func New(src Sources) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imdsguard_requests_total",
			Help: "Metadata requests by IMDS version (v1: no token, v2: token, none: token PUT or refused before the token check), decision, policy rule and caller class.",
		}, []string{"version", "decision", "rule", "class"}),
		upstream: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "imdsguard_upstream_latency_seconds",
			Help:    "Time waiting for IMDS per forwarded request (not cache hits), token refresh included.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
		minted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "imdsguard_tokens_minted_total",
			Help: "IMDSv2 tokens minted for callers.",
		}),
		identity: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "imdsguard_identity_lookup_failures_total",
			Help: "Connections whose caller the kernel could not attest (they match no user or group rule).",
		}),
		v1: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imdsguard_imdsv1_requests_by_workload_total",
			Help: "IMDSv1 requests (no token) by workload: kind exe (a host process's executable), pod (namespace/owner), image (a container's image without tag), container (the runtime did not answer); at most 64 workloads, the rest counted as other.",
		}, []string{"kind", "workload"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imdsguard_policy_reloads_total",
			Help: "Configuration reloads (SIGHUP) by result: ok, or failed (the previous policy stayed in force).",
		}, []string{"result"}),
	}
	m.reg.MustRegister(m.requests, m.upstream, m.minted, m.identity, m.reloads, m.v1,
		counterFunc("imdsguard_upstream_token_refreshes_total", "IMDSv2 session token PUTs sent to IMDS.", src.TokenRefreshes),
		counterFunc("imdsguard_upstream_token_failures_total", "IMDSv2 session token PUTs that failed: no answer, a status other than 200, or no usable token.", src.TokenFailures),
		counterFunc("imdsguard_rule_restores_total", "Redirect rules restored after something outside deleted them.", src.RuleRestores),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if src.Cache != nil {
		m.reg.MustRegister(cacheCollector{src.Cache})
	}
	if src.Roles != nil {
		m.reg.MustRegister(rolesCollector{src.Roles})
	}
	if src.Rules != nil {
		m.reg.MustRegister(rulesCollector{src.Rules})
	}
	return m
}

// cacheCollector reads the cache's counters at each scrape: one snapshot,
// so the series of one scrape agree with each other.
type cacheCollector struct{ stats func() cache.Stats }

var cacheDescs = struct {
	reads, upstream, refreshes, failures, evictions, clockJumps, entries, bytes *prometheus.Desc
}{
	reads: prometheus.NewDesc("imdsguard_cache_reads_total",
		"Metadata reads by how the cache answered: hit (from memory), miss (went to IMDS), coalesced (waited for another caller's read of the same path), stale (a held answer because IMDS failed or was slow), bypass (not cached).",
		[]string{"outcome"}, nil),
	upstream:   prometheus.NewDesc("imdsguard_cache_upstream_requests_total", "Requests the cache sent to IMDS (misses and background refreshes).", nil, nil),
	refreshes:  prometheus.NewDesc("imdsguard_cache_refreshes_total", "Background refreshes of held answers before they expire.", nil, nil),
	failures:   prometheus.NewDesc("imdsguard_cache_upstream_failures_total", "Cache requests to IMDS that ended in an error, 401, 429 or 5xx.", nil, nil),
	evictions:  prometheus.NewDesc("imdsguard_cache_evictions_total", "Entries removed to stay inside cache.max_entries and cache.max_bytes.", nil, nil),
	clockJumps: prometheus.NewDesc("imdsguard_cache_clock_jumps_total", "Times everything held was dropped after the wall clock jumped (resume from hibernation).", nil, nil),
	entries:    prometheus.NewDesc("imdsguard_cache_entries", "Paths the cache holds.", nil, nil),
	bytes:      prometheus.NewDesc("imdsguard_cache_bytes", "Bytes the cache holds, bodies and headers.", nil, nil),
}

func (c cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	d := cacheDescs
	for _, x := range []*prometheus.Desc{d.reads, d.upstream, d.refreshes, d.failures, d.evictions, d.clockJumps, d.entries, d.bytes} {
		ch <- x
	}
}

func (c cacheCollector) Collect(ch chan<- prometheus.Metric) {
	s, d := c.stats(), cacheDescs
	counter := func(desc *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(v), labels...)
	}
	counter(d.reads, s.Hits, "hit")
	counter(d.reads, s.Misses, "miss")
	counter(d.reads, s.Coalesced, "coalesced")
	counter(d.reads, s.Stale, "stale")
	counter(d.reads, s.Bypass, "bypass")
	counter(d.upstream, s.Upstream)
	counter(d.refreshes, s.Refreshes)
	counter(d.failures, s.Failures)
	counter(d.evictions, s.Evictions)
	counter(d.clockJumps, s.ClockJumps)
	ch <- prometheus.MustNewConstMetric(d.entries, prometheus.GaugeValue, float64(s.Entries))
	ch <- prometheus.MustNewConstMetric(d.bytes, prometheus.GaugeValue, float64(s.Bytes))
}

func counterFunc(name, help string, f func() uint64) prometheus.Collector {
	if f == nil {
		f = func() uint64 { return 0 }
	}
	return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(f()) })
}

// hit is an audit event's Cache when the cache answered: no IMDS was
// waited for, so imdsguard_upstream_latency_seconds leaves it out.
var hit = cache.Hit.String()

// Observe counts one request.
func (m *Metrics) Observe(ev *audit.Event) {
	version := "none"
	if ev.Version != audit.NoVersion {
		version = ev.Version.String()
	}
	rule := ev.Rule
	if rule == "" {
		rule = "-"
	}
	m.counters.of(m.requests, requestLabels{version, string(ev.Decision), rule, ev.Caller.Class.String()}).Inc()
	if ev.Upstream > 0 && ev.Cache != hit {
		m.upstream.Observe(ev.Upstream.Seconds())
	}
	if ev.Version == audit.V1 {
		m.v1.WithLabelValues(m.v1names.label(ev)).Inc()
	}
	if ev.Token && ev.Status == http.StatusOK && ev.Method == http.MethodPut {
		m.minted.Inc()
	}
}

// requestLabels are the labels of imdsguard_requests_total.
type requestLabels struct{ version, decision, rule, class string }

// counters remembers the counter of each label set of requests, so that
// counting a request is a map lookup rather than hashing its labels into
// the vector's (CounterVec.WithLabelValues). Label sets are few: a handful
// of versions, decisions and classes, times the policy's rules. The table
// is copied on write and read without a lock; past maxCounters sets (rules
// renamed by many reloads) it stops growing and the vector is asked.
type counters struct {
	table atomic.Pointer[map[requestLabels]prometheus.Counter]
	mu    sync.Mutex
}

const maxCounters = 1024

func (cs *counters) of(vec *prometheus.CounterVec, l requestLabels) prometheus.Counter {
	if t := cs.table.Load(); t != nil {
		if c, ok := (*t)[l]; ok {
			return c
		}
	}
	c := vec.WithLabelValues(l.version, l.decision, l.rule, l.class)
	cs.mu.Lock()
	defer cs.mu.Unlock()
	old := cs.table.Load()
	if old != nil && len(*old) >= maxCounters {
		return c
	}
	next := make(map[requestLabels]prometheus.Counter, 1)
	if old != nil {
		next = maps.Clone(*old)
	}
	next[l] = c
	cs.table.Store(&next)
	return c
}

// IdentityFailed counts a connection whose caller could not be attested.
func (m *Metrics) IdentityFailed() { m.identity.Inc() }

// Reloaded counts a reload.
func (m *Metrics) Reloaded(ok bool) {
	if ok {
		m.reloads.WithLabelValues("ok").Inc()
		return
	}
	m.reloads.WithLabelValues("failed").Inc()
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Serve serves /metrics on ln until ctx ends.
func (m *Metrics) Serve(ctx context.Context, ln net.Listener, log *slog.Logger) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	log.Info("metrics serving", "addr", ln.Addr().String())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}
