package main

import (
	"math"
	"slices"
)

// median is the middle value of xs (the mean of the two middle ones for an
// even count); NaN for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// spread is a median over rounds and the range the rounds covered.
type spread struct {
	Median, Min, Max float64
	N                int // rounds; 0: not measured
}

func spreadOf(xs []float64) spread {
	if len(xs) == 0 {
		return spread{Median: math.NaN(), Min: math.NaN(), Max: math.NaN()}
	}
	return spread{Median: median(xs), Min: slices.Min(xs), Max: slices.Max(xs), N: len(xs)}
}

// cell is the runs of one target at one concurrency, by round.
func cell(runs []result, id string, conc int) map[int]result {
	out := map[int]result{}
	for _, r := range runs {
		if r.Target == id && r.Conc == conc && r.Round > 0 {
			out[r.Round] = r
		}
	}
	return out
}

// figure is m of a target at a concurrency over the rounds.
func figure(runs []result, id string, conc int, m metric) spread {
	var xs []float64
	for _, r := range cell(runs, id, conc) {
		xs = append(xs, m.of(r))
	}
	return spreadOf(xs)
}

// ratio is m of target num over m of target den at a concurrency: the
// ratio of their medians, and the range of the ratios within each round
// (whose runs were back to back, so machine noise hits both alike).
func ratio(runs []result, num, den string, conc int, m metric) spread {
	a, b := cell(runs, num, conc), cell(runs, den, conc)
	var per []float64
	for round, ra := range a {
		if rb, ok := b[round]; ok && m.of(rb) != 0 {
			per = append(per, m.of(ra)/m.of(rb))
		}
	}
	s := spreadOf(per)
	s.Median = figure(runs, num, conc, m).Median / figure(runs, den, conc, m).Median
	if len(per) == 0 || math.IsInf(s.Median, 0) {
		s.Median = math.NaN()
	}
	return s
}
