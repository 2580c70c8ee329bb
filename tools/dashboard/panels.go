package dashboard

import (
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// q is one query of a panel.
type q struct{ expr, legend string }

// rate is the per-second rate of counter within the dashboard's selection,
// summed by the labels by (none: one series).
func rate(counter, match, by string) string {
	return fmt.Sprintf("sum by (%s) (rate(%s{%s}[$__rate_interval]))", by, counter, matchers(match))
}

func matchers(match string) string {
	if match == "" {
		return sel
	}
	return match + ", " + sel
}

// graph is a time series panel.
func graph(title, desc, unit string, qs ...q) *timeseries.PanelBuilder {
	p := timeseries.NewPanelBuilder().
		Title(title).
		Description(desc).
		Datasource(ds()).
		Unit(unit).
		Min(0).
		Span(12).
		Height(8).
		Legend(common.NewVizLegendOptionsBuilder().
			DisplayMode(common.LegendDisplayModeList).
			Placement(common.LegendPlacementBottom).
			ShowLegend(true)).
		Tooltip(common.NewVizTooltipOptionsBuilder().
			Mode(common.TooltipDisplayModeMulti).
			Sort(common.SortOrderDescending))
	for i, x := range qs {
		p.WithTarget(prometheus.NewDataqueryBuilder().
			RefId(string(rune('A' + i))).
			Datasource(ds()).
			Expr(x.expr).
			LegendFormat(x.legend))
	}
	return p
}

// tableOf is a table of instant queries, one column each, merged on their
// labels.
func tableOf(title, desc string, qs ...q) *table.PanelBuilder {
	p := table.NewPanelBuilder().
		Title(title).
		Description(desc).
		Datasource(ds()).
		Span(24).
		Height(8).
		WithTransformation(dashboard.DataTransformerConfig{Id: "merge", Options: map[string]any{}})
	for i, x := range qs {
		p.WithTarget(prometheus.NewDataqueryBuilder().
			RefId(string(rune('A' + i))).
			Datasource(ds()).
			Expr(x.expr).
			LegendFormat(x.legend).
			Instant().
			Format(prometheus.PromQueryFormatTable))
	}
	return p
}

func imdsv1Panels() []cog.Builder[dashboard.Panel] {
	const v1 = "imdsguard_imdsv1_requests_by_workload_total"
	day := fmt.Sprintf("sum by (kind, workload) (increase(%s{%s}[1d]))", v1, sel)
	return []cog.Builder[dashboard.Panel]{
		graph("IMDSv1 requests by workload", "Token-less requests imdsguard upgraded, by workload (kind exe, pod, image, container); at most 64 workloads per instance, the rest as other.", "reqps",
			q{rate(v1, "", "kind, workload"), "{{kind}} {{workload}}"}),
		graph("IMDSv1 requests by host", "Token-less requests by instance: the hosts where something still uses IMDSv1.", "reqps",
			q{rate(v1, "", "instance"), "{{instance}}"}),
		tableOf("Workloads on IMDSv1 in the last day", "Each workload that used IMDSv1 in the last day: its requests, and on how many instances.",
			q{fmt.Sprintf("sort_desc(%s > 0)", day), "requests"},
			q{fmt.Sprintf("count by (kind, workload) (increase(%s{%s}[1d]) > 0)", v1, sel), "instances"}),
	}
}

func decisionPanels() []cog.Builder[dashboard.Panel] {
	const r = "imdsguard_requests_total"
	return []cog.Builder[dashboard.Panel]{
		graph("Requests by decision", "allow, deny, would-deny (audit mode), reject, error, drop.", "reqps",
			q{rate(r, "", "decision"), "{{decision}}"}),
		graph("Requests by IMDS version and caller class", "v1 (no token), v2 (token), none (token PUTs and early refusals); host or container callers.", "reqps",
			q{rate(r, "", "version, class"), "{{version}} {{class}}"}),
		graph("Refusals by policy rule", "Requests denied, would-be denied or rejected, by the policy rule that decided.", "reqps",
			q{rate(r, `decision=~"deny|would-deny|reject"`, "rule, decision"), "{{rule}} {{decision}}"}),
	}
}
