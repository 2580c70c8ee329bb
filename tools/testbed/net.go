package testbed

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/imdsguard/imdsguard/internal/netnstest"
)

// readyTimeout bounds how long a child may take to accept connections.
const readyTimeout = 15 * time.Second

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// HostPort joins host and port, bracketing IPv6 hosts.
func HostPort(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// WaitListening waits until addr accepts TCP connections (from inside ns
// when ns is not ""), failing the test when p exits first or readyTimeout
// passes.
func WaitListening(t TB, p *Proc, ns, addr string) {
	t.Helper()
	deadline := time.Now().Add(readyTimeout)
	for {
		err := dialOnce(ns, addr)
		if err == nil {
			return
		}
		if done, werr := p.Exited(); done {
			t.Fatalf("%s exited before listening on %s: %v\n%s", p.Name, addr, werr, p.Logs())
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not listening on %s after %v: %v\n%s", p.Name, addr, readyTimeout, err, p.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func dialOnce(ns, addr string) error {
	dial := func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return fmt.Errorf("dial %s: %w", addr, err)
		}
		return c.Close()
	}
	if ns == "" {
		return dial()
	}
	return netnstest.Do(ns, dial)
}
