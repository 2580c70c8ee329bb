package redirect

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/internal/netnstest"
	"github.com/imdsguard/imdsguard/internal/testenv"
	"github.com/vishvananda/netns"
)

// Helpers of the privileged tests. Everything they do happens inside
// network namespaces the test made: rules are installed only from
// netnstest.Do, commands run through `ip netns exec`, and a connection to
// the metadata addresses is made only on a thread that is verifiably not in
// the process's own namespace (dialIn checks).

var backends = []string{"nft", "legacy"}

// requireBackend skips unless root and the backend's tools are installed.
func requireBackend(t *testing.T, backend string) {
	t.Helper()
	netnstest.RequireRoot(t)
	for _, tool := range []string{"iptables", "ip6tables"} {
		name := tool + "-" + backend
		if _, err := findTool(name); err != nil {
			testenv.Skipf(t, "needs %s (apt-get install iptables): %v", name, err)
		}
	}
}

// in runs f inside ns and fails the test on error.
func in(t *testing.T, ns string, f func() error) {
	t.Helper()
	if err := netnstest.Do(ns, f); err != nil {
		t.Fatalf("in netns %s: %v", ns, err)
	}
}

// testLog returns a logger writing to the test log and to buf.
func testLog(t *testing.T, buf *syncBuffer) *slog.Logger {
	w := io.MultiWriter(buf, tWriter{t})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// newRulesIn makes Rules inside ns (backend detection, if asked, runs there).
func newRulesIn(t *testing.T, ns string, o Options) *Rules {
	t.Helper()
	var r *Rules
	in(t, ns, func() (err error) {
		r, err = New(o)
		return err
	})
	t.Cleanup(r.Close)
	return r
}

// ipt runs an iptables tool of backend inside ns, e.g. ipt(t, ns, "ip6tables-nft", "-t", "nat", "-F").
func ipt(t *testing.T, ns, tool string, args ...string) string {
	t.Helper()
	return netnstest.Run(t, "ip", append([]string{"netns", "exec", ns, tool}, args...)...)
}

// saveAll is iptables-save and ip6tables-save of backend in ns, without the
// "# Generated"/"# Completed" lines (they carry the time).
func saveAll(t *testing.T, ns, backend string) string {
	t.Helper()
	var b strings.Builder
	for _, tool := range []string{"iptables-" + backend + "-save", "ip6tables-" + backend + "-save"} {
		fmt.Fprintf(&b, "## %s\n", tool)
		for _, l := range strings.Split(ipt(t, ns, tool), "\n") {
			if strings.HasPrefix(l, "# Generated") || strings.HasPrefix(l, "# Completed") || l == "" {
				continue
			}
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func otherBackend(b string) string {
	if b == "nft" {
		return "legacy"
	}
	return "nft"
}

// server is a tiny HTTP server in a namespace that answers "NAME LOCALADDR"
// and counts requests.
type server struct {
	name string
	hits atomic.Int64
	srv  *http.Server
	lns  []net.Listener
}

// serve starts a server named name in ns on every address given ("tcp4",
// "0.0.0.0:8989" pairs as "tcp4 0.0.0.0:8989").
func serve(t *testing.T, ns, name string, addrs ...string) *server {
	t.Helper()
	s := &server{name: name}
	s.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.hits.Add(1)
			fmt.Fprintf(w, "%s %s", name, r.Context().Value(http.LocalAddrContextKey))
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	in(t, ns, func() error {
		for _, a := range addrs {
			network, addr, _ := strings.Cut(a, " ")
			ln, err := net.Listen(network, addr)
			if err != nil {
				return err
			}
			s.lns = append(s.lns, ln)
		}
		return nil
	})
	for _, ln := range s.lns {
		go func() { _ = s.srv.Serve(ln) }()
	}
	t.Cleanup(s.stop)
	return s
}

// stop closes the listeners: afterwards nothing listens on their ports.
func (s *server) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
}

// dialIn connects from ns to addr (host:port), with the socket mark set
// when mark is not 0. It refuses to dial from the process's own network
// namespace: a test must never reach a real metadata service.
func dialIn(ns, addr string, mark uint32, timeout time.Duration) (net.Conn, error) {
	var conn net.Conn
	err := netnstest.Do(ns, func() error {
		if err := notOwnNetns(); err != nil {
			return err
		}
		d := net.Dialer{Timeout: timeout}
		if mark != 0 {
			d.Control = func(_, _ string, c syscall.RawConn) error {
				var serr error
				err := c.Control(func(fd uintptr) {
					serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_MARK, int(mark))
				})
				return errors.Join(err, serr)
			}
		}
		var err error
		conn, err = d.Dial("tcp", addr)
		return err
	})
	return conn, err
}

// hostNetns is the network namespace the test process started in (the
// machine's), opened by TestMain before any test switches a thread.
var hostNetns netns.NsHandle = -1

// notOwnNetns fails when the calling thread is in the namespace the process
// started in (the machine's, for these tests), or when that is unknown.
func notOwnNetns() error {
	if !hostNetns.IsOpen() {
		return errors.New("refusing to dial: the process's own namespace is unknown")
	}
	cur, err := netns.Get()
	if err != nil {
		return err
	}
	defer cur.Close()
	if cur.Equal(hostNetns) {
		return errors.New("refusing to dial from the process's own network namespace")
	}
	return nil
}

// get does GET / from ns to addr and returns the body ("NAME LOCALADDR").
func get(ns, addr string, mark uint32) (string, error) {
	conn, err := dialIn(ns, addr, mark, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(conn, "GET / HTTP/1.0\r\nHost: imds\r\n\r\n"); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

// wantBody fails unless a GET from ns to addr answers with a body starting
// with prefix.
func wantBody(t *testing.T, ns, addr string, mark uint32, prefix string) string {
	t.Helper()
	body, err := get(ns, addr, mark)
	if err != nil {
		t.Fatalf("GET %s from %s (mark %#x): %v", addr, ns, mark, err)
	}
	if !strings.HasPrefix(body, prefix) {
		t.Fatalf("GET %s from %s (mark %#x) answered %q, want %q...", addr, ns, mark, body, prefix)
	}
	t.Logf("GET %s from %s (mark %#x): %q", addr, ns, mark, body)
	return body
}

// wantRefused fails unless connecting from ns to addr is refused (RST).
func wantRefused(t *testing.T, ns, addr string) {
	t.Helper()
	conn, err := dialIn(ns, addr, 0, 2*time.Second)
	if err == nil {
		conn.Close()
		t.Fatalf("connect %s from %s: connected, want refused", addr, ns)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("connect %s from %s: %v, want connection refused", addr, ns, err)
	}
	t.Logf("connect %s from %s: %v (as wanted)", addr, ns, err)
}

// wantSilence fails unless connecting from ns to addr gets no answer at all.
func wantSilence(t *testing.T, ns, addr string) {
	t.Helper()
	conn, err := dialIn(ns, addr, 0, time.Second)
	if err == nil {
		conn.Close()
		t.Fatalf("connect %s from %s: connected, want no answer", addr, ns)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("connect %s from %s: %v, want a timeout (no answer)", addr, ns, err)
	}
	t.Logf("connect %s from %s: %v (no answer, as wanted)", addr, ns, err)
}

// counters returns iptables -L CHAIN -v -n -x of table in ns.
func counters(t *testing.T, ns, tool, table, chain string) string {
	t.Helper()
	return ipt(t, ns, tool, "-t", table, "-L", chain, "-v", "-n", "-x")
}

// sysctl sets a sysctl inside ns.
func sysctl(t *testing.T, ns, key, value string) {
	t.Helper()
	netnstest.Run(t, "ip", "netns", "exec", ns, "sysctl", "-qw", key+"="+value)
}

// rootHasImdsguard reports whether the machine's own namespace holds
// imdsguard chains in any backend (reads only: the save tools create no
// table). TestMain checks it before and after the tests.
func rootHasImdsguard() (string, bool) {
	var found []string
	for _, tool := range []string{"iptables-nft-save", "ip6tables-nft-save", "iptables-legacy-save", "ip6tables-legacy-save"} {
		path, err := findTool(tool)
		if err != nil {
			continue
		}
		out, _ := exec.Command(path).Output()
		if strings.Contains(string(out), "IMDSGUARD") {
			found = append(found, tool)
		}
	}
	return strings.Join(found, ", "), len(found) > 0
}
