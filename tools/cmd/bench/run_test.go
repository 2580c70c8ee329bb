package main

import "testing"

func TestRoundOrder(t *testing.T) {
	ts := planTargets(true)
	ids := func(ts []*target) string {
		var s string
		for _, tg := range ts {
			s += tg.ID + " "
		}
		return s
	}
	if got := ids(roundOrder(ts, 1)); got != "a b c d e d' e' " {
		t.Errorf("round 1: %s", got)
	}
	if got := ids(roundOrder(ts, 2)); got != "e' d' e d c b a " {
		t.Errorf("round 2: %s", got)
	}
	if got := ids(roundOrder(ts, 3)); got != "a b c d e d' e' " || ts[0].ID != "a" {
		t.Errorf("round 3: %s (the plan: %s)", got, ids(ts))
	}
}
