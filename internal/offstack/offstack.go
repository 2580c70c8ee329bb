// Package offstack runs netlink exchanges on a few long-lived goroutines,
// so that the goroutines serving connections never hold netlink's stack.
//
// vishvananda/netlink's NetlinkSocket.Receive keeps its 64 KB receive
// buffer on the stack. Called on a connection's goroutine (the caller's
// socket lookup, the route to a container), it grows that goroutine's stack
// to 128 KB; a burst of a thousand new connections then held 66 MB of
// stacks, and the memory stayed with the process after the stacks shrank.
// Netlink exchanges take microseconds and run once per connection, so the
// hop to a worker and back costs nothing that matters. Do runs them.
package offstack

import "sync"

// Workers is how many calls Do can run at once. Each netlink socket
// serialises its own exchanges, so a few are enough; more than one, so that
// one slow exchange (a namespace's socket timing out) does not hold up the
// others.
const Workers = 4

var (
	start sync.Once
	jobs  = make(chan *job)
)

type job struct {
	f        func()
	done     chan struct{}
	panicked any
}

// Do runs f on one of the package's Workers and returns when it has
// returned; a panic in f goes on in the caller. f must not depend on the
// calling goroutine's OS thread (its network namespace): sockets already
// opened are bound to their namespace, so exchanges on them qualify;
// opening one does not. f must not call Do.
func Do(f func()) {
	start.Do(func() {
		for range Workers {
			go work()
		}
	})
	j := &job{f: f, done: make(chan struct{})}
	jobs <- j
	<-j.done
	if j.panicked != nil {
		panic(j.panicked)
	}
}

func work() {
	for j := range jobs {
		run(j)
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
