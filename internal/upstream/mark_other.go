//go:build !linux

package upstream

import (
	"errors"
	"syscall"
)

func markControl(mark uint32) func(network, address string, c syscall.RawConn) error {
	if mark == 0 {
		return nil
	}
	return func(string, string, syscall.RawConn) error {
		return errors.New("firewall marks need Linux")
	}
}
