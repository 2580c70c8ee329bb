package check

import (
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// setMinTTL makes conn's kernel drop received packets whose IP TTL (IPv6
// hop limit) is below n.
func setMinTTL(conn net.Conn, n int) error {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return fmt.Errorf("set min ttl: %T has no socket", conn)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return fmt.Errorf("set min ttl: %w", err)
	}
	level, opt := unix.IPPROTO_IP, unix.IP_MINTTL
	if a, ok := conn.RemoteAddr().(*net.TCPAddr); ok && a.IP.To4() == nil {
		level, opt = unix.IPPROTO_IPV6, unix.IPV6_MINHOPCOUNT
	}
	var serr error
	if err := raw.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), level, opt, n) }); err != nil {
		return fmt.Errorf("set min ttl %d: %w", n, err)
	}
	if serr != nil {
		return fmt.Errorf("set min ttl %d: %w", n, serr)
	}
	return nil
}
