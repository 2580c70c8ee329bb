package identity

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"

	"golang.org/x/sys/unix"
)

// netnsDir holds the network namespaces iproute2 (and CNI) bind-mount.
const netnsDir = "/run/netns"

// nsID identifies a network namespace: the nsfs device and inode.
type nsID struct{ dev, ino uint64 }

// nsCandidate is a network namespace and a path that opens it.
type nsCandidate struct {
	ino  uint64
	path string
}

// threadNetNS identifies the calling thread's network namespace.
func threadNetNS() (nsID, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
		return nsID{}, fmt.Errorf("stat own network namespace: %w", err)
	}
	return nsID{dev: st.Dev, ino: st.Ino}, nil
}

// namespaces lists the network namespaces other than self, each once: those
// bind-mounted under /run/netns, then those of running processes, lowest
// pid first (a container's first process tends to outlive the others, so
// its path stays good longer in the cache).
func (p *procs) namespaces(self nsID) []nsCandidate {
	seen := map[uint64]bool{self.ino: true}
	var out []nsCandidate
	add := func(path string) {
		var st unix.Stat_t
		if unix.Stat(path, &st) != nil || st.Dev != self.dev || seen[st.Ino] {
			return // gone, not a namespace, or known
		}
		seen[st.Ino] = true
		out = append(out, nsCandidate{ino: st.Ino, path: path})
	}
	if ents, err := os.ReadDir(netnsDir); err == nil {
		for _, e := range ents {
			add(filepath.Join(netnsDir, e.Name()))
		}
	}
	pids, _ := p.pids()
	slices.Reverse(pids)
	for _, pid := range pids {
		add(fmt.Sprintf("%s/%d/ns/net", p.root, pid))
	}
	return out
}

// lookupIn does the exact inet_diag lookup inside another network
// namespace, with each destination in turn on one socket: the first found
// answers; when none is, the first error that is not "not found" (else the
// first error) says why.
func lookupIn(c nsCandidate, dev uint64, src netip.AddrPort, dsts ...netip.AddrPort) (diagAnswer, error) {
	d, err := openDiagIn(c, dev)
	if err != nil {
		return diagAnswer{}, err
	}
	defer d.Close()
	notFound := func(err error) bool { return errors.Is(err, errNoSocket) || errors.Is(err, errMismatch) }
	var first error
	for _, dst := range dsts {
		ans, err := d.lookup(src, dst)
		switch {
		case err == nil:
			return ans, nil
		case first == nil, notFound(first) && !notFound(err):
			first = err
		}
	}
	return diagAnswer{}, first
}

// openDiagIn opens an inet_diag socket inside the namespace c (which needs
// CAP_SYS_ADMIN). The socket is made on a thread of its own, locked while it
// visits the namespace; should the thread fail to come back, it stays locked
// and the runtime ends it with its goroutine, so no other goroutine ever runs
// in the container's namespace.
func openDiagIn(c nsCandidate, dev uint64) (*diagSock, error) {
	type result struct {
		d   *diagSock
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		d, back, err := openDiagLocked(c, dev)
		if back {
			runtime.UnlockOSThread()
		}
		done <- result{d, err}
	}()
	r := <-done
	return r.d, r.err
}

// openDiagLocked runs on a locked thread; back is false when the thread could
// not return to its own namespace.
func openDiagLocked(c nsCandidate, dev uint64) (d *diagSock, back bool, err error) {
	target, err := unix.Open(c.path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, true, fmt.Errorf("open network namespace %d at %s: %w", c.ino, c.path, err)
	}
	defer unix.Close(target)
	var st unix.Stat_t
	if err := unix.Fstat(target, &st); err != nil || st.Ino != c.ino || st.Dev != dev {
		return nil, true, fmt.Errorf("open network namespace %d at %s: not that namespace (any more)", c.ino, c.path)
	}
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, true, fmt.Errorf("open own network namespace: %w", err)
	}
	defer unix.Close(orig)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		return nil, true, fmt.Errorf("enter network namespace %d: %w", c.ino, err)
	}
	d, err = openDiag()
	if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
		if d != nil {
			d.Close()
		}
		return nil, false, fmt.Errorf("return from network namespace %d: %w", c.ino, err)
	}
	if err != nil {
		return nil, true, fmt.Errorf("in network namespace %d: %w", c.ino, err)
	}
	return d, true, nil
}

// nsCacheMax bounds the source-address memory; it starts over when full.
const nsCacheMax = 4096

// nsCache remembers which network namespace a container source address was
// last found in. Entries are hints: each use is re-validated by the lookup.
type nsCache struct {
	mu sync.Mutex
	m  map[netip.Addr]nsCandidate
}

func (c *nsCache) get(a netip.Addr) (nsCandidate, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[a]
	return v, ok
}

func (c *nsCache) put(a netip.Addr, v nsCandidate) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= nsCacheMax {
		c.m = make(map[netip.Addr]nsCandidate)
	}
	c.m[a] = v
}

func (c *nsCache) drop(a netip.Addr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, a)
}
