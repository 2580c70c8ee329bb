// Package handover is what two imdsguard daemons on one node share while one
// replaces the other (a DaemonSet's surge rollout, a second daemon started
// by hand): the listening sockets, passed from the running daemon to its
// successor, and the right to keep the redirect rules, a lock only one of
// them holds.
//
// The sockets are passed, not bound twice: the successor receives the very
// listening sockets (SCM_RIGHTS over a Unix socket in the run directory)
// and accepts from the same queues while its predecessor stops accepting.
// A listening socket is never closed on the way, so no connection that
// reached it is reset and no new one is refused. (Two sockets bound with
// SO_REUSEPORT would need the kernel's net.ipv4.tcp_migrate_req to move
// the queue of the one that closes; a DaemonSet pod cannot set it.)
//
// The exchange, on a Unix stream socket that only root (or the daemon's own
// user) may use:
//
//	successor → "imdsguard-handover 1\n"
//	holder    → one message: JSON {"pid": P, "listeners": ["proxy tcp 127.0.0.1:8989", ...]}
//	            with the listeners' descriptors, in that order
//	successor → "ok\n"  (it has made listeners of them)
//
// Only on "ok" does the holder stop accepting: a successor that dies
// before it takes nothing away.
package handover

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/imdsguard/imdsguard/internal/sockfile"
)

// File names in the run directory (the admin socket's directory,
// /run/imdsguard by default).
const (
	SocketName = "handover.sock"
	LockName   = "rules.lock"
)

const (
	hello   = "imdsguard-handover 1\n"
	ok      = "ok\n"
	maxFDs  = 64
	timeout = 2 * time.Second
)

// Listener is a listening socket with the name it is known by: its role and
// address, such as "proxy tcp 127.0.0.1:8989". A successor uses the
// listeners whose names it would have bound itself.
type Listener struct {
	Name string
	net.Listener
}

// NameOf is the name of a listener with the given role.
func NameOf(role string, ln net.Listener) string {
	return role + " " + ln.Addr().Network() + " " + ln.Addr().String()
}

type offer struct {
	PID       int      `json:"pid"`
	Listeners []string `json:"listeners"`
}

// Take asks the daemon serving the handover socket at path for its
// listeners. It returns (nil, 0, nil) when no daemon listens there (no
// socket, or a stale one): the caller binds its own. On success the holder
// has stopped accepting, or is about to; its pid is returned.
func Take(path string) ([]Listener, int, error) {
	c, err := net.DialTimeout("unix", path, timeout)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ECONNREFUSED) || errors.Is(err, unix.ENOENT) {
			return nil, 0, nil
		}
		return nil, 0, fmt.Errorf("handover socket %s: %w", path, err)
	}
	uc := c.(*net.UnixConn)
	defer uc.Close()
	uc.SetDeadline(time.Now().Add(timeout))
	if err := peerAllowed(uc); err != nil {
		return nil, 0, fmt.Errorf("handover socket %s: %w", path, err)
	}
	if _, err := io.WriteString(uc, hello); err != nil {
		return nil, 0, fmt.Errorf("handover: %w", err)
	}
	buf := make([]byte, 64*1024)
	oob := make([]byte, unix.CmsgSpace(maxFDs*4))
	n, oobn, _, _, err := uc.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, 0, fmt.Errorf("handover: reading the offer: %w", err)
	}
	fds, err := parseRights(oob[:oobn])
	if err != nil {
		return nil, 0, fmt.Errorf("handover: %w", err)
	}
	files := make([]*os.File, len(fds))
	for i, fd := range fds {
		files[i] = os.NewFile(uintptr(fd), fmt.Sprintf("handover-%d", i))
	}
	defer func() {
		for _, f := range files {
			f.Close() // net.FileListener made its own copy
		}
	}()
	var o offer
	if err := json.Unmarshal(buf[:n], &o); err != nil {
		return nil, 0, fmt.Errorf("handover: the offer: %w", err)
	}
	if len(o.Listeners) != len(files) {
		return nil, 0, fmt.Errorf("handover: the offer names %d listeners and carries %d descriptors", len(o.Listeners), len(files))
	}
	lns := make([]Listener, 0, len(files))
	for i, f := range files {
		ln, err := net.FileListener(f)
		if err != nil {
			closeAll(lns)
			return nil, 0, fmt.Errorf("handover: listener %s: %w", o.Listeners[i], err)
		}
		lns = append(lns, Listener{Name: o.Listeners[i], Listener: ln})
	}
	if _, err := io.WriteString(uc, ok); err != nil {
		closeAll(lns)
		return nil, 0, fmt.Errorf("handover: %w", err)
	}
	return lns, o.PID, nil
}

func closeAll(lns []Listener) {
	for _, l := range lns {
		l.Close()
	}
}

func parseRights(oob []byte) ([]int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("control message: %w", err)
	}
	var fds []int
	for _, m := range msgs {
		got, err := unix.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		fds = append(fds, got...)
	}
	return fds, nil
}

// Server answers successors on the handover socket.
type Server struct {
	ln  *sockfile.Listener
	log *slog.Logger
}

// Listen makes the handover socket at path (0600), replacing a stale one
// or a predecessor's.
func Listen(path string, log *slog.Logger) (*Server, error) {
	ln, err := sockfile.Listen(path, 0o600)
	if err != nil {
		return nil, fmt.Errorf("handover socket: %w", err)
	}
	return &Server{ln: ln, log: log}, nil
}

// Serve answers successors until ctx ends or one has taken the listeners:
// it offers the listeners lns() gives and, once the successor says it has
// them, calls gave with its pid and returns true. A successor that fails
// on the way takes nothing, and Serve goes on.
func (s *Server) Serve(ctx context.Context, lns func() []Listener, gave func(pid int)) bool {
	defer s.ln.Close()
	go func() {
		<-ctx.Done()
		s.ln.Close()
	}()
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("handover socket stopped", "err", err)
			}
			return false
		}
		pid, err := offerTo(c, lns())
		c.Close()
		if err != nil {
			s.log.Warn("handover refused or failed; still serving", "err", err)
			continue
		}
		gave(pid)
		return true
	}
}

func offerTo(c *net.UnixConn, lns []Listener) (int, error) {
	c.SetDeadline(time.Now().Add(timeout))
	if err := peerAllowed(c); err != nil {
		return 0, err
	}
	pid, _ := peerPID(c)
	line, err := bufio.NewReader(io.LimitReader(c, 64)).ReadString('\n')
	if err != nil || line != hello {
		return 0, fmt.Errorf("pid %d: not a handover request (%q)", pid, strings.TrimSpace(line))
	}
	o := offer{PID: os.Getpid()}
	var fds []int
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for _, l := range lns {
		f, err := fileOf(l.Listener)
		if err != nil {
			return 0, fmt.Errorf("listener %s: %w", l.Name, err)
		}
		files = append(files, f)
		fds = append(fds, int(f.Fd()))
		o.Listeners = append(o.Listeners, l.Name)
	}
	if len(fds) > maxFDs {
		return 0, fmt.Errorf("%d listeners: more than %d", len(fds), maxFDs)
	}
	msg, err := json.Marshal(o)
	if err != nil {
		return 0, err
	}
	if _, _, err := c.WriteMsgUnix(msg, unix.UnixRights(fds...), nil); err != nil {
		return 0, fmt.Errorf("pid %d: sending the listeners: %w", pid, err)
	}
	ack := make([]byte, len(ok))
	if _, err := io.ReadFull(c, ack); err != nil || string(ack) != ok {
		return 0, fmt.Errorf("pid %d did not take the listeners (%v)", pid, err)
	}
	return pid, nil
}

// fileOf is a duplicate of a listener's descriptor.
func fileOf(ln net.Listener) (*os.File, error) {
	f, ok := ln.(interface{ File() (*os.File, error) })
	if !ok {
		return nil, fmt.Errorf("%T cannot be passed on", ln)
	}
	return f.File()
}

// peerAllowed admits root and the daemon's own user only.
func peerAllowed(c *net.UnixConn) error {
	cred, err := ucred(c)
	if err != nil {
		return err
	}
	if cred.Uid != 0 && int(cred.Uid) != os.Geteuid() {
		return fmt.Errorf("peer pid %d runs as uid %d: only root may take part in a handover", cred.Pid, cred.Uid)
	}
	return nil
}

func peerPID(c *net.UnixConn) (int, error) {
	cred, err := ucred(c)
	if err != nil {
		return 0, err
	}
	return int(cred.Pid), nil
}

func ucred(c *net.UnixConn) (*unix.Ucred, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var serr error
	if err := raw.Control(func(fd uintptr) { cred, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) }); err != nil {
		return nil, err
	}
	return cred, serr
}
