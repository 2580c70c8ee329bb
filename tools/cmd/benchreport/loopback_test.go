package main

import (
	"strings"
	"testing"
)

// TestRenderLoopback: the report shows the goals with their verdicts, the
// throughput as connections grow, the memory and upstream tables, the
// quoted configurations, and says how busy the machine was.
func TestRenderLoopback(t *testing.T) {
	runs, err := parseRuns(strings.NewReader(sample), "sample")
	if err != nil {
		t.Fatal(err)
	}
	m := &meta{command: "scripts/bench.sh", rounds: 2, seconds: 10, pssConc: 1000, nginxValid: "200 5s",
		busyBefore: "3", busyAfter: "40", loadBefore: "1 1 1", loadAfter: "3 2 1", machine: "2"}
	rep := analyse(runs, m.pssConc, nil)
	doc := render(m, rep, runs, configs{nginxCache: "proxy_cache imds;", guard: "version: 1", guardCache: "cache: {enabled: true}"})
	for _, want := range []string{
		"```sh\nscripts/bench.sh\n```",
		"| imdsguard cached / nginx proxy_cache | req/s at c=16 | 1.10 | 1.10–1.10 | ≥ 1.00 | meets |",
		"| imdsguard cached | PSS with 1,000 connections open | 43.9 MB (largest of rounds) | 39.1–43.9 MB | ≤ 40.00 MB | **misses** |",
		"| imdsguard cached / nginx proxy_cache | req/s at c=256 | – | – | ≥ 1.00 | not measured: c=256 was not run |",
		"| (e) imdsguard cached | 43.9 MB | 39.1 MB–43.9 MB | 999–1000 | 44.9 MB |",
		"| (c) nginx proxy_cache | yes | 800000 | 4 | 0.01 |",
		"## Throughput as connections grow",
		"| (e) imdsguard cached | req/s at c=1,000 / at c=16 | 0.68 | 0.68–0.68 |",
		"| (e) imdsguard cached | req/s at c=256 / at c=16 | – | not measured: c=256 was not run |",
		"**shared and noisy**: processes other than the benchmark's kept 3% of the CPUs busy in the 3 s before the run and 40% in the 3 s after it",
		"```nginx\nproxy_cache imds;\n```",
		"```yaml\ncache: {enabled: true}\n```",
		"| runs of targets without a cache whose upstream GETs are the requests answered 200 (+ at most the other answers and the connections, in flight when wrk stopped) | 5 of 6 | **FAIL** |",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
	var uncached []run
	for _, r := range runs {
		if r.target != tGuardCache {
			uncached = append(uncached, r)
		}
	}
	m.cacheSkipped, m.busyAfter = "no cache section", "2"
	doc = render(m, analyse(uncached, m.pssConc, map[string]string{tGuardCache: m.cacheSkipped}), uncached, configs{})
	for _, want := range []string{"(e) was skipped: no cache section.", "| 16 | (e) imdsguard cached | v2, imdsguard token | skipped (see Targets) |", "| load on the machine | quiet:"} {
		if !strings.Contains(doc, want) {
			t.Errorf("the report without (e) lacks %q", want)
		}
	}
}
