package identity

import (
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
)

// openSockets opens n client connections to a listener of its own and
// returns their socket inodes; everything is closed when t ends.
func openSockets(t *testing.T, n int) []uint32 {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	var inodes []uint32
	for range n {
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		f, err := c.(*net.TCPConn).File()
		if err != nil {
			t.Fatal(err)
		}
		var st syscall.Stat_t
		err = syscall.Fstat(int(f.Fd()), &st)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		inodes = append(inodes, uint32(st.Ino))
	}
	return inodes
}

// TestFindManySocketsAtOnce: a thousand connections' lookups arriving
// together do not each walk the client's fd table: they wait for the walk
// in progress and take its hints.
func TestFindManySocketsAtOnce(t *testing.T) {
	const n = 300
	inodes := openSockets(t, n)
	p := openProcs("/proc")
	defer p.close()
	uid := uint32(os.Geteuid())
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, ino := range inodes {
		wg.Go(func() {
			pr, err := p.find(ino, uid, 0)
			if err != nil {
				errs <- err
				return
			}
			if pr.pid != os.Getpid() {
				errs <- fmt.Errorf("socket:[%d] found in pid %d, want %d", ino, pr.pid, os.Getpid())
			}
			pr.close()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// One scan of every process (the first lookup's), then walks of this
	// process only: each stops at its socket, having noted the newer ones,
	// so a walk follows only a lookup for a lower fd than any walked for
	// yet (a handful in any order but the worst). Without the hints every
	// lookup walks: n walks of this process, and more of the others.
	if w := p.walks.Load(); w > uint64(procCount(t))+n/10 {
		t.Errorf("%d concurrent lookups walked fd tables %d times (%d processes), want a scan and a few walks", n, w, procCount(t))
	}
	t.Logf("%d concurrent lookups, %d fd-table walks", n, p.walks.Load())
}

// TestFindManySockets: a process holding many sockets (a load generator, a
// pool) is walked once, not once per socket: every socket's owner is found
// (this process, through the right descriptor) and the other lookups take
// the hints the first walk left. Runs unprivileged (its own /proc entry).
func TestFindManySockets(t *testing.T) {
	const n = 300
	inodes := openSockets(t, n)
	p := openProcs("/proc")
	defer p.close()
	uid := uint32(os.Geteuid())
	// Oldest first, as a proxy sees a burst of new connections.
	for _, ino := range inodes {
		pr, err := p.find(ino, uid, 0)
		if err != nil {
			t.Fatalf("socket:[%d]: %v", ino, err)
		}
		if pr.pid != os.Getpid() {
			t.Errorf("socket:[%d]: found in pid %d, want %d", ino, pr.pid, os.Getpid())
		}
		pr.close()
	}
	if w := p.walks.Load(); w > uint64(procCount(t))+2 {
		t.Errorf("%d lookups walked fd tables %d times (%d processes), want one scan and hints for the rest", n, w, procCount(t))
	}
	t.Logf("%d lookups, %d fd-table walks", n, p.walks.Load())

	// A hint that went stale (the socket closed, its fd reused) is not
	// trusted: the lookup of a socket nobody holds fails.
	if _, err := p.find(inodes[0]+1<<30, uid, 0); err == nil {
		t.Errorf("found an owner for a socket that does not exist")
	}
}

// procCount is the number of processes on the machine: what one scan of
// every process walks at most.
func procCount(t *testing.T) int {
	p := openProcs("/proc")
	defer p.close()
	pids, err := p.pids()
	if err != nil {
		t.Fatal(err)
	}
	return len(pids)
}

func TestSocketInode(t *testing.T) {
	for _, c := range []struct {
		link string
		ino  uint32
		ok   bool
	}{
		{"socket:[12345]", 12345, true},
		{"socket:[]", 0, false},
		{"socket:[12", 0, false},
		{"pipe:[12345]", 0, false},
		{"socket:[99999999999]", 0, false},
		{"/dev/null", 0, false},
	} {
		ino, ok := socketInode([]byte(c.link))
		if ino != c.ino || ok != c.ok {
			t.Errorf("socketInode(%q) = %d, %v; want %d, %v", c.link, ino, ok, c.ino, c.ok)
		}
	}
}
