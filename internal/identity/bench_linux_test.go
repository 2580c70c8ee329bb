package identity

import (
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"testing"

	"github.com/imdsguard/imdsguard/internal/netnstest"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// benchEnv is a host namespace with one redirected client connection (a
// helper process running as nobody) and, started after it so that their
// higher pids are scanned first, idle processes holding idleSockets
// connections between them: two as nobody (the caller's own uid), one as root.
type benchEnv struct {
	*hostEnv
	conn   *net.TCPConn
	client *client
}

const idleSockets = 300

func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	netnstest.RequireRoot(b)
	e := &benchEnv{hostEnv: newHostEnv(b, 0)}
	e.client = startClient(b, e.ns, nobody, "dial", "169.254.169.254:80")
	e.conn = accept(b, e.l4)
	idle := listen(b, e.ns, "tcp4", "127.0.0.1:0")
	holdAll(b, idle)
	for _, cred := range []*syscall.Credential{nobody, nobody, nil} {
		startClient(b, e.ns, cred, "idle", strconv.Itoa(idleSockets/3), idle.Addr().String())
	}
	return e
}

// holdAll accepts and keeps every connection until the benchmark ends.
func holdAll(b *testing.B, l *net.TCPListener) {
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	b.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
}

func (e *benchEnv) tuple() (src, dst netip.AddrPort) {
	return e.conn.RemoteAddr().(*net.TCPAddr).AddrPort(), netip.MustParseAddrPort("169.254.169.254:80")
}

// BenchmarkExactLookup is the exact inet_diag request for the client socket.
func BenchmarkExactLookup(b *testing.B) {
	e := newBenchEnv(b)
	src, dst := e.tuple()
	b.ResetTimer()
	for range b.N {
		if a, err := e.r.host.lookup(src, dst); err != nil || a.UID != 65534 {
			b.Fatalf("lookup: %+v, %v", a, err)
		}
	}
}

// BenchmarkSocketGet is netlink.SocketGet (a filtered dump) for the same
// socket, through a handle whose socket is reused, like the exact lookup's.
func BenchmarkSocketGet(b *testing.B) {
	e := newBenchEnv(b)
	src, dst := e.tuple()
	var h *netlink.Handle
	if err := netnstest.Do(e.ns, func() (err error) { h, err = netlink.NewHandle(unix.NETLINK_INET_DIAG); return err }); err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	local, remote := net.TCPAddrFromAddrPort(src), net.TCPAddrFromAddrPort(dst)
	b.ResetTimer()
	for range b.N {
		if s, err := h.SocketGet(local, remote); err != nil || s.UID != 65534 {
			b.Fatalf("SocketGet: %+v, %v", s, err)
		}
	}
}

// BenchmarkIdentify is the whole per-connection work: original destination,
// exact lookup, pid, process details, user name. "warm": the pid is among
// those remembered for the uid; "scan": the memory is cleared every time, so
// the pid is found by scanning /proc (processes of the uid first).
func BenchmarkIdentify(b *testing.B) {
	e := newBenchEnv(b)
	for _, bc := range []struct {
		name   string
		forget bool
	}{{"warm", false}, {"scan", true}} {
		b.Run(bc.name, func(b *testing.B) {
			for range b.N {
				if bc.forget {
					e.r.procs.mu.Lock()
					clear(e.r.procs.recent)
					e.r.procs.mu.Unlock()
				}
				if c := e.r.Identify(e.conn); c.PID != e.client.Pid() {
					b.Fatalf("caller %+v", c)
				}
			}
		})
	}
}

// BenchmarkIdentifyContainer is Identify for a container caller whose
// namespace is remembered for its source address: one socket opened inside
// that namespace per lookup.
func BenchmarkIdentifyContainer(b *testing.B) {
	netnstest.RequireRoot(b)
	e := newContainerEnv(b)
	cl := startClient(b, e.ctr, nobody, "dial", "169.254.169.254:80")
	conn := accept(b, e.l)
	b.ResetTimer()
	for range b.N {
		if c := e.r.Identify(conn); c.PID != cl.Pid() {
			b.Fatalf("caller %+v", c)
		}
	}
}
