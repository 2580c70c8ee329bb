package proxy

import (
	"fmt"
	"net/http"
	"testing"
)

// TestRoutesRemembered: the remembered route of a request is RouteOf's,
// the first time and every time after, for canonical, refused and odd
// targets alike; the table stays within maxRoutes however many distinct
// targets come, and keeps answering right once it has been emptied.
func TestRoutesRemembered(t *testing.T) {
	var rs routes
	targets := []string{
		"/latest/meta-data/instance-id",
		"/latest/meta-data/iam/security-credentials/",
		"//latest/meta-data/iam/security-credentials/",
		"/latest/meta-data/placement/%2e%2e/iam/security-credentials/",
		"/latest/meta-data/placement/%252e%252e/iam/security-credentials/",
		"/latest/meta-data/iam;x/security-credentials/",
		"http://169.254.169.254/latest/meta-data/iam/info",
		"/latest/api/token",
		"/nope/meta-data/",
		"*",
	}
	methods := []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodOptions, http.MethodPost, "get"}
	check := func(round int) {
		t.Helper()
		for _, m := range methods {
			for _, target := range targets {
				if got, want := rs.of(m, target), RouteOf(m, target); got != want {
					t.Fatalf("round %d: %s %s remembered as %+v, RouteOf says %+v", round, m, target, got, want)
				}
			}
		}
	}
	check(1)
	check(2)
	if n := len(*rs.table.Load()); n != len(methods)*len(targets) {
		t.Errorf("table holds %d routes, want %d", n, len(methods)*len(targets))
	}
	for i := range 3 * maxRoutes {
		target := fmt.Sprintf("/latest/meta-data/x%d", i)
		if got, want := rs.of(http.MethodGet, target), RouteOf(http.MethodGet, target); got != want {
			t.Fatalf("%s remembered as %+v, RouteOf says %+v", target, got, want)
		}
		if n := len(*rs.table.Load()); n > maxRoutes {
			t.Fatalf("table holds %d routes, more than %d", n, maxRoutes)
		}
	}
	check(3)
	check(4)
}

// BenchmarkRoute: routing a request the table holds, against RouteOf.
//
//	go test -run '^$' -bench Route -benchmem ./proxy/
func BenchmarkRoute(b *testing.B) {
	const target = "/latest/meta-data/iam/security-credentials/role"
	b.Run("RouteOf", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			RouteOf(http.MethodGet, target)
		}
	})
	b.Run("remembered", func(b *testing.B) {
		var rs routes
		b.ReportAllocs()
		for b.Loop() {
			rs.of(http.MethodGet, target)
		}
	})
}
