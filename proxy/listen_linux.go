package proxy

import (
	"errors"
	"syscall"
)

// noIPv6 reports whether a listen error means the host has no IPv6 (or not
// that address).
func noIPv6(err error) bool {
	return errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EAFNOSUPPORT)
}
