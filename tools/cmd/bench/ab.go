package main

import (
	"fmt"
	"math"
)

// abRow is one line of the A/B table: B's figure over A's.
type abRow struct {
	Compared, Measure string
	Value, Range      string
}

// abRows compares B with A, cached and uncached, in req/s, p99 and CPU per
// request at every concurrency, and in PSS where it was sampled.
func abRows(runs []result, concs []int, label func(string) string) []abRow {
	var out []abRow
	pairs := [][2]string{{idCachedB, idCachedA}, {idUncachedB, idUncachedA}}
	for _, p := range pairs {
		compared := label(p[0]) + " / " + label(p[1])
		for _, m := range []metric{reqPerSec, p99, cpuPerReq} {
			for _, c := range concs {
				out = append(out, abRow{compared, fmt.Sprintf("%s at c=%d", m, c), "", ""}.with(ratio(runs, p[0], p[1], c, m)))
			}
		}
		for _, c := range concs {
			if c >= pssFrom {
				out = append(out, abRow{compared, fmt.Sprintf("PSS at c=%d", c), "", ""}.with(ratio(runs, p[0], p[1], c, pssMB)))
			}
		}
	}
	return out
}

func (r abRow) with(s spread) abRow {
	r.Value, r.Range = "—", "—"
	if s.N > 0 && !math.IsNaN(s.Median) {
		r.Value, r.Range = fmt.Sprintf("%.2f", s.Median), fmt.Sprintf("%.2f–%.2f", s.Min, s.Max)
	}
	return r
}
