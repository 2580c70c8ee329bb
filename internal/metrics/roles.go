package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/imdsguard/imdsguard/internal/sts"
)

// rolesCollector reads the STS broker's counters at each scrape.
type rolesCollector struct{ stats func() sts.Stats }

var rolesDescs = struct {
	calls, reads, refreshes, sessions, lag *prometheus.Desc
}{
	calls: prometheus.NewDesc("imdsguard_sts_calls_total",
		"STS AssumeRole calls by outcome: ok, throttled, server_error (5xx), denied (AccessDenied and other 4xx), error (no answer, or no node credentials to sign with).",
		[]string{"outcome"}, nil),
	reads: prometheus.NewDesc("imdsguard_role_credentials_reads_total",
		"Reads of a workload role's credentials by how the broker answered: hit (from memory), miss (this read's AssumeRole), coalesced (waited for another's), stale (held credentials while STS failed), refused (an error was served).",
		[]string{"outcome"}, nil),
	refreshes: prometheus.NewDesc("imdsguard_sts_refreshes_total", "Background refreshes of role credentials (around half their life).", nil, nil),
	sessions:  prometheus.NewDesc("imdsguard_role_sessions", "Role sessions held: workloads with a role of their own (one session per pod, or per container for rule roles).", nil, nil),
	lag:       prometheus.NewDesc("imdsguard_sts_refresh_lag_seconds", "How far the most overdue role-credentials refresh is behind its time (0: none is); grows while STS fails or the rate bucket is empty.", nil, nil),
}

func (c rolesCollector) Describe(ch chan<- *prometheus.Desc) {
	d := rolesDescs
	for _, x := range []*prometheus.Desc{d.calls, d.reads, d.refreshes, d.sessions, d.lag} {
		ch <- x
	}
}

func (c rolesCollector) Collect(ch chan<- prometheus.Metric) {
	s, d := c.stats(), rolesDescs
	for _, k := range sts.Kinds() {
		ch <- prometheus.MustNewConstMetric(d.calls, prometheus.CounterValue, float64(s.Calls[k]), k.String())
	}
	for o, n := range s.Gets {
		ch <- prometheus.MustNewConstMetric(d.reads, prometheus.CounterValue, float64(n), o.String())
	}
	ch <- prometheus.MustNewConstMetric(d.refreshes, prometheus.CounterValue, float64(s.Refreshes))
	ch <- prometheus.MustNewConstMetric(d.sessions, prometheus.GaugeValue, float64(s.Sessions))
	ch <- prometheus.MustNewConstMetric(d.lag, prometheus.GaugeValue, s.RefreshLag.Seconds())
}
