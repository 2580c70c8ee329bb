package proxy

import (
	"log/slog"
	"net"
	"net/netip"

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
