package identity

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/imdsguard/imdsguard/internal/offstack"
)

// diagTimeout bounds one exact lookup; the kernel answers in microseconds.
const diagTimeout = time.Second

// errNoSocket says the kernel has no socket with the tuple asked for (ENOENT).
var errNoSocket = errors.New("no such socket")

// diagSock is one NETLINK_INET_DIAG socket, bound to the network namespace it
// was opened in, shared by concurrent lookups: nl serialises each
// request/answer exchange on the socket's lock and drops answers to other
// sequence numbers (e.g. one that arrives after its request timed out).
type diagSock struct {
	sh      *nl.SocketHandle
	sockets map[int]*nl.SocketHandle // read-only after open, as nl wants it
}

// openDiag opens an inet_diag socket in the calling thread's network namespace.
func openDiag() (*diagSock, error) {
	s, err := nl.GetNetlinkSocketAt(netns.None(), netns.None(), unix.NETLINK_INET_DIAG) // None: here
	if err != nil {
		return nil, fmt.Errorf("open NETLINK_INET_DIAG socket: %w", err)
	}
	tv := unix.NsecToTimeval(diagTimeout.Nanoseconds())
	_ = s.SetSendTimeout(&tv)    // only stores the value
	_ = s.SetReceiveTimeout(&tv) // likewise
	sh := &nl.SocketHandle{Socket: s}
	return &diagSock{sh: sh, sockets: map[int]*nl.SocketHandle{unix.NETLINK_INET_DIAG: sh}}, nil
}

// Close closes the socket.
func (d *diagSock) Close() { d.sh.Close() }

// lookup asks the kernel for the TCP socket whose own address is src and
// whose peer is dst (exact request: no dump, so ENOENT when absent) and
// checks that the answer is that socket.
func (d *diagSock) lookup(src, dst netip.AddrPort) (diagAnswer, error) {
	req, err := newDiagRequest(src, dst)
	if err != nil {
		return diagAnswer{}, err
	}
	req.Sockets = d.sockets
	var (
		ans  diagAnswer
		perr error
		got  bool
	)
	answer := func(msg []byte) bool {
		ans, perr = parseDiagMsg(msg)
		got = true
		return false
	}
	var err2 error
	offstack.Do(func() { err2 = req.ExecuteIter(unix.NETLINK_INET_DIAG, sockDiagByFamily, answer) })
	if err := err2; err != nil {
		if errors.Is(err, unix.ENOENT) {
			return diagAnswer{}, fmt.Errorf("inet_diag lookup %s -> %s: %w", src, dst, errNoSocket)
		}
		return diagAnswer{}, fmt.Errorf("inet_diag lookup %s -> %s: %w", src, dst, err)
	}
	if !got {
		return diagAnswer{}, fmt.Errorf("inet_diag lookup %s -> %s: no answer", src, dst)
	}
	if perr != nil {
		return diagAnswer{}, fmt.Errorf("inet_diag lookup %s -> %s: %w", src, dst, perr)
	}
	return ans, ans.check(src, dst)
}

// newDiagRequest wraps the exact request in a netlink message: type
// SOCK_DIAG_BY_FAMILY, flags NLM_F_REQUEST only (no NLM_F_DUMP).
func newDiagRequest(src, dst netip.AddrPort) (*nl.NetlinkRequest, error) {
	body, err := diagRequest(src, dst)
	if err != nil {
		return nil, err
	}
	req := nl.NewNetlinkRequest(sockDiagByFamily, 0)
	req.AddRawData(body)
	return req, nil
}
