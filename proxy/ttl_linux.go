package proxy

import (
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// setTTL sets the IP TTL (IPv4) or unicast hop limit (IPv6) of the
// connection's outgoing packets; hop -1 restores the system default.
func (cs *connState) setTTL(hop int) error {
	sc, ok := cs.conn.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return fmt.Errorf("set ttl: %w", err)
	}
	level, opt := unix.IPPROTO_IP, unix.IP_TTL
	if a, ok := cs.conn.LocalAddr().(*net.TCPAddr); ok && a.IP.To4() == nil {
		level, opt = unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS
	}
	var serr error
	if err := raw.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), level, opt, hop) }); err != nil {
		return fmt.Errorf("set ttl: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("set ttl %d: %w", hop, serr)
	}
	cs.ttlSet = hop != -1
	return nil
}

// resetTTL undoes a token answer's TTL before the connection's next answer
// (the previous one has been flushed by then: HTTP/1.1 answers in order).
func (cs *connState) resetTTL() error {
	if !cs.ttlSet {
		return nil
	}
	return cs.setTTL(-1)
}
