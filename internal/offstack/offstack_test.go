package offstack

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

func TestPanicReachesCaller(t *testing.T) {
	defer func() {
		if v := recover(); v != "boom" {
			t.Errorf("recovered %v, want boom", v)
		}
		ran := false
		Do(func() { ran = true }) // the workers live on
		if !ran {
			t.Errorf("Do after a panic did not run")
		}
	}()
	Do(func() { panic("boom") })
}

// TestWorkersRunTogether: one slow call does not hold up the others; at
// most Workers run at once.
func TestWorkersRunTogether(t *testing.T) {
	most, ran := atOnce(Do, 3*Workers, 20*time.Millisecond)
	if most < 2 || most > Workers || ran != 3*Workers {
		t.Errorf("%d of %d calls ran, %d at once; want all, 2..%d at once", ran, 3*Workers, most, Workers)
	}
}

// atOnce makes calls calls through do at the same time, each lasting hold,
// and returns how many ran at once at most, and in all.
func atOnce(do func(func()), calls int, hold time.Duration) (most, ran int) {
	var mu sync.Mutex
	running := 0
	var wg sync.WaitGroup
	for range calls {
		wg.Go(func() {
			do(func() {
				mu.Lock()
				running++
				ran++
				most = max(most, running)
				mu.Unlock()
				time.Sleep(hold)
				mu.Lock()
				running--
				mu.Unlock()
			})
		})
	}
	wg.Wait()
	return most, ran
}

// deep uses about n KB of stack, then calls f.
//
//go:noinline
func deep(n int, f func()) byte {
	var pad [1024]byte
	pad[n%1024] = byte(n)
	if n > 0 {
		return deep(n-1, f) + pad[(n+1)%1024]
	}
	f()
	return pad[0]
}

// TestPoolKeepsCallersStacksSmall: callers waiting on a pool whose call
// needs a 48 KB stack keep their own stacks small; only the workers' grow.
// Called directly, 300 such callers would hold some 20 MB of stacks.
func TestPoolKeepsCallersStacksSmall(t *testing.T) {
	p := NewPool(3)
	const callers = 300
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	release := make(chan struct{})
	entered := make(chan struct{}, callers)
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			entered <- struct{}{}
			p.Do(func() { deep(48, func() { <-release }) })
		})
	}
	for range callers {
		<-entered
	}
	time.Sleep(100 * time.Millisecond) // the workers are deep, the callers wait
	var during runtime.MemStats
	runtime.ReadMemStats(&during)
	close(release)
	wg.Wait()
	grew := int64(during.StackInuse) - int64(before.StackInuse)
	t.Logf("%d callers waiting on 3 workers 48 KB deep: stacks grew by %d KB", callers, grew>>10)
	if grew > callers*8<<10+3*128<<10 {
		t.Errorf("stacks grew by %d KB: the callers' stacks grew with the calls", grew>>10)
	}
}

// TestPoolRunsAtMostN: a pool of n runs at most n calls at once, and all of
// them in the end.
func TestPoolRunsAtMostN(t *testing.T) {
	if most, ran := atOnce(NewPool(2).Do, 10, 5*time.Millisecond); most != 2 || ran != 10 {
		t.Errorf("%d ran, at most %d at once; want 10, 2", ran, most)
	}
}

// TestPoolClose: Close ends the workers, and a call made after it still
// runs (on a goroutine of its own), so a closed pool loses nothing.
func TestPoolClose(t *testing.T) {
	g0 := runtime.NumGoroutine()
	p := NewPool(3)
	ran := 0
	p.Do(func() { ran++ })
	if g := runtime.NumGoroutine(); g < g0+3 {
		t.Fatalf("goroutines %d -> %d, want the 3 workers", g0, g)
	}
	p.Close()
	p.Close() // twice is fine
	p.Do(func() { ran++ })
	if ran != 2 {
		t.Fatalf("%d calls ran, want 2", ran)
	}
	for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > g0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("goroutines %d -> %d after Close", g0, runtime.NumGoroutine())
		}
	}
}
