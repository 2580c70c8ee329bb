package workload

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

const (
	idA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	idB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

// dockerCgroup is where Docker's cgroupfs driver puts container id.
func dockerCgroup(id string) string { return "/docker/" + id }

// newCache is a Cache over rts with a 50 ms wait; made in a synctest
// bubble, it runs on the bubble's clock.
func newCache(rts ...Runtime) *Cache {
	return New(Options{Runtimes: rts, Wait: 50 * time.Millisecond, Timeout: time.Second})
}

func find(c *Cache, id, cgroup string) Result {
	return c.Find(context.Background(), id, cgroup)
}

func TestFindCachesByContainer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := newFake(Docker, false)
		d.set(idA, &Workload{Name: "web-1", Image: "registry.example/app:1", Labels: map[string]string{"team": "payments"}})
		c := newCache(d)
		for i := range 3 {
			r := find(c, idA, dockerCgroup(idA))
			if r.Workload == nil || r.Workload.Name != "web-1" || r.Workload.Runtime != Docker || r.Reason != "" {
				t.Fatalf("find %d: %+v", i, r)
			}
		}
		if n := d.asked.Load(); n != 1 {
			t.Errorf("runtime asked %d times, want once", n)
		}
	})
}

func TestFindOneLookupForConcurrentCallers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := newFake(Docker, false)
		d.delay = 20 * time.Millisecond
		d.set(idA, &Workload{Name: "web-1"})
		c := newCache(d)
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				if r := find(c, idA, dockerCgroup(idA)); r.Workload == nil {
					t.Errorf("no workload: %s", r.Reason)
				}
			})
		}
		wg.Wait()
		if n := d.asked.Load(); n != 1 {
			t.Errorf("runtime asked %d times for 50 concurrent callers, want once", n)
		}
	})
}

// A request never waits for longer than the bound; the slow lookup goes
// on, and the next connection gets its answer without asking again.
func TestFindBoundedWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := newFake(Docker, false)
		d.delay = 300 * time.Millisecond
		d.set(idA, &Workload{Name: "web-1"})
		c := newCache(d)
		start := time.Now()
		r := find(c, idA, dockerCgroup(idA))
		if took := time.Since(start); took > 50*time.Millisecond {
			t.Errorf("Find took %s with a 50ms bound", took)
		}
		if r.Workload != nil || !strings.Contains(r.Reason, "within 50ms") || !strings.Contains(r.Reason, "next connection") {
			t.Fatalf("slow runtime: %+v", r)
		}
		time.Sleep(d.delay - time.Since(start)) // until the runtime answers
		synctest.Wait()
		start = time.Now()
		r = find(c, idA, dockerCgroup(idA))
		if r.Workload == nil || d.asked.Load() != 1 || time.Since(start) != 0 {
			t.Errorf("after the background lookup: %+v, asked %d times, waited %v", r, d.asked.Load(), time.Since(start))
		}
	})
}

func TestFindMisses(t *testing.T) {
	tests := []struct {
		name   string
		down   error
		cgroup string
		want   []string
	}{
		{"unknown container", nil, dockerCgroup(idB), []string{"docker does not know container bbbbbbbbbbbb"}},
		{"runtime down", errors.New("dial unix /run/docker.sock: connect: connection refused"), dockerCgroup(idB),
			[]string{"docker unreachable: dial unix /run/docker.sock: connect: connection refused"}},
		{"every runtime asked", nil, "/user.slice/" + idB, []string{"docker does not know", "containerd does not know"}},
		{"no owner configured", nil, "/system.slice/crio-" + idB + ".scope", []string{"no runtime that may own it is configured (runtimes: cri-o)"}},
		{"no container", nil, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				d, ctd := newFake(Docker, false), newFake(Containerd, false)
				d.setDown(tt.down)
				c := newCache(d, ctd)
				id := idB
				if tt.want == nil {
					id = ""
					tt.want = []string{"names no container"}
				}
				r := find(c, id, tt.cgroup)
				if r.Workload != nil {
					t.Fatalf("got a workload: %+v", r.Workload)
				}
				for _, w := range tt.want {
					if !strings.Contains(r.Reason, w) {
						t.Errorf("reason %q does not say %q", r.Reason, w)
					}
				}
			})
		})
	}
}

// A miss is remembered for MissTTL: a stopped runtime is not asked by
// every connection, a started one is noticed soon after.
func TestFindMissTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := newFake(Docker, false)
		d.setDown(errors.New("connection refused"))
		c := newCache(d)
		find(c, idA, dockerCgroup(idA))
		find(c, idA, dockerCgroup(idA))
		if n := d.asked.Load(); n != 1 {
			t.Fatalf("asked %d times within the miss TTL, want 1", n)
		}
		d.setDown(nil)
		d.set(idA, &Workload{Name: "web-1"})
		time.Sleep(DefaultMissTTL)
		if r := find(c, idA, dockerCgroup(idA)); r.Workload == nil || d.asked.Load() != 2 {
			t.Errorf("after the miss TTL: %+v, asked %d times", r, d.asked.Load())
		}
	})
}

// Without events an answer is kept for the TTL.
func TestFindTTLWithoutEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		crio := newFake(CRIO, false)
		crio.set(idA, &Workload{Name: "app", Labels: map[string]string{"v": "1"}})
		c := newCache(crio)
		cg := "/kubepods.slice/crio-" + idA + ".scope"
		find(c, idA, cg)
		crio.set(idA, &Workload{Name: "app", Labels: map[string]string{"v": "2"}})
		time.Sleep(DefaultTTL - time.Second)
		if r := find(c, idA, cg); r.Workload.Labels["v"] != "1" {
			t.Errorf("within the TTL: labels %v, want the cached v=1", r.Workload.Labels)
		}
		time.Sleep(time.Second)
		if r := find(c, idA, cg); r.Workload.Labels["v"] != "2" {
			t.Errorf("after the TTL: labels %v, want v=2", r.Workload.Labels)
		}
	})
}

// With events an answer is kept until the runtime reports the container
// changed; a broken stream drops the runtime's answers.
func TestFindInvalidatedByEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := newFake(Docker, true)
		d.set(idA, &Workload{Name: "web-1", Labels: map[string]string{"team": "a"}})
		d.set(idB, &Workload{Name: "web-2"})
		c := newCache(d)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { c.Run(ctx); close(done) }()
		defer func() { cancel(); <-done }()
		synctest.Wait()
		if n := d.watches.Load(); n != 1 {
			t.Fatalf("%d event streams open, want 1", n)
		}

		find(c, idA, dockerCgroup(idA))
		find(c, idB, dockerCgroup(idB))
		time.Sleep(DefaultTTL * 2) // events followed: the TTL does not apply
		d.set(idA, &Workload{Name: "web-1", Labels: map[string]string{"team": "b"}})
		if r := find(c, idA, dockerCgroup(idA)); r.Workload.Labels["team"] != "a" || d.asked.Load() != 2 {
			t.Fatalf("before the event: %v, asked %d", r.Workload.Labels, d.asked.Load())
		}
		d.emit(idA)
		if r := find(c, idA, dockerCgroup(idA)); r.Workload.Labels["team"] != "b" {
			t.Errorf("after the event: labels %v, want team=b", r.Workload.Labels)
		}
		find(c, idB, dockerCgroup(idB))
		if n := d.asked.Load(); n != 3 {
			t.Errorf("asked %d times, want 3 (the other container stays cached)", n)
		}

		d.drop <- struct{}{} // the stream breaks: every docker answer goes
		synctest.Wait()
		find(c, idB, dockerCgroup(idB))
		if n := d.asked.Load(); n != 4 {
			t.Errorf("after the stream broke: asked %d times, want 4 (the other container asked again)", n)
		}
		time.Sleep(DefaultMaxAge)
		if r := find(c, idA, dockerCgroup(idA)); r.Workload == nil {
			t.Errorf("after max age: %+v", r)
		}
	})
}

// Answers of one runtime are kept in a bounded table.
func TestFindBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := newFake(Docker, false)
		c := New(Options{Runtimes: []Runtime{d}, MaxEntries: 8})
		for i := range 20 {
			id := fmt.Sprintf("%064x", i)
			d.set(id, &Workload{Name: "c"})
			find(c, id, dockerCgroup(id))
		}
		c.mu.Lock()
		n := len(c.entries)
		c.mu.Unlock()
		if n > 8 {
			t.Errorf("%d entries, bound 8", n)
		}
	})
}

// Owners decides who is asked: a Docker container is never looked up in
// containerd, whose "moby" namespace holds the same ids.
func TestFindAsksTheOwner(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d, ctd := newFake(Docker, false), newFake(Containerd, false)
		ctd.set(idA, &Workload{Name: "moby-task"})
		ctd.set(idB, &Workload{Name: "pod-container"})
		c := newCache(d, ctd)
		if r := find(c, idA, dockerCgroup(idA)); r.Workload != nil || ctd.asked.Load() != 0 {
			t.Errorf("docker container: %+v; containerd asked %d times", r, ctd.asked.Load())
		}
		if r := find(c, idB, "/system.slice/cri-containerd-"+idB+".scope"); r.Workload == nil || d.asked.Load() != 1 {
			t.Errorf("cri-containerd scope: %+v; docker asked %d times", r, d.asked.Load())
		}
	})
}

// Changed hears every container an event reports, after its answer was
// dropped; Lookup waits for the runtime past the request path's bound.
func TestChangedAndLookup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := newFake(Docker, true)
		d.set(idA, &Workload{Name: "web-1"})
		d.delay = 500 * time.Millisecond
		var heard []string
		c := New(Options{Runtimes: []Runtime{d}, Changed: func(id string) { heard = append(heard, id) }})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { c.Run(ctx); close(done) }()
		defer func() { cancel(); <-done }()
		synctest.Wait()
		d.emit(idA)
		if len(heard) != 1 || heard[0] != idA {
			t.Fatalf("Changed heard %v", heard)
		}
		if r := c.Lookup(context.Background(), idA, ""); r.Workload == nil || r.Workload.Name != "web-1" {
			t.Errorf("Lookup past the wait bound: %+v", r)
		}
		if r := find(c, idA, dockerCgroup(idA)); r.Workload == nil || d.asked.Load() != 1 {
			t.Errorf("Find after Lookup: %+v, asked %d", r, d.asked.Load())
		}
	})
}
