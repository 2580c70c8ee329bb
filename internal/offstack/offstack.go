// Package offstack runs calls that need a large stack on a few long-lived
// goroutines, so that the goroutines serving connections keep small ones.
//
// vishvananda/netlink's NetlinkSocket.Receive keeps its 64 KB receive
// buffer on the stack. Called on a connection's goroutine (the caller's
// socket lookup, the route to a container), it grows that goroutine's stack
// to 128 KB; a burst of a thousand new connections then held 66 MB of
// stacks, and the memory stayed with the process after the stacks shrank.
// Netlink exchanges take microseconds and run once per connection, so the
// hop to a worker and back costs nothing that matters. Do runs them.
//
// A caller's identity lookup as a whole goes 5 KB deep (internal/identity);
// on the connection's goroutine it would double that goroutine's 4 KB
// stack, a thousand times over in a burst of new connections, so it runs on
// a Pool of its own. A request to IMDS and its answer's parsing go as deep
// (internal/upstream); they run on a Pool with a worker for each of the few
// connections to IMDS.
package offstack

import "sync"

// Workers is how many calls Do can run at once. Each netlink socket
// serialises its own exchanges, so a few are enough; more than one, so that
// one slow exchange (a namespace's socket timing out) does not hold up the
// others.
const Workers = 4

// Pool is a set of long-lived worker goroutines that run calls for others.
type Pool struct {
	n     int
	start sync.Once
	jobs  chan *job
	// mu is held for reading while a call is handed to a worker, and for
	// writing by Close, which closes jobs. A plain send keeps Do's frame
	// small: with a select on jobs and a quit channel in its place, the
	// daemon's stacks under 1,000 uncached connections took 9.3 MB, not
	// 5.5 MB (most connections' grew to 8 KB).
	mu     sync.RWMutex
	closed bool
}

// NewPool returns a pool of n workers, started at its first call.
func NewPool(n int) *Pool { return &Pool{n: max(n, 1), jobs: make(chan *job)} }

type job struct {
	f        func()
	done     chan struct{}
	panicked any
}

// netlink is the pool of Do.
var netlink = NewPool(Workers)

// Do runs f on one of the package's Workers and returns when it has
// returned. f must not depend on the calling goroutine's OS thread (its
// network namespace): sockets already opened are bound to their namespace,
// so exchanges on them qualify; opening one does not. f must not call Do.
func Do(f func()) { netlink.Do(f) }

// Do runs f on one of p's workers, once one is free, and returns when f has
// returned; a panic in f goes on in the caller. The same rules as for the
// package's Do apply, and f must not wait for another call on p to start.
func (p *Pool) Do(f func()) {
	p.start.Do(func() {
		for range p.n {
			go p.work()
		}
	})
	j := newJob(f)
	p.mu.RLock()
	if p.closed {
		go run(j) // f runs on a goroutine of its own
	} else {
		p.jobs <- j
	}
	p.mu.RUnlock()
	j.wait()
}

// Close ends p's workers once they are done with the calls they run.
// Calls to Do after it still run, each on a goroutine of its own.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.closed = true
		close(p.jobs)
	}
}

func (p *Pool) work() {
	for j := range p.jobs {
		run(j)
	}
}

func newJob(f func()) *job { return &job{f: f, done: make(chan struct{})} }

// wait returns once j has run; a panic in j.f goes on here.
func (j *job) wait() {
	<-j.done
	if j.panicked != nil {
		panic(j.panicked)
	}
}

// run calls j.f and signals its end, also when it panics: the panic goes
// on in the caller (Do), and the worker lives on.
func run(j *job) {
	defer func() {
		j.panicked = recover()
		close(j.done)
	}()
	j.f()
}
