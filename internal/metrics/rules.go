package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/imdsguard/imdsguard/internal/redirect"
)

// rulesCollector reads the redirect rules' health at each scrape.
type rulesCollector struct{ health func() []redirect.Health }

var rulesDescs = struct{ inPlace, fence *prometheus.Desc }{
	inPlace: prometheus.NewDesc("imdsguard_rules_in_place",
		"1 when the daemon's last look found every redirect rule, jump and landing address of the family in place; 0 while something is missing (until it is restored).",
		[]string{"family"}, nil),
	fence: prometheus.NewDesc("imdsguard_fence_rejects_total",
		"Local metadata packets the fence (filter OUTPUT) refused because they went past the redirect: nonzero growth means the nat rules were gone for a while.",
		[]string{"family"}, nil),
}

func (c rulesCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- rulesDescs.inPlace
	ch <- rulesDescs.fence
}

func (c rulesCollector) Collect(ch chan<- prometheus.Metric) {
	for _, h := range c.health() {
		v := 0.0
		if h.InPlace {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(rulesDescs.inPlace, prometheus.GaugeValue, v, h.Family)
		if h.FenceKnown {
			ch <- prometheus.MustNewConstMetric(rulesDescs.fence, prometheus.CounterValue, float64(h.FenceRejects), h.Family)
		}
	}
}
