//go:build linux

package main

import (
	"fmt"
	"net"
	"runtime"
	"syscall"
	"time"
)

// serveEpoll starts loops event loops sharing ln's socket: each waits in
// epoll_wait on a locked OS thread, accepts what it is woken for
// (EPOLLEXCLUSIVE wakes one loop per connection) and serves its
// connections with non-blocking reads and writes, spending work on each
// request before its answer. ln stays open for its file descriptor;
// closing it ends the accepts.
func serveEpoll(ln net.Listener, loops int, work time.Duration) error {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return fmt.Errorf("-mode epoll needs a TCP listener, not %T", ln)
	}
	rc, err := tl.SyscallConn()
	if err != nil {
		return err
	}
	var lfd int
	if err := rc.Control(func(fd uintptr) { lfd = int(fd) }); err != nil {
		return err
	}
	for range loops {
		ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			return fmt.Errorf("epoll_create1: %w", err)
		}
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | epollExclusive, Fd: int32(lfd)}
		if err := syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, lfd, &ev); err != nil {
			return fmt.Errorf("epoll_ctl on the listener: %w", err)
		}
		go loop(ep, lfd, work)
	}
	return nil
}

// epollExclusive is EPOLLEXCLUSIVE, which package syscall lacks.
const epollExclusive = 1 << 28

// loop is one event loop: it accepts on lfd and answers the heads its
// connections send, keeping a partial head until the rest comes.
func loop(ep, lfd int, work time.Duration) {
	runtime.LockOSThread()
	events := make([]syscall.EpollEvent, 256)
	buf := make([]byte, maxHead)
	partial := map[int][]byte{} // by fd: the start of a head not yet whole
	end := func(fd int) {
		syscall.EpollCtl(ep, syscall.EPOLL_CTL_DEL, fd, nil)
		syscall.Close(fd)
		delete(partial, fd)
	}
	for {
		n, err := syscall.EpollWait(ep, events, -1)
		if err != nil {
			continue // EINTR
		}
		for _, ev := range events[:n] {
			fd := int(ev.Fd)
			if fd == lfd {
				accept(ep, lfd)
				continue
			}
			m, err := syscall.Read(fd, buf)
			if err == syscall.EAGAIN || err == syscall.EINTR {
				continue
			}
			if m <= 0 {
				end(fd)
				continue
			}
			b := buf[:m]
			if p := partial[fd]; p != nil {
				b = append(p, b...)
			}
			count, used := heads(b)
			if !reply(fd, count, work) {
				end(fd)
				continue
			}
			switch rest := b[used:]; {
			case len(rest) > maxHead:
				end(fd)
			case len(rest) > 0:
				partial[fd] = append([]byte(nil), rest...)
			default:
				delete(partial, fd)
			}
		}
	}
}

// accept takes every connection waiting on lfd into ep, level-triggered.
func accept(ep, lfd int) {
	for {
		fd, _, err := syscall.Accept4(lfd, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
		if err != nil {
			return // EAGAIN: no more; anything else: the next wake-up retries
		}
		syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)}
		if syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, fd, &ev) != nil {
			syscall.Close(fd)
		}
	}
}

// reply writes count answers to fd, each after spending work on it (burn);
// false when the connection must end (an error, or a socket buffer too
// full to take them: a benchmark's client reads its answers, so that does
// not happen).
func reply(fd, count int, work time.Duration) bool {
	for range count {
		burn(work)
		for off := 0; off < len(answer); {
			w, err := syscall.Write(fd, answer[off:])
			if err == syscall.EINTR {
				continue
			}
			if err != nil {
				return false
			}
			off += w
		}
	}
	return true
}
