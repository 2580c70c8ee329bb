package proxy

import (
	"net/http"
	"testing"
)

// BenchmarkRouteOf: what routing costs each request (the canonical path is
// parsed and built anew every time; nothing is remembered between requests).
//
//	go test -run '^$' -bench RouteOf -benchmem ./proxy/
func BenchmarkRouteOf(b *testing.B) {
	const target = "/latest/meta-data/iam/security-credentials/role"
	b.ReportAllocs()
	for b.Loop() {
		RouteOf(http.MethodGet, target)
	}
}
