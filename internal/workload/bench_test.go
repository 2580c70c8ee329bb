package workload

import (
	"context"
	"testing"
)

// BenchmarkFind is the cache's own cost, with a runtime that answers at
// once: cached is every connection of a known container after its first;
// miss is a first connection (a lookup goroutine, its channel, the wait).
// The real runtimes' cost is in tools/e2e (BenchmarkRuntimeLookup).
func BenchmarkFind(b *testing.B) {
	d := newFake(Docker, false)
	d.set(idA, &Workload{Name: "web-1", Labels: map[string]string{"team": "payments"}})
	ctx, cg := context.Background(), dockerCgroup(idA)
	b.Run("cached", func(b *testing.B) {
		c := New(Options{Runtimes: []Runtime{d}})
		c.Find(ctx, idA, cg)
		b.ReportAllocs()
		for b.Loop() {
			if c.Find(ctx, idA, cg).Workload == nil {
				b.Fatal("no workload")
			}
		}
	})
	b.Run("miss", func(b *testing.B) {
		c := New(Options{Runtimes: []Runtime{d}})
		b.ReportAllocs()
		for b.Loop() {
			c.Invalidate(idA)
			if c.Find(ctx, idA, cg).Workload == nil {
				b.Fatal("no workload")
			}
		}
	})
}
