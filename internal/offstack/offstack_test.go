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

// deep uses about n KB of stack, then calls f (a recursive function is
// never inlined).
func deep(n int, f func()) byte {
	var pad [1024]byte
	pad[n%1024] = byte(n)
	if n > 0 {
		return deep(n-1, f) + pad[(n+1)%1024]
	}
	f()
	return pad[0]
}

// TestCallersStacksStaySmall: callers waiting on calls that need a 48 KB
// stack (as netlink's receive does) keep their own stacks small; only the
// workers' grow. Called directly, 300 such callers would hold some 20 MB of
// stacks.
func TestCallersStacksStaySmall(t *testing.T) {
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
			Do(func() { deep(48, func() { <-release }) })
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
	t.Logf("%d callers waiting on %d workers 48 KB deep: stacks grew by %d KB", callers, Workers, grew>>10)
	if grew > callers*8<<10+Workers*128<<10 {
		t.Errorf("stacks grew by %d KB: the callers' stacks grew with the calls", grew>>10)
	}
}
