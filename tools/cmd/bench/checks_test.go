package main

import (
	"slices"
	"strings"
	"testing"
)

func TestChecks(t *testing.T) {
	id := func(s string) string { return s }
	cached := func(id string) bool { return id == "c" || id == "e" }
	good := func() []result {
		return []result{
			{Round: 0, Conc: 16, Target: "d", wrkResult: wrkResult{Requests: 100}, UpstreamGets: 116},
			{Round: 1, Conc: 1, Target: "d", wrkResult: wrkResult{Requests: 100}, UpstreamGets: 100},
			{Round: 1, Conc: 1, Target: "e", wrkResult: wrkResult{Requests: 900}, UpstreamGets: 1},
			{Round: 1, Conc: 1, Target: "b", wrkResult: wrkResult{Requests: 500}, UpstreamGets: 501},
		}
	}
	okCounts := []upstreamCounts{{Name: "fakeimds", Puts: 2, Guards: 2}, {Name: "other", Puts: 0, Guards: 0}}
	for _, tc := range []struct {
		name   string
		change func(runs []result, up []upstreamCounts)
		failed string // the failing check's What, "" for none
		detail string
	}{
		{"all good", func([]result, []upstreamCounts) {}, "", ""},
		{"a socket error in the warm-up", func(r []result, _ []upstreamCounts) { r[0].Errors.Timeout = 1 },
			"no failed request", "warm-up c=16 d: connect 0, read 0, write 0, status 0, timeout 1"},
		{"a status error", func(r []result, _ []upstreamCounts) { r[2].Errors.Status = 3 },
			"no failed request", "round 1 c=1 e"},
		{"a second PUT", func(_ []result, up []upstreamCounts) { up[0].Puts = 3 },
			"one upstream token PUT", "fakeimds: 3 PUTs for 2 daemons"},
		{"a PUT with no daemon in front", func(_ []result, up []upstreamCounts) { up[1].Puts = 1 },
			"one upstream token PUT", "other: 1 PUTs for 0 daemons"},
		{"an upstream 401", func(_ []result, up []upstreamCounts) { up[1].Unauthorized = 1 },
			"no upstream 401", "other: 1 answered 401"},
		{"fewer GETs than answers", func(r []result, _ []upstreamCounts) { r[1].UpstreamGets = 99 },
			"uncached targets", "99 GETs for 100 requests"},
		{"more GETs than answers and connections", func(r []result, _ []upstreamCounts) { r[3].UpstreamGets = 502 },
			"uncached targets", "502 GETs for 500 requests"},
		{"a cached target is not held to it", func(r []result, _ []upstreamCounts) { r[2].UpstreamGets = 0 }, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runs, up := good(), slices.Clone(okCounts)
			tc.change(runs, up)
			bad := failedChecks(checks(runs, cached, id, up))
			if tc.failed == "" {
				if len(bad) != 0 {
					t.Errorf("failed: %+v", bad)
				}
				return
			}
			if len(bad) != 1 || !strings.HasPrefix(bad[0].What, tc.failed) || !strings.Contains(bad[0].Detail, tc.detail) {
				t.Errorf("failed %+v, want only %q saying %q", bad, tc.failed, tc.detail)
			}
		})
	}
}

func TestFirstFew(t *testing.T) {
	if got := firstFew([]string{"1", "2", "3", "4", "5", "6", "7"}); got != "1; 2; 3; 4; 5; and 2 more" {
		t.Errorf("firstFew = %q", got)
	}
}
