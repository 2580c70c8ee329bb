package dashboard

import (
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

func cachePanels() []cog.Builder[dashboard.Panel] {
	const reads = "imdsguard_cache_reads_total"
	quantile := func(phi string) q {
		return q{fmt.Sprintf("histogram_quantile(%s, sum by (le) (rate(imdsguard_upstream_latency_seconds_bucket{%s}[$__rate_interval])))", phi, sel), "p" + phi[2:]}
	}
	return []cog.Builder[dashboard.Panel]{
		graph("Cache hit ratio", "Cached reads answered from memory, of all but bypass reads (not cached), by instance.", "percentunit",
			q{rate(reads, `outcome="hit"`, "instance") + " / " + rate(reads, `outcome!="bypass"`, "instance"), "{{instance}}"}),
		graph("Cache reads by outcome", "hit, miss, coalesced (waited for another caller's read), stale (held answer while IMDS failed), bypass.", "reqps",
			q{rate(reads, "", "outcome"), "{{outcome}}"}),
		graph("Upstream latency", "Time waiting for IMDS per forwarded request (cache hits wait for none), token refresh included.", "s",
			quantile("0.50"), quantile("0.90"), quantile("0.99")),
		graph("Upstream token session and failures", "IMDSv2 session token PUTs, those that failed, and cache requests to IMDS that failed (error, 401, 429, 5xx).", "ops",
			q{rate("imdsguard_upstream_token_refreshes_total", "", ""), "token PUTs"},
			q{rate("imdsguard_upstream_token_failures_total", "", ""), "failed token PUTs"},
			q{rate("imdsguard_cache_upstream_failures_total", "", ""), "failed cache requests"}),
		graph("Cache evictions", "Entries evicted to stay inside cache.max_entries and cache.max_bytes.", "ops",
			q{rate("imdsguard_cache_evictions_total", "", "instance"), "{{instance}}"}),
		graph("Cache entries", "Paths the cache holds.", "short",
			q{fmt.Sprintf("sum by (instance) (imdsguard_cache_entries{%s})", sel), "{{instance}}"}),
	}
}

func rulePanels() []cog.Builder[dashboard.Panel] {
	return []cog.Builder[dashboard.Panel]{
		graph("Rules in place", "1 when the last check found every imdsguard rule and jump of the family in place, 0 while some are missing.", "short",
			q{fmt.Sprintf("min by (instance, family) (imdsguard_rules_in_place{%s})", sel), "{{instance}} {{family}}"}),
		graph("Rule restores", "Rules restored, or jumps moved back to first, after something outside changed them.", "short",
			q{fmt.Sprintf("sum by (instance) (increase(imdsguard_rule_restores_total{%s}[$__rate_interval]))", sel), "{{instance}}"}),
		graph("Fence rejects", "Metadata packets the fence (filter OUTPUT) rejected: traffic that went past the redirect.", "short",
			q{fmt.Sprintf("sum by (instance, family) (increase(imdsguard_fence_rejects_total{%s}[$__rate_interval]))", sel), "{{instance}} {{family}}"}),
		graph("Daemons up", "Whether Prometheus could scrape each imdsguard.", "short",
			q{fmt.Sprintf("up{%s}", sel), "{{instance}}"}),
	}
}

func rolePanels() []cog.Builder[dashboard.Panel] {
	return []cog.Builder[dashboard.Panel]{
		graph("STS calls by outcome", "AssumeRole calls for workload roles: ok, throttled, server_error, denied, error.", "ops",
			q{rate("imdsguard_sts_calls_total", "", "outcome"), "{{outcome}}"}),
		graph("Role credential reads by outcome", "hit, miss, coalesced, stale (held while STS failed), refused.", "reqps",
			q{rate("imdsguard_role_credentials_reads_total", "", "outcome"), "{{outcome}}"}),
		graph("Role sessions", "Workloads with a role of their own.", "short",
			q{fmt.Sprintf("sum by (instance) (imdsguard_role_sessions{%s})", sel), "{{instance}}"}),
		graph("Role refresh lag", "How far the most overdue role-credentials refresh is behind its time.", "s",
			q{fmt.Sprintf("max by (instance) (imdsguard_sts_refresh_lag_seconds{%s})", sel), "{{instance}}"}),
	}
}
