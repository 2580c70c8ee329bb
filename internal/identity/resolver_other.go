//go:build !linux

package identity

import (
	"net"
	"net/netip"
)

// notLinux is why no identity is known on other systems: the kernel
// interfaces this package reads (conntrack, inet_diag, /proc) are Linux's.
const notLinux = "not Linux"

// OriginalDst always reports "not redirected" off Linux.
func OriginalDst(c *net.TCPConn) (dst netip.AddrPort, ok bool, err error) {
	return netip.AddrPort{}, false, nil
}

// Resolver identifies nobody off Linux.
type Resolver struct{}

// NewResolver makes a Resolver that identifies nobody.
func NewResolver(o Options) *Resolver { return &Resolver{} }

// Close does nothing.
func (r *Resolver) Close() error { return nil }

// Identify fills in the addresses and leaves the identity unknown.
func (r *Resolver) Identify(c net.Conn) Caller {
	if ic, ok := c.(*identifiedConn); ok {
		return ic.caller
	}
	return Caller{
		Remote:  unmap(addrPortOf(c.RemoteAddr())),
		Local:   unmap(addrPortOf(c.LocalAddr())),
		Unknown: notLinux,
	}
}

// IdentifyLocalRedirect fills in the addresses and leaves the identity
// unknown: no local redirect caller is admitted off Linux.
func (r *Resolver) IdentifyLocalRedirect(c net.Conn) Caller {
	cl := r.Identify(c)
	cl.Class, cl.LocalRedirect = Container, true
	return cl
}
