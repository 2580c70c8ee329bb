package identity

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// OriginalDst reads SO_ORIGINAL_DST (SOL_IP / SOL_IPV6, option 80) from an
// accepted connection: where the client was going before the nat REDIRECT.
// ok is false (and err nil) when the connection was not NAT'd: conntrack has
// no entry for it, or the entry's original destination is where it landed.
func OriginalDst(c *net.TCPConn) (dst netip.AddrPort, ok bool, err error) {
	local := addrPortOf(c.LocalAddr())
	level, size := unix.SOL_IP, unix.SizeofSockaddrInet4
	if local.Addr().Is6() && !local.Addr().Is4In6() {
		level, size = unix.SOL_IPV6, unix.SizeofSockaddrInet6
	}
	raw, err := c.SyscallConn()
	if err != nil {
		return netip.AddrPort{}, false, fmt.Errorf("read original destination of %s: %w", local, err)
	}
	var (
		buf  [unix.SizeofSockaddrInet6]byte
		n    int
		serr error
	)
	if err := raw.Control(func(fd uintptr) { n, serr = getsockopt(int(fd), level, soOriginalDst, buf[:size]) }); err != nil {
		return netip.AddrPort{}, false, fmt.Errorf("read original destination of %s: %w", local, err)
	}
	switch {
	case errors.Is(serr, unix.ENOENT), errors.Is(serr, unix.ENOPROTOOPT):
		return netip.AddrPort{}, false, nil // no conntrack entry, or no conntrack at all
	case serr != nil:
		return netip.AddrPort{}, false, fmt.Errorf("read original destination of %s: getsockopt SO_ORIGINAL_DST: %w", local, serr)
	}
	if dst, err = parseSockaddr(buf[:n]); err != nil {
		return netip.AddrPort{}, false, fmt.Errorf("read original destination of %s: %w", local, err)
	}
	if sameAddrPort(dst, local) {
		return netip.AddrPort{}, false, nil // tracked but not NAT'd
	}
	return dst, true, nil
}

// getsockopt is getsockopt(2) into b; x/sys/unix has no variant for an
// arbitrary struct. It returns the length the kernel wrote.
func getsockopt(fd, level, opt int, b []byte) (int, error) {
	l := uint32(len(b))
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt),
		uintptr(unsafe.Pointer(&b[0])), uintptr(unsafe.Pointer(&l)), 0)
	if e != 0 {
		return 0, e
	}
	return int(l), nil
}
