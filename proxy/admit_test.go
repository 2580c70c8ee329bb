package proxy

import (
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/internal/identity"
)

// The local redirect listener admits a caller identified in a container's
// network namespace behind a container interface, and nothing else.
func TestLocalRedirectRefusal(t *testing.T) {
	pod := identity.Caller{Class: identity.Container, Interface: "lxc1", NetNS: 4026532240, UIDKnown: true}
	for _, c := range []struct {
		name string
		edit func(*identity.Caller)
		want string // "" = admitted, else a piece of the reason
	}{
		{"a pod", func(*identity.Caller) {}, ""},
		{"no container interface", func(c *identity.Caller) {
			c.Interface, c.Unknown = "", "source 192.0.2.2 is not routed through a container interface"
		}, "not from a container: source 192.0.2.2"},
		{"no container interface, no reason", func(c *identity.Caller) { c.Interface = "" }, "no container interface routes"},
		{"socket not found", func(c *identity.Caller) { c.NetNS, c.Unknown = 0, "is in none of 12 network namespaces" }, "no container's socket: is in none"},
		{"owner not attested", func(c *identity.Caller) { c.Unknown = "socket owner not attested" }, "no container's socket"},
		{"no namespace", func(c *identity.Caller) { c.NetNS = 0 }, "not identified in a container's network namespace"},
		{"a host caller", func(c *identity.Caller) { c.Class = identity.Host }, "not identified in a container's network namespace"},
	} {
		id := pod
		c.edit(&id)
		got := localRedirectRefusal(&id)
		if c.want == "" && got != "" || c.want != "" && !strings.Contains(got, c.want) {
			t.Errorf("%s: refusal %q, want %q", c.name, got, c.want)
		}
	}
}

// Admission runs beside the accept loop: a caller whose identification
// takes long does not hold up the next one. Closing the listener ends
// Accept, and a connection admitted after that is closed, not leaked.
func TestAdmitLocalRedirectConcurrent(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	slow := make(chan struct{})
	var calls atomic.Int32
	identify := func(c net.Conn) identity.Caller {
		if calls.Add(1) == 1 { // the first caller's identification hangs until released
			close(slow)
			<-release
		}
		return identity.Caller{Class: identity.Container, Interface: "lxc1", NetNS: 1, Remote: c.RemoteAddr().(*net.TCPAddr).AddrPort()}
	}
	adm := AdmitLocalRedirect(ln, identify, discard())
	slowConn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer slowConn.Close()
	<-slow
	fast, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Close()
	got := make(chan net.Conn, 1)
	go func() {
		c, err := adm.Accept()
		if err != nil {
			t.Error(err)
		}
		got <- c
	}()
	select {
	case c := <-got:
		if c.RemoteAddr().String() != fast.LocalAddr().String() {
			t.Errorf("accepted %s first, want the fast caller %s", c.RemoteAddr(), fast.LocalAddr())
		}
		c.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("the fast caller waited for the slow one's identification")
	}
	adm.Close()
	if _, err := adm.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
	}
	close(release) // the slow caller is admitted now, with nobody to take it: closed
	slowConn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := slowConn.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("the slow caller's connection: %v, want it closed (EOF)", err)
	}
}
