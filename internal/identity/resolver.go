package identity

import (
	"log/slog"
	"net"
	"net/netip"

	"github.com/imdsguard/imdsguard/internal/imds"
)

// Options configure a Resolver.
type Options struct {
	Log *slog.Logger // nil: discard
	// InterfaceFor names the container interface a container caller at
	// the given (source) address came in through: every container lands on
	// the same address, so the redirect package asks the host's route back
	// to the caller; nil = unknown.
	InterfaceFor func(netip.Addr) string
	// IMDS are the metadata addresses; empty means imds.Addrs().
	IMDS []netip.Addr
}

func (o Options) logger() *slog.Logger {
	if o.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Log
}

func (o Options) imds() []netip.Addr {
	if len(o.IMDS) == 0 {
		return imds.Addrs()
	}
	return o.IMDS
}

// classify decides the caller class from where a connection landed and where
// it was going. nat OUTPUT REDIRECT lands a local process's connection on
// loopback; PREROUTING DNAT lands a container's on a landing address (on
// lo, but not a loopback address). So: a connection to a metadata address
// that landed on a non-loopback address came through PREROUTING
// (Container); anything else is a host process, redirected or calling the
// proxy directly.
func classify(local, origDst netip.AddrPort, imds []netip.Addr) Class {
	if !origDst.IsValid() || local.Addr().Unmap().IsLoopback() {
		return Host
	}
	for _, a := range imds {
		if origDst.Addr().Unmap() == a.Unmap() {
			return Container
		}
	}
	return Host
}

// addrPortOf converts the net.Addr of a TCP connection; zero for anything else.
func addrPortOf(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.AddrPort()
	}
	return netip.AddrPort{}
}

// unmap turns an IPv4-mapped IPv6 address (an IPv4 client of a dual-stack
// listener) into the IPv4 address it is.
func unmap(a netip.AddrPort) netip.AddrPort {
	if !a.IsValid() {
		return a
	}
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}
