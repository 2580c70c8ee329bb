package identity

import (
	"net"
	"os"
	"syscall"
	"testing"
)

// TestFindManySockets: a process holding many sockets (a load generator, a
// pool) is walked once, not once per socket: every socket's owner is found
// (this process, through the right descriptor) and the other lookups take
// the hints the first walk left. Runs unprivileged (its own /proc entry).
func TestFindManySockets(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	const n = 300
	var inodes []uint32
	for range n {
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
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
	if w := p.walks.Load(); w > 3 {
		t.Errorf("%d lookups walked fd tables %d times, want a walk or two and hints for the rest", n, w)
	}
	t.Logf("%d lookups, %d fd-table walks", n, p.walks.Load())

	// A hint that went stale (the socket closed, its fd reused) is not
	// trusted: the lookup of a socket nobody holds fails.
	if _, err := p.find(inodes[0]+1<<30, uid, 0); err == nil {
		t.Errorf("found an owner for a socket that does not exist")
	}
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
