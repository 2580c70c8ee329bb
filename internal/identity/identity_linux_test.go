package identity

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/internal/netnstest"
	"github.com/vishvananda/netlink"
)

// hostEnv is a namespace modelling a host: the metadata addresses on lo,
// the proxy's listeners on loopback, and nat OUTPUT REDIRECT between them.
type hostEnv struct {
	ns     string
	l4, l6 *net.TCPListener
	r      *Resolver
}

// newHostEnv builds it; finTimeout > 0 sets net.ipv4.tcp_fin_timeout there.
func newHostEnv(t testing.TB, finTimeout int) *hostEnv {
	t.Helper()
	ns := netnstest.New(t, "idh")
	netnstest.IP(t, ns, "addr", "add", "169.254.169.254/32", "dev", "lo")
	netnstest.IP(t, ns, "-6", "addr", "add", "fd00:ec2::254/128", "dev", "lo", "nodad")
	e := &hostEnv{ns: ns, l4: listen(t, ns, "tcp4", "127.0.0.1:0"), l6: listen(t, ns, "tcp6", "[::1]:0")}
	nsExec(t, ns, "iptables", "-t", "nat", "-A", "OUTPUT", "-d", "169.254.169.254/32", "-p", "tcp", "--dport", "80",
		"-j", "REDIRECT", "--to-ports", port(e.l4))
	nsExec(t, ns, "ip6tables", "-t", "nat", "-A", "OUTPUT", "-d", "fd00:ec2::254/128", "-p", "tcp", "--dport", "80",
		"-j", "REDIRECT", "--to-ports", port(e.l6))
	if finTimeout > 0 {
		nsExec(t, ns, "sysctl", "-qw", "net.ipv4.tcp_fin_timeout="+strconv.Itoa(finTimeout))
	}
	e.r = newResolver(t, ns, Options{})
	return e
}

func port(l *net.TCPListener) string {
	return strconv.Itoa(int(l.Addr().(*net.TCPAddr).AddrPort().Port()))
}

// want is what a test expects of a Caller (zero values are checked too).
type want struct {
	class     Class
	origDst   string
	uid       uint32
	user      string
	procUID   uint32
	gid       uint32
	groups    []uint32
	netns     uint64
	iface     string
	remoteIP  string
	container bool // the pid is the helper's, comm and exe are the helper's
	noGroups  bool // groups must not count: the process runs as another user than the socket's owner
}

func checkCaller(t *testing.T, got Caller, w want, cl *client) {
	t.Helper()
	t.Logf("caller: %+v", got)
	if !got.UIDKnown || got.Unknown != "" {
		t.Fatalf("identity unknown: %q", got.Unknown)
	}
	if got.Class != w.class || got.UID != w.uid || got.User != w.user || got.ProcUID != w.procUID {
		t.Errorf("class %s uid %d user %q procuid %d; want %s %d %q %d", got.Class, got.UID, got.User, got.ProcUID, w.class, w.uid, w.user, w.procUID)
	}
	if w.origDst == "" && got.OrigDst.IsValid() || w.origDst != "" && got.OrigDst != netip.MustParseAddrPort(w.origDst) {
		t.Errorf("OrigDst %s, want %q", got.OrigDst, w.origDst)
	}
	switch {
	case w.noGroups && got.GIDKnown:
		t.Errorf("gid %d groups %v known, want none: they are not the socket owner's", got.GID, got.Groups)
	case !w.noGroups && (!got.GIDKnown || got.GID != w.gid || !slices.Equal(got.Groups, w.groups)):
		t.Errorf("gid %d groups %v (known %v), want %d %v", got.GID, got.Groups, got.GIDKnown, w.gid, w.groups)
	}
	if got.PID != cl.Pid() || got.Comm != "idhelper" || got.Exe != helperBinary(t) {
		t.Errorf("pid %d comm %q exe %q, want %d idhelper %s", got.PID, got.Comm, got.Exe, cl.Pid(), helperBinary(t))
	}
	if got.NetNS != w.netns || got.Interface != w.iface {
		t.Errorf("netns %d interface %q, want %d %q", got.NetNS, got.Interface, w.netns, w.iface)
	}
	if w.remoteIP != "" && got.Remote.Addr() != netip.MustParseAddr(w.remoteIP) {
		t.Errorf("remote %s, want %s", got.Remote, w.remoteIP)
	}
	if got.Cgroup == "" {
		t.Errorf("no cgroup")
	}
}

func TestIdentifyHost(t *testing.T) {
	netnstest.RequireRoot(t)
	e := newHostEnv(t, 0)
	cases := []struct {
		name string
		l    *net.TCPListener
		dial string
		cred *syscall.Credential
		mode string
		args []string
		want want
	}{
		{"IPv4 via OUTPUT REDIRECT, as nobody", e.l4, "169.254.169.254:80", nobody, "dial", nil,
			want{class: Host, origDst: "169.254.169.254:80", uid: 65534, user: "nobody", procUID: 65534, gid: 65534, groups: []uint32{100, 65534}}},
		{"IPv6 via OUTPUT REDIRECT, as nobody", e.l6, "[fd00:ec2::254]:80", nobody, "dial", nil,
			want{class: Host, origDst: "[fd00:ec2::254]:80", uid: 65534, user: "nobody", procUID: 65534, gid: 65534, groups: []uint32{100, 65534}}},
		{"IPv4 direct to the proxy port", e.l4, e.l4.Addr().String(), nobody, "dial", nil,
			want{class: Host, uid: 65534, user: "nobody", procUID: 65534, gid: 65534, groups: []uint32{100, 65534}}},
		{"IPv6 direct to the proxy port", e.l6, e.l6.Addr().String(), nobody, "dial", nil,
			want{class: Host, uid: 65534, user: "nobody", procUID: 65534, gid: 65534, groups: []uint32{100, 65534}}},
		// The kernel attests the socket's owner: the fsuid that made it.
		// A process that then became nobody still shows as root, and its
		// groups, nobody's now, do not count for root's socket.
		{"socket made as root, used after setuid(nobody)", e.l4, "169.254.169.254:80", nil, "dial-setuid", []string{"65534", "65534"},
			want{class: Host, origDst: "169.254.169.254:80", uid: 0, user: "root", procUID: 65534, noGroups: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cl := startClient(t, e.ns, c.cred, c.mode, append([]string{c.dial}, c.args...)...)
			checkCaller(t, e.r.Identify(accept(t, c.l)), c.want, cl)
		})
	}
}

func TestIdentifyHostConcurrent(t *testing.T) {
	netnstest.RequireRoot(t)
	e := newHostEnv(t, 0)
	var pairs []connPid
	for _, dial := range []string{"169.254.169.254:80", "[fd00:ec2::254]:80"} {
		for range 2 {
			cl := startClient(t, e.ns, nobody, "dial", dial)
			l := e.l4
			if strings.HasPrefix(dial, "[") {
				l = e.l6
			}
			pairs = append(pairs, connPid{accept(t, l), cl.Pid()})
		}
	}
	forget := func() {
		e.r.procs.mu.Lock()
		defer e.r.procs.mu.Unlock()
		clear(e.r.procs.recent)
	}
	hammer(t, e.r, pairs, forget)
}

func TestIdentifyInProcessRoot(t *testing.T) {
	netnstest.RequireRoot(t)
	e := newHostEnv(t, 0)
	var d net.Conn
	if err := netnstest.Do(e.ns, func() (err error) { d, err = net.Dial("tcp", "169.254.169.254:80"); return err }); err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	got := e.r.Identify(accept(t, e.l4))
	if !got.UIDKnown || got.UID != 0 || got.User != "root" || got.PID != os.Getpid() {
		t.Fatalf("caller %+v, want root, pid %d", got, os.Getpid())
	}
}

func TestIdentifyExitedClient(t *testing.T) {
	netnstest.RequireRoot(t)
	t.Run("orphan socket keeps its owner", func(t *testing.T) {
		// With tcp_fin_timeout above 60 s the orphan stays a full socket in
		// FIN_WAIT2, which still knows its uid; its inode is 0.
		e := newHostEnv(t, 120)
		cl := startClient(t, e.ns, nobody, "dial", "169.254.169.254:80")
		conn := accept(t, e.l4)
		cl.Exit(t)
		got := e.r.Identify(conn)
		t.Logf("caller: %+v", got)
		if !got.UIDKnown || got.UID != 65534 || got.PID != 0 || got.GIDKnown || got.Comm != "" || got.Unknown != "" {
			t.Fatalf("want uid 65534 known, no process, no groups; got %+v", got)
		}
	})
	t.Run("time-wait socket has no owner", func(t *testing.T) {
		// By default the orphan becomes a time-wait minisocket (state
		// FIN_WAIT2 kept) that reports uid 0: not root, nobody.
		e := newHostEnv(t, 0)
		cl := startClient(t, e.ns, nobody, "dial", "169.254.169.254:80")
		conn := accept(t, e.l4)
		cl.Exit(t)
		var got Caller
		for range 200 {
			if got = e.r.Identify(conn); !got.UIDKnown {
				break
			}
			if got.UID != 65534 {
				t.Fatalf("uid %d attested for the exiting client", got.UID)
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Logf("caller: %+v", got)
		if got.UIDKnown || !strings.Contains(got.Unknown, "time-wait") {
			t.Fatalf("want unknown (time-wait), got %+v", got)
		}
	})
}

func TestIdentifyLookupFails(t *testing.T) {
	netnstest.RequireRoot(t)
	e := newHostEnv(t, 0)
	t.Run("client socket reset before the lookup", func(t *testing.T) {
		var d net.Conn
		if err := netnstest.Do(e.ns, func() (err error) { d, err = net.Dial("tcp", "169.254.169.254:80"); return err }); err != nil {
			t.Fatal(err)
		}
		conn := accept(t, e.l4)
		d.(*net.TCPConn).SetLinger(0)
		d.Close() // RST: the client socket is gone
		got := e.r.Identify(conn)
		t.Logf("caller: %+v", got)
		if got.UIDKnown || got.PID != 0 || !strings.Contains(got.Unknown, "no such socket") {
			t.Fatalf("want unknown (no such socket), got %+v", got)
		}
		if got.Binding() != "addr:169.254.169.254" {
			t.Errorf("binding %q", got.Binding())
		}
	})
	t.Run("not a TCP connection", func(t *testing.T) {
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		if got := e.r.Identify(a); got.UIDKnown || !strings.Contains(got.Unknown, "not a TCP connection") {
			t.Fatalf("got %+v", got)
		}
	})
}

// TestExactLookupFallsBackToListeners shows why the answer's addresses are
// checked even for an exact request: a tuple without a connected socket
// finds the listener on its source address and port.
func TestExactLookupFallsBackToListeners(t *testing.T) {
	netnstest.RequireRoot(t)
	e := newHostEnv(t, 0)
	src := e.l4.Addr().(*net.TCPAddr).AddrPort()
	_, err := e.r.host.lookup(src, netip.MustParseAddrPort("127.0.0.9:80"))
	t.Logf("lookup of %s -> 127.0.0.9:80 with only a listener on %s: %v", src, src, err)
	if !errors.Is(err, errMismatch) && !errors.Is(err, errNoSocket) {
		t.Fatalf("lookup = %v, want a refusal", err)
	}
}

// TestSocketGetMatchesPortsOnly shows the TESTBED trap against this kernel:
// two sockets with the same ports and different source addresses.
func TestSocketGetMatchesPortsOnly(t *testing.T) {
	netnstest.RequireRoot(t)
	e := newHostEnv(t, 0)
	var a, b net.Conn
	err := netnstest.Do(e.ns, func() (err error) {
		if a, err = net.DialTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, e.l4.Addr().(*net.TCPAddr)); err != nil {
			return err
		}
		p := a.LocalAddr().(*net.TCPAddr).Port
		b, err = net.DialTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 3), Port: p}, e.l4.Addr().(*net.TCPAddr))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	defer b.Close()
	accept(t, e.l4)
	accept(t, e.l4)
	for _, c := range []net.Conn{a, b} {
		src, dst := c.LocalAddr().(*net.TCPAddr).AddrPort(), c.RemoteAddr().(*net.TCPAddr).AddrPort()
		ans, err := e.r.host.lookup(src, dst)
		if err != nil || ans.Src != src {
			t.Errorf("exact lookup %s -> %s: %+v, %v", src, dst, ans, err)
		}
		var s *netlink.Socket
		err = netnstest.Do(e.ns, func() (err error) { s, err = netlink.SocketGet(c.LocalAddr(), c.RemoteAddr()); return err })
		if err != nil {
			t.Logf("SocketGet %s -> %s: %v", src, dst, err)
			continue
		}
		verdict := "right socket"
		if !s.ID.Source.Equal(c.LocalAddr().(*net.TCPAddr).IP) {
			verdict = "WRONG socket (ports matched, address did not)"
		}
		t.Logf("SocketGet %s -> %s answered %s:%d -> %s:%d: %s", src, dst, s.ID.Source, s.ID.SourcePort, s.ID.Destination, s.ID.DestinationPort, verdict)
	}
}

func TestOriginalDst(t *testing.T) {
	netnstest.RequireRoot(t)
	e := newHostEnv(t, 0)
	cases := []struct {
		name, dial string
		l          *net.TCPListener
		want       string // "" for not redirected
	}{
		{"IPv4 redirected", "169.254.169.254:80", e.l4, "169.254.169.254:80"},
		{"IPv6 redirected", "[fd00:ec2::254]:80", e.l6, "[fd00:ec2::254]:80"},
		{"IPv4 direct", e.l4.Addr().String(), e.l4, ""},
		{"IPv6 direct", e.l6.Addr().String(), e.l6, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var d net.Conn
			if err := netnstest.Do(e.ns, func() (err error) { d, err = net.Dial("tcp", c.dial); return err }); err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			dst, ok, err := OriginalDst(accept(t, c.l))
			if err != nil || ok != (c.want != "") || ok && dst != netip.MustParseAddrPort(c.want) {
				t.Fatalf("OriginalDst = %s, %v, %v; want %q", dst, ok, err, c.want)
			}
		})
	}
}
