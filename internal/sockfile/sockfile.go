// Package sockfile makes the Unix socket files a daemon serves on (the
// admin socket, the handover socket) so that two daemons can take turns at
// one path: a successor replaces the file, and a predecessor that closes
// afterwards removes it only while it is still its own.
package sockfile

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
)

// Listener is a listening Unix socket at a path.
type Listener struct {
	*net.UnixListener
	path string
	info os.FileInfo
}

// Listen makes the socket file at path with mode (its directory 0700),
// replacing whatever socket was there: a stale one, or a running
// predecessor's, whose listener stays open but is no longer found by path.
func Listen(path string, mode os.FileMode) (*Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("socket directory: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove the old socket: %w", err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, err
	}
	ln.SetUnlinkOnClose(false) // Close removes the file only while it is ours
	info, err := os.Stat(path)
	if err == nil {
		err = os.Chmod(path, mode)
	}
	if err != nil {
		ln.Close()
		return nil, err
	}
	return &Listener{UnixListener: ln, path: path, info: info}, nil
}

// Close closes the listener and removes the socket file if it is still the
// one Listen made.
func (l *Listener) Close() error {
	err := l.UnixListener.Close()
	if now, serr := os.Stat(l.path); serr == nil && os.SameFile(now, l.info) {
		os.Remove(l.path)
	}
	return err
}
