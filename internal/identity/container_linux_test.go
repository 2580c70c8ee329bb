package identity

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/imdsguard/imdsguard/internal/netnstest"
	"github.com/imdsguard/imdsguard/internal/testenv"
)

// containerEnv is a host namespace with the proxy (one dual-stack listener)
// and nat PREROUTING DNAT from a veth to landing addresses on lo, as the
// daemon's rules do, and a "container" namespace behind that veth.
type containerEnv struct {
	host, ctr string
	l         *net.TCPListener
	r         *Resolver
}

func newContainerEnv(t testing.TB) *containerEnv {
	t.Helper()
	e := &containerEnv{host: netnstest.New(t, "idch"), ctr: netnstest.New(t, "idcc")}
	netnstest.Veth(t, e.host, "vh", "198.51.100.1/24", e.ctr, "vc", "198.51.100.2/24")
	netnstest.IP(t, e.host, "-6", "addr", "add", "2001:db8:1::1/64", "dev", "vh", "nodad")
	netnstest.IP(t, e.ctr, "-6", "addr", "add", "2001:db8:1::2/64", "dev", "vc", "nodad")
	netnstest.IP(t, e.ctr, "route", "add", "default", "via", "198.51.100.1")
	netnstest.IP(t, e.ctr, "-6", "route", "add", "default", "via", "2001:db8:1::1")
	netnstest.IP(t, e.host, "addr", "add", "169.254.254.169/32", "dev", "lo", "scope", "host")
	netnstest.IP(t, e.host, "-6", "addr", "add", "fd69:6d64:7367::254/128", "dev", "lo", "nodad", "preferred_lft", "0")
	e.l = listen(t, e.host, "tcp", ":0")
	nsExec(t, e.host, "iptables", "-t", "nat", "-A", "PREROUTING", "-i", "vh", "-d", "169.254.169.254/32",
		"-p", "tcp", "--dport", "80", "-j", "DNAT", "--to-destination", "169.254.254.169:"+port(e.l))
	nsExec(t, e.host, "ip6tables", "-t", "nat", "-A", "PREROUTING", "-i", "vh", "-d", "fd00:ec2::254/128",
		"-p", "tcp", "--dport", "80", "-j", "DNAT", "--to-destination", "[fd69:6d64:7367::254]:"+port(e.l))
	e.r = newResolver(t, e.host, Options{InterfaceFor: interfaceFor})
	return e
}

// interfaceFor stands in for the redirect's route lookup: the interface
// the host reaches a container's address through.
func interfaceFor(a netip.Addr) string {
	if a == netip.MustParseAddr("198.51.100.2") || a == netip.MustParseAddr("2001:db8:1::2") {
		return "vh"
	}
	return ""
}

func TestIdentifyContainer(t *testing.T) {
	netnstest.RequireRoot(t)
	e := newContainerEnv(t)
	ctrNS := netnsInode(t, e.ctr)
	cases := []struct {
		name, dial, origDst, src string
	}{
		{"IPv4 via PREROUTING DNAT", "169.254.169.254:80", "169.254.169.254:80", "198.51.100.2"},
		{"IPv4 again: namespace remembered for the source", "169.254.169.254:80", "169.254.169.254:80", "198.51.100.2"},
		{"IPv6 via PREROUTING DNAT", "[fd00:ec2::254]:80", "[fd00:ec2::254]:80", "2001:db8:1::2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, cached := e.r.nsBySrc.get(netip.MustParseAddr(c.src))
			cl := startClient(t, e.ctr, nobody, "dial", c.dial)
			got := e.r.Identify(accept(t, e.l))
			checkCaller(t, got, want{class: Container, origDst: c.origDst, uid: 65534, procUID: 65534, gid: 65534,
				groups: []uint32{100, 65534}, netns: ctrNS, iface: "vh", remoteIP: c.src}, cl)
			if !strings.HasPrefix(got.Binding(), "netns:") {
				t.Errorf("binding %q", got.Binding())
			}
			t.Logf("namespace cached before: %v; binding %s", cached, got.Binding())
		})
	}
}

func TestIdentifyContainerNotFound(t *testing.T) {
	netnstest.RequireRoot(t)
	e := newContainerEnv(t)
	var d net.Conn
	if err := netnstest.Do(e.ctr, func() (err error) { d, err = net.Dial("tcp", "169.254.169.254:80"); return err }); err != nil {
		t.Fatal(err)
	}
	conn := accept(t, e.l)
	d.(*net.TCPConn).SetLinger(0)
	d.Close() // RST: the socket is gone from the container's tables
	got := e.r.Identify(conn)
	t.Logf("caller: %+v", got)
	if got.Class != Container || got.UIDKnown || got.NetNS != 0 || got.Interface != "vh" ||
		!strings.Contains(got.Unknown, "in none of") {
		t.Fatalf("want an unknown container caller on vh, got %+v", got)
	}
}

// TestIdentifyContainerAmbiguous builds the overlapping-networks case: a
// second namespace with the container's address holds a socket with the
// very same tuple. Nobody is identified.
func TestIdentifyContainerAmbiguous(t *testing.T) {
	netnstest.RequireRoot(t)
	e := newContainerEnv(t)
	twin := netnstest.New(t, "idct")
	netnstest.IP(t, twin, "addr", "add", "198.51.100.2/32", "dev", "lo")
	netnstest.IP(t, twin, "addr", "add", "169.254.169.254/32", "dev", "lo")
	twinIMDS := listen(t, twin, "tcp4", "169.254.169.254:80")
	var d1, d2 net.Conn
	err := netnstest.Do(e.ctr, func() (err error) { d1, err = net.Dial("tcp", "169.254.169.254:80"); return err })
	if err != nil {
		t.Fatal(err)
	}
	defer d1.Close()
	err = netnstest.Do(twin, func() (err error) {
		d := net.Dialer{LocalAddr: d1.LocalAddr()} // 198.51.100.2, same port
		d2, err = d.Dial("tcp", "169.254.169.254:80")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	accept(t, twinIMDS)
	got := e.r.Identify(accept(t, e.l))
	t.Logf("caller: %+v", got)
	if got.UIDKnown || got.NetNS != 0 || !strings.Contains(got.Unknown, "ambiguous") {
		t.Fatalf("want an ambiguous, unknown caller, got %+v", got)
	}
}

// TestSearchReportsWhyNamespacesCannotBeEntered: when no namespace answers
// and one could not be entered, the reason says so.
func TestSearchReportsWhyNamespacesCannotBeEntered(t *testing.T) {
	self, err := threadNetNS()
	if err != nil {
		testenv.Skipf(t, "%v", err)
	}
	cands := []nsCandidate{{ino: 1, path: "/proc/self/status"}} // not a namespace
	_, _, err = searchIn(cands, self.dev, netip.MustParseAddrPort("198.51.100.2:1000"), netip.MustParseAddrPort("169.254.169.254:80"))
	t.Logf("searchIn: %v", err)
	if err == nil || !strings.Contains(err.Error(), "looking into network namespaces failed") {
		t.Fatalf("searchIn = %v", err)
	}
}

// TestIdentifyContainerConcurrent runs container and host lookups at once,
// then checks that no thread of the process stayed in another namespace.
func TestIdentifyContainerConcurrent(t *testing.T) {
	netnstest.RequireRoot(t)
	e := newContainerEnv(t)
	var pairs []connPid
	for range 4 {
		cl := startClient(t, e.ctr, nobody, "dial", "169.254.169.254:80")
		pairs = append(pairs, connPid{accept(t, e.l), cl.Pid()})
	}
	hammer(t, e.r, pairs, func() { e.r.nsBySrc.drop(netip.MustParseAddr("198.51.100.2")) })
	checkThreadsAtHome(t)
}

// checkThreadsAtHome fails if a thread of this process is in a network
// namespace other than the main thread's.
func checkThreadsAtHome(t *testing.T) {
	t.Helper()
	var home syscall.Stat_t
	if err := syscall.Stat("/proc/self/ns/net", &home); err != nil {
		t.Fatal(err)
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		var st syscall.Stat_t
		if err := syscall.Stat("/proc/self/task/"+task.Name()+"/ns/net", &st); err == nil && st.Ino != home.Ino {
			t.Errorf("thread %s is in network namespace %d, not %d", task.Name(), st.Ino, home.Ino)
		}
	}
}

type connPid struct {
	conn *net.TCPConn
	pid  int
}

// hammer identifies the connections from 8 goroutines at once, calling
// every now and then (nil: never) between lookups.
func hammer(t *testing.T, r *Resolver, pairs []connPid, every func()) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				p := pairs[(g+i)%len(pairs)]
				if every != nil && i%5 == 0 {
					every()
				}
				if c := r.Identify(p.conn); c.PID != p.pid || c.UID != 65534 {
					errs <- fmt.Sprintf("caller %+v, want pid %d", c, p.pid)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for s := range errs {
		t.Error(s)
	}
}
