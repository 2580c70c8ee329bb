package proxy

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"

	"github.com/imdsguard/imdsguard/internal/identity"
	"github.com/imdsguard/imdsguard/internal/imds"
)

// Admit wraps ln so that it hands out only connections from local callers
// (loopback, or the host calling one of its own addresses) and metadata
// traffic that the redirect rules sent here (original destination IMDS:80):
// REDIRECTed to loopback from OUTPUT, or DNATed from PREROUTING to a
// landing address on lo, which any pod could otherwise dial directly.
// Anything else is closed at once. The IMDSGUARD-IN chain already drops
// such packets; this is the second line, for a host whose rules someone
// else rewrote.
func Admit(ln net.Listener, log *slog.Logger) net.Listener {
	return &admitListener{Listener: ln, log: log}
}

type admitListener struct {
	net.Listener
	log *slog.Logger
}

func (l *admitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if why := refusal(c); why != "" {
			l.log.Warn("connection refused", "remote", c.RemoteAddr().String(), "local", c.LocalAddr().String(), "why", why)
			c.Close()
			continue
		}
		return c, nil
	}
}

// refusal says why c may not talk to the proxy, "" when it may.
func refusal(c net.Conn) string {
	remote, local := tcpAddr(c.RemoteAddr()), tcpAddr(c.LocalAddr())
	if remote.IsLoopback() || remote == local {
		return ""
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return "not a TCP connection"
	}
	dst, redirected, err := identity.OriginalDst(tc)
	switch {
	case err != nil:
		return "original destination unknown: " + err.Error()
	case !redirected:
		return "not redirected metadata traffic: the proxy port serves local callers only"
	case dst.Port() != imds.Port || !imds.IsAddr(dst.Addr()):
		return "redirected traffic for " + dst.String() + ", not the metadata service"
	}
	return ""
}

func tcpAddr(a net.Addr) netip.Addr {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// AdmitLocalRedirect wraps ln, the local redirect listener
// (listen.local_redirect_port), so that it hands out only connections from
// a container's network namespace: what a Cilium Local Redirect Policy
// sends there, a pod's connect() to the metadata address rewritten in BPF
// to this node's address and that port, with no NAT for Admit to read.
// identify (identity.Resolver.IdentifyLocalRedirect) must establish the
// caller: a source the host routes through a container interface, whose
// socket is found, exactly, in another network namespace. Anything else
// (the host itself, the network, a caller that cannot be identified) is
// logged and closed. An admitted connection carries its caller
// (identity.Identified), so the proxy treats it exactly as a redirected
// container caller and does not look it up again.
//
// Identifying means looking into network namespaces, which may take a
// while for a new pod: each connection is admitted on a goroutine of its
// own (the resolver bounds how many look at once), so that one caller's
// lookup never holds up the next caller's accept.
func AdmitLocalRedirect(ln net.Listener, identify func(net.Conn) identity.Caller, log *slog.Logger) net.Listener {
	l := &lrpListener{Listener: ln, identify: identify, log: log, out: make(chan accepted), done: make(chan struct{})}
	go l.acceptLoop()
	return l
}

type lrpListener struct {
	net.Listener
	identify  func(net.Conn) identity.Caller
	log       *slog.Logger
	out       chan accepted // admitted connections and the inner listener's errors, to Accept
	done      chan struct{} // closed by Close
	closeOnce sync.Once
}

type accepted struct {
	c   net.Conn
	err error
}

func (l *lrpListener) Accept() (net.Conn, error) {
	select {
	case a := <-l.out:
		return a.c, a.err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *lrpListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// acceptLoop accepts until the listener is closed; an error is handed to
// Accept (http.Server retries a temporary one).
func (l *lrpListener) acceptLoop() {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if !l.deliver(accepted{err: err}) || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		go l.admit(c)
	}
}

// admit identifies c's caller and hands c, carrying it, to Accept; or
// logs why not and closes c.
func (l *lrpListener) admit(c net.Conn) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		l.refuse(c, "not a TCP connection")
		return
	}
	id := l.identify(c)
	if why := localRedirectRefusal(&id); why != "" {
		l.refuse(c, why)
		return
	}
	l.deliver(accepted{c: identity.Identified(tc, id)})
}

func (l *lrpListener) refuse(c net.Conn, why string) {
	l.log.Warn("connection refused", "listener", "local_redirect", "remote", c.RemoteAddr().String(), "local", c.LocalAddr().String(), "why", why)
	c.Close()
}

// deliver hands a to Accept; false (and the connection closed) once the
// listener is closed.
func (l *lrpListener) deliver(a accepted) bool {
	select {
	case l.out <- a:
		return true
	case <-l.done:
		if a.c != nil {
			a.c.Close()
		}
		return false
	}
}

// localRedirectRefusal says why the local redirect listener may not serve
// the caller id, "" when it may: a container caller, behind a container
// interface, found in its own network namespace.
func localRedirectRefusal(id *identity.Caller) string {
	switch {
	case id.Interface == "":
		return "not from a container: " + orUnknown(id.Unknown, "no container interface routes its source")
	case id.Unknown != "":
		return "no container's socket: " + id.Unknown
	case id.Class != identity.Container || id.NetNS == 0:
		return "not identified in a container's network namespace"
	}
	return ""
}

func orUnknown(s, otherwise string) string {
	if s == "" {
		return otherwise
	}
	return s
}
