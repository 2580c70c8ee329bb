package upstream

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// markControl sets SO_MARK on upstream sockets so that the redirect rules
// (which skip packets with the daemon's mark) do not send them back to the
// proxy. Setting a mark needs CAP_NET_ADMIN; without it the dial fails
// rather than loop.
func markControl(mark uint32) func(network, address string, c syscall.RawConn) error {
	if mark == 0 {
		return nil
	}
	return func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(mark))
		})
		if err == nil {
			err = serr
		}
		if err != nil {
			return fmt.Errorf("set SO_MARK %#x on upstream socket: %w", mark, err)
		}
		return nil
	}
}
