package main

import (
	"fmt"
	"strings"
)

// check is one correctness check of the run. A failed check makes the
// command exit non-zero, once the report is written.
type check struct {
	What   string
	OK     bool
	Detail string
}

// upstreamCounts are one fakeimds's counts that the checks read.
type upstreamCounts struct {
	Name         string // which fakeimds
	Puts         int64  // token PUTs after the bench's own
	Guards       int64  // imdsguard daemons in front of it: each must PUT exactly once
	Unauthorized int64  // requests it answered 401
}

// checks judges every run (the warm-up's too) and every fakeimds's counts;
// cached says which target IDs answer from a cache.
func checks(runs []result, cached func(id string) bool, label func(string) string, ups []upstreamCounts) []check {
	puts := check{What: "one upstream token PUT per imdsguard daemon", OK: true}
	unauthorized := check{What: "no upstream 401", OK: true}
	var putDetail, unauthorizedDetail []string
	for _, up := range ups {
		puts.OK = puts.OK && up.Puts == up.Guards
		putDetail = append(putDetail, fmt.Sprintf("%s: %d PUTs for %d daemons", up.Name, up.Puts, up.Guards))
		unauthorized.OK = unauthorized.OK && up.Unauthorized == 0
		unauthorizedDetail = append(unauthorizedDetail, fmt.Sprintf("%s: %d answered 401", up.Name, up.Unauthorized))
	}
	puts.Detail, unauthorized.Detail = strings.Join(putDetail, "; "), strings.Join(unauthorizedDetail, "; ")
	return []check{failedCheck(runs, label), puts, unauthorized, getsCheck(runs, cached, label)}
}

// failedCheck: no request failed (an answer of 400 or more, or a socket
// error) in any run.
func failedCheck(runs []result, label func(string) string) check {
	c := check{What: "no failed request (status ≥ 400 or socket error)"}
	var bad []string
	var failed int64
	for _, r := range runs {
		if n := r.Errors.Total(); n > 0 {
			failed += n
			bad = append(bad, fmt.Sprintf("%s: %s", runName(r, label), r.Errors))
		}
	}
	c.OK = failed == 0
	c.Detail = fmt.Sprintf("%d failed in %d runs", failed, len(runs))
	if !c.OK {
		c.Detail += ": " + firstFew(bad)
	}
	return c
}

// getsCheck: a target without a cache asks fakeimds once per request it
// answers, give or take those in flight when wrk stopped (wrk does not
// count them; fakeimds may have).
func getsCheck(runs []result, cached func(id string) bool, label func(string) string) check {
	c := check{What: "uncached targets: one upstream GET per request answered"}
	var bad []string
	n := 0
	for _, r := range runs {
		if cached(r.Target) {
			continue
		}
		n++
		if r.UpstreamGets < r.Requests || r.UpstreamGets > r.Requests+int64(r.Conc) {
			bad = append(bad, fmt.Sprintf("%s: %d GETs for %d requests", runName(r, label), r.UpstreamGets, r.Requests))
		}
	}
	c.OK = len(bad) == 0
	c.Detail = fmt.Sprintf("%d of %d runs within [requests, requests + connections]", n-len(bad), n)
	if !c.OK {
		c.Detail += ": " + firstFew(bad)
	}
	return c
}

// runName names a run in a check's detail.
func runName(r result, label func(string) string) string {
	if r.Round == 0 {
		return fmt.Sprintf("warm-up c=%d %s", r.Conc, label(r.Target))
	}
	return fmt.Sprintf("round %d c=%d %s", r.Round, r.Conc, label(r.Target))
}

func firstFew(s []string) string {
	const n = 5
	if len(s) <= n {
		return strings.Join(s, "; ")
	}
	return strings.Join(s[:n], "; ") + fmt.Sprintf("; and %d more", len(s)-n)
}

// failedChecks are the checks that did not pass.
func failedChecks(cs []check) []check {
	var out []check
	for _, c := range cs {
		if !c.OK {
			out = append(out, c)
		}
	}
	return out
}
