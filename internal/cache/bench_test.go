package cache

import (
	"context"
	"io"
	"net/http"
	"testing"
)

// The hot path: a fresh answer read by many callers.
func benchHit(b *testing.B, method string, parallel bool) {
	const p = "/latest/meta-data/instance-id"
	f := newFake(map[string]fakeAnswer{p: {status: 200, body: "i-0123456789abcdef0"}})
	c := New(f, Options{Config: DefaultConfig()})
	defer c.Close()
	ctx := context.Background()
	if _, err := c.Fetch(ctx, method, p); err != nil {
		b.Fatal(err)
	}
	read := func() {
		resp, _, err := c.FetchOutcome(ctx, method, p)
		if err != nil || resp.StatusCode != 200 {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	b.ReportAllocs()
	b.ResetTimer()
	if !parallel {
		for b.Loop() {
			read()
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			read()
		}
	})
}

func BenchmarkHit(b *testing.B)         { benchHit(b, http.MethodGet, false) }
func BenchmarkHitHead(b *testing.B)     { benchHit(b, http.MethodHead, false) }
func BenchmarkHitParallel(b *testing.B) { benchHit(b, http.MethodGet, true) }
