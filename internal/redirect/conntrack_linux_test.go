package redirect

import (
	"context"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Privileged: a metadata connection opened before the rules keeps its
// conntrack entry, and with it its path past the nat table (kiam #284);
// Install drops such entries, and only such: a redirected connection's
// entry survives a later restore.
func TestRealDropsDirectFlows(t *testing.T) {
	requireBackend(t, "nft")
	l := newHostLayout(t)
	imdsOnLo(t, l.imds)
	proxyOn(t, l.host)
	// The host tracks connections before imdsguard comes (docker's FORWARD
	// rules do that); a namespace without any rule does not.
	ipt(t, l.host, "iptables-nft", "-A", "FORWARD", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")
	direct := openConn(t, l.c1, imds4) // before the rules: straight to IMDS
	if n := flowsTo(t, l.host, "169.254.169.254", "169.254.169.254"); n != 1 {
		t.Fatalf("%d conntrack entries of the direct connection, want 1", n)
	}
	r := newRulesIn(t, l.host, Options{Config: DefaultConfig(), Port: testPort, Backend: "nft", Log: testLog(t, &syncBuffer{})})
	in(t, l.host, func() error { return r.Install(context.Background()) })
	if n := flowsTo(t, l.host, "169.254.169.254", "169.254.169.254"); n != 0 {
		t.Errorf("%d conntrack entries of direct metadata flows after install, want 0", n)
	}
	_ = direct.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(direct, "GET / HTTP/1.0\r\n\r\n"); err == nil {
		if b, err := io.ReadAll(direct); err == nil && len(b) > 0 {
			t.Errorf("the connection opened before the rules still reaches IMDS: %q", b)
		}
	}

	openConn(t, l.vpc.NS, imds4) // redirected
	if n := flowsTo(t, l.host, "169.254.169.254", "169.254.254.169"); n != 1 {
		t.Fatalf("%d conntrack entries of the redirected connection, want 1", n)
	}
	ipt(t, l.host, "iptables-nft", "-F", "FORWARD") // something for a restore to fix
	in(t, l.host, func() error { return r.Install(context.Background()) })
	if n := flowsTo(t, l.host, "169.254.169.254", "169.254.254.169"); n != 1 {
		t.Errorf("the redirected connection's conntrack entry went with the restore")
	}
}

// openConn connects from ns to addr and leaves the connection open.
func openConn(t *testing.T, ns, addr string) net.Conn {
	t.Helper()
	c, err := dialIn(ns, addr, 0, 2*time.Second)
	if err != nil {
		t.Fatalf("connect %s from %s: %v", addr, ns, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// flowsTo counts ns's conntrack entries of tcp flows to dst port 80 whose
// answers come from replySrc.
func flowsTo(t *testing.T, ns, dst, replySrc string) int {
	t.Helper()
	n := 0
	in(t, ns, func() error {
		h, err := netlink.NewHandle(unix.NETLINK_NETFILTER)
		if err != nil {
			return err
		}
		defer h.Close()
		flows, err := h.ConntrackTableList(netlink.ConntrackTable, unix.AF_INET)
		if err != nil {
			return err
		}
		for _, f := range flows {
			d, _ := netip.AddrFromSlice(f.Forward.DstIP)
			rs, _ := netip.AddrFromSlice(f.Reverse.SrcIP)
			if f.Forward.Protocol == unix.IPPROTO_TCP && f.Forward.DstPort == 80 && d.String() == dst && rs.String() == replySrc {
				n++
				t.Logf("conntrack: %s", f)
			}
		}
		return nil
	})
	return n
}
