package offstack

import (
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
	var mu sync.Mutex
	running, most := 0, 0
	var wg sync.WaitGroup
	for range 3 * Workers {
		wg.Go(func() {
			Do(func() {
				mu.Lock()
				running++
				most = max(most, running)
				mu.Unlock()
				time.Sleep(20 * time.Millisecond)
				mu.Lock()
				running--
				mu.Unlock()
			})
		})
	}
	wg.Wait()
	if most < 2 || most > Workers {
		t.Errorf("%d calls ran at once, want 2..%d", most, Workers)
	}
}
