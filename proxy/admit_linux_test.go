package proxy

import (
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/internal/netnstest"
)

// The proxy port admits loopback callers, the host calling its own address
// and redirected metadata traffic; a connection from the network straight to
// the port is closed without a byte.
func TestAdmit(t *testing.T) {
	host := netnstest.New(t, "adm-host")
	peer := netnstest.New(t, "adm-peer")
	netnstest.Veth(t, host, "h0", "192.0.2.1/24", peer, "p0", "192.0.2.2/24")
	netnstest.IP(t, peer, "route", "add", "169.254.169.254/32", "via", "192.0.2.1")
	netnstest.Run(t, "ip", "netns", "exec", host, "iptables", "-t", "nat", "-A", "PREROUTING", "-i", "h0",
		"-d", "169.254.169.254/32", "-p", "tcp", "--dport", "80", "-j", "REDIRECT", "--to-ports", "18989")
	// A pod behind an address-less veth, DNATed to a landing address on lo
	// (the daemon's rules for containers).
	pod := netnstest.AddPod(t, host, "adm-pod", netnstest.VPCCNI, "eni-adm",
		netip.MustParseAddr("203.0.113.7"), netip.MustParseAddr("2001:db8:5::7"))
	netnstest.IP(t, host, "addr", "add", "169.254.254.169/32", "dev", "lo", "scope", "host")
	netnstest.Run(t, "ip", "netns", "exec", host, "iptables", "-t", "nat", "-A", "PREROUTING", "-i", "eni-adm",
		"-d", "169.254.169.254/32", "-p", "tcp", "--dport", "80", "-j", "DNAT", "--to-destination", "169.254.254.169:18989")

	var ln net.Listener
	if err := netnstest.Do(host, func() (err error) { ln, err = net.Listen("tcp4", "0.0.0.0:18989"); return err }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	adm := Admit(ln, discard())
	go func() {
		for {
			c, err := adm.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "hello")
			c.Close()
		}
	}()
	for _, c := range []struct {
		name, ns, addr string
		admitted       bool
	}{
		{"loopback", host, "127.0.0.1:18989", true},
		{"host to its own address", host, "192.0.2.1:18989", true},
		{"redirected metadata traffic", peer, "169.254.169.254:80", true},
		{"network straight to the port", peer, "192.0.2.1:18989", false},
		{"DNATed metadata traffic from an address-less pod veth", pod.NS, "169.254.169.254:80", true},
		{"a pod straight to the landing address", pod.NS, "169.254.254.169:18989", false},
	} {
		var got string
		err := netnstest.Do(c.ns, func() error {
			conn, err := net.DialTimeout("tcp4", c.addr, 2*time.Second)
			if err != nil {
				return err
			}
			defer conn.Close()
			conn.SetReadDeadline(time.Now().Add(2 * time.Second))
			b, _ := io.ReadAll(conn)
			got = string(b)
			return nil
		})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if (got == "hello") != c.admitted {
			t.Errorf("%s: read %q, admitted=%v wanted", c.name, got, c.admitted)
		}
	}
}
