package identity

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/imdsguard/imdsguard/internal/netnstest"
)

// A Cilium Local Redirect Policy rewrites a pod's connect() to the
// metadata address into this node's address and the local redirect port,
// in the pod's own socket; nothing is NATed. Modelled here by the
// container dialling the host's address straight: its socket is found with
// that tuple in its own namespace, and it is a container caller as a
// redirected one would be (uid, gid, pid, namespace, interface), with no
// original destination. The host itself, and a source no container
// interface routes, are not searched for and stay unknown.
func TestIdentifyLocalRedirect(t *testing.T) {
	netnstest.RequireRoot(t)
	e := newContainerEnv(t)
	ctrNS := netnsInode(t, e.ctr)
	for _, c := range []struct{ name, dial, src string }{
		{"IPv4 to the host's address", "198.51.100.1:" + port(e.l), "198.51.100.2"},
		{"IPv6 to the host's address", "[2001:db8:1::1]:" + port(e.l), "2001:db8:1::2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl := startClient(t, e.ctr, nobody, "dial", c.dial)
			conn := accept(t, e.l)
			got := e.r.IdentifyLocalRedirect(conn)
			checkCaller(t, got, want{class: Container, uid: 65534, procUID: 65534, gid: 65534,
				groups: []uint32{100, 65534}, netns: ctrNS, iface: "vh", remoteIP: c.src}, cl)
			if !got.LocalRedirect || got.Local != netip.MustParseAddrPort(c.dial) {
				t.Errorf("local redirect %v, local %s; want true, %s", got.LocalRedirect, got.Local, c.dial)
			}
			// Carried to the proxy: Identify answers from the connection.
			again := e.r.Identify(Identified(conn, got))
			if again.PID != got.PID || again.NetNS != got.NetNS || again.Binding() != got.Binding() || !again.LocalRedirect {
				t.Errorf("Identify of the identified connection: %+v, want %+v", again, got)
			}
		})
	}
	// Cilium balancing per packet (socketLB.hostNamespaceOnly) leaves the
	// pod's socket pointing at the metadata address while the connection
	// lands on the node: modelled by the PREROUTING DNAT of this setup.
	t.Run("per-packet balancing", func(t *testing.T) {
		cl := startClient(t, e.ctr, nobody, "dial", "169.254.169.254:80")
		got := e.r.IdentifyLocalRedirect(accept(t, e.l))
		checkCaller(t, got, want{class: Container, uid: 65534, procUID: 65534, gid: 65534,
			groups: []uint32{100, 65534}, netns: ctrNS, iface: "vh", remoteIP: "198.51.100.2"}, cl)
		if got.Local.Addr() != netip.MustParseAddr("169.254.254.169") {
			t.Errorf("landed on %s", got.Local)
		}
	})
	t.Run("the host itself", func(t *testing.T) {
		var d net.Conn
		err := netnstest.Do(e.host, func() (err error) { d, err = net.Dial("tcp", "198.51.100.1:"+port(e.l)); return err })
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		got := e.r.IdentifyLocalRedirect(accept(t, e.l))
		t.Logf("caller: %+v", got)
		if got.UIDKnown || got.NetNS != 0 || got.Interface != "" || !strings.Contains(got.Unknown, "not routed through a container interface") {
			t.Fatalf("want an unknown caller outside the container interfaces, got %+v", got)
		}
	})
	t.Run("gone before it was looked up", func(t *testing.T) {
		var d net.Conn
		err := netnstest.Do(e.ctr, func() (err error) { d, err = net.Dial("tcp", "198.51.100.1:"+port(e.l)); return err })
		if err != nil {
			t.Fatal(err)
		}
		conn := accept(t, e.l)
		d.(*net.TCPConn).SetLinger(0)
		d.Close() // RST: the socket is gone from the container's tables
		got := e.r.IdentifyLocalRedirect(conn)
		t.Logf("caller: %+v", got)
		if got.UIDKnown || got.NetNS != 0 || !strings.Contains(got.Unknown, " or 169.254.169.254:80 is in none of") {
			t.Fatalf("want an unknown caller, not found with either tuple, got %+v", got)
		}
	})
}
