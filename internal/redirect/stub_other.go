//go:build !linux

package redirect

import (
	"errors"
	"fmt"
	"log/slog"
)

// errNotLinux: netfilter and netlink exist only on Linux. The pure parts of
// the package (configuration, rule builders, status) build everywhere.
var errNotLinux = errors.New("redirect: netfilter rules need Linux")

func openBackend(string, Config, *slog.Logger) (string, []familyRunner, error) {
	return "", nil, errNotLinux
}

func netlinkLinks(bool) (linkWatch, error) {
	return nil, fmt.Errorf("container interfaces: %w", errNotLinux)
}

// netlinkLo is the stand-in loAddrs: every call fails.
type netlinkLo struct{}

func (netlinkLo) List() ([]loAddr, error) { return nil, errNotLinux }
func (netlinkLo) Add(loAddr) error        { return errNotLinux }
func (netlinkLo) Del(loAddr) error        { return errNotLinux }

func openNetlinkRouter() (router, error) { return nil, errNotLinux }

func netlinkConntrack(family) (uint, error) { return 0, errNotLinux }
