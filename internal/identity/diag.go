package identity

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// The inet_diag wire format (linux/inet_diag.h, linux/sock_diag.h). Building
// and reading the messages is kept free of build tags so it tests anywhere;
// diag_linux.go sends them.
const (
	sockDiagByFamily = 20 // SOCK_DIAG_BY_FAMILY, the netlink message type

	diagReqLen = 56 // struct inet_diag_req_v2
	diagMsgLen = 72 // struct inet_diag_msg

	diagNoCookie  = 0xffffffff // INET_DIAG_NOCOOKIE: "any socket with this tuple"
	diagAllStates = 0xffffffff
	ipprotoTCP    = 6
	afInet        = 2
	afInet6       = 10

	tcpTimeWait       = 6  // TCP_TIME_WAIT
	tcpNewSynRecv     = 12 // TCP_NEW_SYN_RECV: a request socket, no owner yet
	diagTimerTimeWait = 3  // idiag_timer of a time-wait minisocket
)

// errMismatch says the kernel answered with a socket other than the one asked
// for. With an exact request this happens when the tuple has no connected
// socket but a listener owns the source address and port: the kernel's lookup
// falls back to listeners, as it would for an incoming packet.
var errMismatch = errors.New("kernel answered with another socket")

// diagAnswer is the part of struct inet_diag_msg identity needs.
type diagAnswer struct {
	Family uint8
	State  uint8
	Timer  uint8
	Src    netip.AddrPort // the socket's own address
	Dst    netip.AddrPort // its peer
	UID    uint32         // owner: fsuid of the process that made the socket
	Inode  uint32         // 0 when no file refers to the socket any more
}

// diagRequest builds an exact inet_diag_req_v2 for the TCP socket whose own
// address is src and whose peer is dst: all states, no cookie, so the kernel
// looks the tuple up instead of dumping. Both addresses must be of one family
// (IPv4-mapped IPv6 counts as IPv4).
func diagRequest(src, dst netip.AddrPort) ([]byte, error) {
	s, d := src.Addr().Unmap(), dst.Addr().Unmap()
	var family uint8
	switch {
	case s.Is4() && d.Is4():
		family = afInet
	case s.Is6() && d.Is6():
		family = afInet6
	default:
		return nil, fmt.Errorf("build inet_diag request %s -> %s: addresses of different families", src, dst)
	}
	b := make([]byte, diagReqLen)
	b[0], b[1] = family, ipprotoTCP // b[2] extensions and b[3] pad stay 0
	binary.NativeEndian.PutUint32(b[4:], diagAllStates)
	binary.BigEndian.PutUint16(b[8:], src.Port())
	binary.BigEndian.PutUint16(b[10:], dst.Port())
	putAddr(b[12:28], s)
	putAddr(b[28:44], d)
	// b[44:48], the interface, stays 0: any.
	binary.NativeEndian.PutUint32(b[48:], diagNoCookie)
	binary.NativeEndian.PutUint32(b[52:], diagNoCookie)
	return b, nil
}

func putAddr(b []byte, a netip.Addr) {
	if a.Is4() {
		v := a.As4()
		copy(b, v[:])
		return
	}
	v := a.As16()
	copy(b, v[:])
}

// parseDiagMsg reads a struct inet_diag_msg (the payload of one
// SOCK_DIAG_BY_FAMILY answer).
func parseDiagMsg(b []byte) (diagAnswer, error) {
	if len(b) < diagMsgLen {
		return diagAnswer{}, fmt.Errorf("parse inet_diag answer: %d bytes, want %d", len(b), diagMsgLen)
	}
	a := diagAnswer{Family: b[0], State: b[1], Timer: b[2]}
	sport := binary.BigEndian.Uint16(b[4:])
	dport := binary.BigEndian.Uint16(b[6:])
	src, dst, err := diagAddrs(a.Family, b[8:24], b[24:40])
	if err != nil {
		return diagAnswer{}, err
	}
	a.Src = netip.AddrPortFrom(src, sport)
	a.Dst = netip.AddrPortFrom(dst, dport)
	a.UID = binary.NativeEndian.Uint32(b[64:])
	a.Inode = binary.NativeEndian.Uint32(b[68:])
	return a, nil
}

func diagAddrs(family uint8, src, dst []byte) (netip.Addr, netip.Addr, error) {
	switch family {
	case afInet:
		return netip.AddrFrom4([4]byte(src[:4])), netip.AddrFrom4([4]byte(dst[:4])), nil
	case afInet6:
		return netip.AddrFrom16([16]byte(src)), netip.AddrFrom16([16]byte(dst)), nil
	}
	return netip.Addr{}, netip.Addr{}, fmt.Errorf("parse inet_diag answer: unknown address family %d", family)
}

// check accepts the answer only when it is the socket asked for: both
// addresses and both ports (the trap of the dump-based lookup, and of the
// exact lookup's fall-back to listeners).
func (a diagAnswer) check(src, dst netip.AddrPort) error {
	if !sameAddrPort(a.Src, src) || !sameAddrPort(a.Dst, dst) {
		return fmt.Errorf("%w: asked %s -> %s, got %s -> %s", errMismatch, src, dst, a.Src, a.Dst)
	}
	return nil
}

func sameAddrPort(a, b netip.AddrPort) bool {
	return a.Port() == b.Port() && a.Addr().Unmap() == b.Addr().Unmap()
}

// ownerAttested says whether the answer's uid names the socket's owner. A
// time-wait minisocket (which keeps the state the socket closed in, e.g.
// FIN_WAIT2) and a request socket report uid 0 and inode 0: that 0 is "no
// owner", not root.
func (a diagAnswer) ownerAttested() error {
	switch {
	case a.Timer == diagTimerTimeWait || a.State == tcpTimeWait:
		return errors.New("the client socket is already closed (time-wait): its owner is gone")
	case a.State == tcpNewSynRecv:
		return errors.New("the client socket is a request socket without an owner")
	}
	return nil
}
