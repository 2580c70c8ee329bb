// Package metrics exposes what imdsguard does to Prometheus: requests by
// IMDS version, decision, rule and caller class; upstream latency; tokens
// minted; upstream token refreshes; rule restores; identity lookup
// failures; policy reloads; and IMDSv1 requests by workload, a bounded
// series that tells, scraped from every node, who still uses IMDSv1
// across a fleet.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/imdsguard/imdsguard/proxy/audit"
)

// Sources are counters kept elsewhere, read when Prometheus scrapes.
type Sources struct {
	TokenRefreshes func() uint64 // upstream token PUTs (upstream.Client.TokenPuts)
	RuleRestores   func() uint64 // rules restored after an outside deletion (redirect.Rules.Restores)
}

// Metrics holds the collectors.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
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
			Help:    "Time waiting for IMDS per forwarded request, token refresh included.",
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
		counterFunc("imdsguard_rule_restores_total", "Redirect rules restored after something outside deleted them.", src.RuleRestores),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func counterFunc(name, help string, f func() uint64) prometheus.Collector {
	if f == nil {
		f = func() uint64 { return 0 }
	}
	return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(f()) })
}

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
	m.requests.WithLabelValues(version, string(ev.Decision), rule, ev.Caller.Class.String()).Inc()
	if ev.Upstream > 0 {
		m.upstream.Observe(ev.Upstream.Seconds())
	}
	if ev.Version == audit.V1 {
		m.v1.WithLabelValues(m.v1names.label(ev)).Inc()
	}
	if ev.Token && ev.Status == http.StatusOK && ev.Method == http.MethodPut {
		m.minted.Inc()
	}
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
