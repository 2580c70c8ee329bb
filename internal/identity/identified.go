package identity

import "net"

// Identified returns c carrying cl, its caller, identified before c was
// handed to the proxy (proxy.AdmitLocalRedirect identifies to decide
// whether to admit at all). Resolver.Identify returns cl for it without
// asking the kernel again: a connection is still identified once. The
// result is a *net.TCPConn underneath, so socket options (the token
// answers' TTL) still reach the socket.
func Identified(c *net.TCPConn, cl Caller) net.Conn {
	return &identifiedConn{TCPConn: c, caller: cl}
}

type identifiedConn struct {
	*net.TCPConn
	caller Caller
}
