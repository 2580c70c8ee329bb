package handover

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Lock is the right to keep the redirect rules of this network namespace:
// an exclusive flock on the run directory's rules.lock, which the kernel
// drops when its holder exits, however it exits. Two daemons on one node
// (the two pods of a surge rollout, a unit and a pod) thus never both
// restore rules, and never fight over them.
type Lock struct {
	f *os.File
}

// TryLock takes the lock at path if nobody holds it: (nil, nil) when
// another process does.
func TryLock(path string) (*Lock, error) {
	f, err := openLock(path)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, nil
		}
		return nil, fmt.Errorf("rules lock %s: %w", path, err)
	}
	return &Lock{f: f}, nil
}

// WaitLock takes the lock at path once its holder lets go, trying every
// poll until ctx ends.
func WaitLock(ctx context.Context, path string, poll time.Duration) (*Lock, error) {
	for {
		l, err := TryLock(path)
		if l != nil || err != nil {
			return l, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(poll):
		}
	}
}

// Holder is the pid of the process holding the lock at path, 0 when nobody
// does (or the kernel does not say).
func Holder(path string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	// fcntl's F_GETLK does not see flocks; /proc/locks does.
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return 0
	}
	return flockHolder(st.Ino)
}

// Release lets the lock go.
func (l *Lock) Release() {
	if l != nil && l.f != nil {
		l.f.Close() // closing the only descriptor drops the flock
		l.f = nil
	}
}

func openLock(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("rules lock directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("rules lock: %w", err)
	}
	return f, nil
}

// flockHolder reads /proc/locks for the FLOCK on inode ino ("1: FLOCK
// ADVISORY WRITE PID MAJ:MIN:INODE 0 EOF").
func flockHolder(ino uint64) int {
	data, err := os.ReadFile("/proc/locks")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(data)) {
		f := strings.Fields(line)
		if len(f) < 6 || f[1] != "FLOCK" {
			continue
		}
		dev := strings.Split(f[5], ":")
		if len(dev) != 3 || dev[2] != strconv.FormatUint(ino, 10) {
			continue
		}
		if pid, err := strconv.Atoi(f[4]); err == nil {
			return pid
		}
	}
	return 0
}
