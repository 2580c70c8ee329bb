package proxy

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/imdsguard/imdsguard/internal/identity"
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

// The local redirect listener, as a Cilium Local Redirect Policy uses it:
// a pod's connect() to 169.254.169.254:80 is rewritten in the pod's socket
// to the node's address and the listener's port (modelled here by the pod
// dialling that address straight; no NAT, no PREROUTING rule). A pod behind
// an address-less veth is admitted and handed over identified, IPv4 and
// IPv6: a container caller with its namespace, uid and pid. The host
// itself and the network (a namespace behind an interface that is no
// container's) are closed without a byte, and the refusal is logged. The
// proxy's own listener keeps refusing the pod that dials it straight.
func TestAdmitLocalRedirect(t *testing.T) {
	host := netnstest.New(t, "lrp-host")
	peer := netnstest.New(t, "lrp-peer")
	netnstest.Veth(t, host, "h0", "192.0.2.1/24", peer, "p0", "192.0.2.2/24")
	netnstest.IP(t, host, "-6", "addr", "add", "2001:db8:1::1/64", "dev", "h0", "nodad")
	netnstest.IP(t, peer, "-6", "addr", "add", "2001:db8:1::2/64", "dev", "p0", "nodad")
	pod := netnstest.AddPod(t, host, "lrp-pod", netnstest.VPCCNI, "eni-lrp",
		netip.MustParseAddr("203.0.113.8"), netip.MustParseAddr("2001:db8:5::8"))
	podNS := nsInode(t, pod.NS)

	var logs syncBuf
	log := slog.New(slog.NewTextHandler(&logs, nil))
	var who *identity.Resolver
	var lns []net.Listener
	err := netnstest.Do(host, func() (err error) {
		who = identity.NewResolver(identity.Options{Log: log, InterfaceFor: routedThrough(host, "eni-")})
		if lns, err = Listen([]string{"0.0.0.0:18990", "[::]:18990", "0.0.0.0:18989"}, log); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer who.Close()
	served := make(chan identity.Caller, 8)
	for i, ln := range lns {
		if i < 2 {
			ln = AdmitLocalRedirect(ln, who.IdentifyLocalRedirect, log)
		} else {
			ln = Admit(ln, log) // the proxy's own listener
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				served <- who.Identify(c) // the caller the admission carried
				io.WriteString(c, "hello")
				c.Close()
			}
		}()
	}
	waitLocal6(t, host, "2001:db8:1::1")
	waitLocal6(t, peer, "2001:db8:1::2")

	for _, c := range []struct {
		name, ns, addr string
		admitted       bool
	}{
		{"a pod to the node's IPv4 address", pod.NS, "192.0.2.1:18990", true},
		{"a pod to the node's IPv6 address", pod.NS, "[2001:db8:1::1]:18990", true},
		{"the host to loopback", host, "127.0.0.1:18990", false},
		{"the host to its own address", host, "192.0.2.1:18990", false},
		{"the network", peer, "192.0.2.1:18990", false},
		{"the network over IPv6", peer, "[2001:db8:1::1]:18990", false},
		{"a pod straight to the proxy's own listener", pod.NS, "192.0.2.1:18989", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.admitted {
				id, pid := dialHelperIn(t, c.ns, c.addr, served)
				if id.Class != identity.Container || !id.LocalRedirect || id.Interface != "eni-lrp" || id.NetNS != podNS ||
					!id.UIDKnown || id.UID != 0 || id.PID != pid || id.Comm == "" || id.Unknown != "" {
					t.Errorf("caller %+v: want a container caller on eni-lrp in namespace %d, uid 0, pid %d", id, podNS, pid)
				}
				return
			}
			var got, local string
			err := netnstest.Do(c.ns, func() error {
				conn, err := net.DialTimeout("tcp", c.addr, 2*time.Second)
				if err != nil {
					return err
				}
				defer conn.Close()
				local = conn.LocalAddr().String()
				conn.SetReadDeadline(time.Now().Add(2 * time.Second))
				b, _ := io.ReadAll(conn)
				got = string(b)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if got != "" || !strings.Contains(logs.String(), "remote="+local) {
				t.Errorf("read %q; want nothing, and the refusal of %s logged:\n%s", got, local, logs.String())
			}
		})
	}
	t.Logf("refusals:\n%s", logs.String())
}

// dialHelperIn runs the test binary as a client process in ns (dialHelper)
// that connects to addr; it returns the caller the server identified and
// the client's pid.
func dialHelperIn(t *testing.T, ns, addr string, served <-chan identity.Caller) (identity.Caller, int) {
	t.Helper()
	cmd := netnstest.Command(ns, os.Args[0])
	cmd.Env = append(os.Environ(), dialHelperEnv+"="+addr)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var id identity.Caller
	select {
	case id = <-served:
	case <-time.After(5 * time.Second):
	}
	err := cmd.Wait()
	t.Logf("client pid %d: %q (%v); caller %+v", cmd.Process.Pid, out.String(), err, id)
	if err != nil || !strings.HasSuffix(out.String(), "hello") || !strings.HasPrefix(out.String(), id.Remote.String()+"\n") {
		t.Fatalf("client: %v %q, want its address %s and hello", err, out.String(), id.Remote)
	}
	return id, cmd.Process.Pid
}

// routedThrough stands in for the redirect's InterfaceFor: the interface
// the host (namespace host) routes an address through, when its name
// starts with prefix.
func routedThrough(host, prefix string) func(netip.Addr) string {
	return func(a netip.Addr) string {
		var name string
		netnstest.Do(host, func() error {
			routes, err := netlink.RouteGet(a.AsSlice())
			if err != nil || len(routes) == 0 || routes[0].Type == unix.RTN_LOCAL {
				return err
			}
			l, err := netlink.LinkByIndex(routes[0].LinkIndex)
			if err == nil && strings.HasPrefix(l.Attrs().Name, prefix) {
				name = l.Attrs().Name
			}
			return err
		})
		return name
	}
}

// nsInode is the inode of the named network namespace.
func nsInode(t *testing.T, ns string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat("/run/netns/"+ns, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// waitLocal6 waits until ns delivers addr locally (the kernel adds an IPv6
// address's local route from a work queue, even with nodad).
func waitLocal6(t *testing.T, ns, addr string) {
	t.Helper()
	for range 100 {
		out, _ := exec.Command("ip", "-n", ns, "-6", "route", "get", addr).Output()
		if strings.HasPrefix(string(out), "local ") {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no local route for %s in %s", addr, ns)
}

// syncBuf is a bytes.Buffer safe for the logger's goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
