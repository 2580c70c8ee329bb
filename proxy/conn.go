package proxy

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/imdsguard/imdsguard/internal/identity"
	"github.com/imdsguard/imdsguard/internal/token"
	"github.com/imdsguard/imdsguard/policy"
)

type connKey struct{}

// connState is what the proxy keeps per client connection: who the caller
// is (asked once, at its first request), whether a token answer changed
// the socket's TTL, and the last token verified. net/http serves a
// connection's requests one after the other, so no lock guards the fields
// set after identification.
type connState struct {
	conn    net.Conn
	once    sync.Once
	caller  identity.Caller
	policy  policy.Caller
	binding string // what the caller's tokens are bound to (caller.Binding)
	ttlSet  bool
	// The last token verified on this connection and when it expires: the
	// next request with the same token costs a comparison, not an HMAC.
	token        string
	tokenExpires time.Time
}

// ConnContext is the http.Server ConnContext hook that gives every request
// the state of its connection.
func (p *Proxy) ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, &connState{conn: c})
}

// state returns the state of r's connection, identifying the caller at the
// connection's first request. A request served without ConnContext (a
// test recorder) gets a state of its own from RemoteAddr.
func (p *Proxy) state(r *http.Request) *connState {
	if cs, ok := r.Context().Value(connKey{}).(*connState); ok {
		cs.once.Do(func() {
			cs.caller = p.identify(cs.conn)
			cs.identified()
		})
		return cs
	}
	cs := &connState{}
	remote, _ := netip.ParseAddrPort(r.RemoteAddr)
	cs.caller = identity.Caller{Remote: remote, Unknown: "no connection"}
	cs.identified()
	return cs
}

// identified derives what the proxy needs of cs.caller.
func (cs *connState) identified() {
	c := &cs.caller
	cs.binding = c.Binding()
	cs.policy = policy.Caller{
		UIDKnown:  c.UIDKnown,
		UID:       c.UID,
		Source:    c.Remote.Addr().Unmap(),
		Interface: c.Interface,
		Container: c.Class == identity.Container,
		Workload:  c.Workload,
	}
	if c.UIDKnown && c.GIDKnown { // groups come from the process: a vanished one has none
		cs.policy.GIDs = append([]uint32{c.GID}, c.Groups...)
	}
}

// verify checks an IMDSv2 token for the connection's caller.
func (cs *connState) verify(m *token.Minter, tok string) error {
	if tok == cs.token && time.Now().Before(cs.tokenExpires) {
		return nil
	}
	exp, err := m.Check(tok, cs.binding)
	if err != nil {
		return err
	}
	cs.token, cs.tokenExpires = tok, exp
	return nil
}

// addressesOnly is the identity of a connection when no resolver is set:
// its addresses, and no user.
func addressesOnly(c net.Conn) identity.Caller {
	id := identity.Caller{Unknown: "identity lookup not configured"}
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		id.Remote = a.AddrPort()
	}
	if a, ok := c.LocalAddr().(*net.TCPAddr); ok {
		id.Local = a.AddrPort()
	}
	if !id.Remote.Addr().Unmap().IsLoopback() {
		id.Class = identity.Container
	}
	return id
}
