//go:build !linux

package check

import (
	"errors"
	"net"
)

func setMinTTL(net.Conn, int) error {
	return errors.New("set min ttl: only on Linux")
}
