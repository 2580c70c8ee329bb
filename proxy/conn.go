package proxy

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/imdsguard/imdsguard/internal/audit"
	"github.com/imdsguard/imdsguard/internal/cache"
	"github.com/imdsguard/imdsguard/internal/identity"
	"github.com/imdsguard/imdsguard/internal/token"
	"github.com/imdsguard/imdsguard/policy"
)

type connKey struct{}

// connState is what the proxy keeps per client connection: who the caller
// is (asked once, at its first request) and whether a token answer changed
// the socket's TTL.
type connState struct {
	ctx     context.Context // the connection's, which holds this state
	conn    net.Conn
	once    sync.Once
	caller  identity.Caller
	policy  policy.Caller
	binding string // what the caller's tokens are bound to (caller.Binding)
	// Requests on one connection are sequential: no lock needed below.
	ttlSet bool
	// The last token verified on this connection and when it expires: the
	// next request with the same token costs a comparison, not an HMAC.
	token        string
	tokenExpires time.Time
	// route and event are those of the request being answered: kept
	// here, they take no room on its goroutine's stack. reply holds its
	// answer when the cache has it (cache.Cache.FetchInto): written whole
	// before the next request is read, it is the next one's to reuse.
	route Route
	event audit.Event
	reply cache.Reply
}

// ConnContext is the http.Server ConnContext hook that gives every request
// the state of its connection.
func (p *Proxy) ConnContext(ctx context.Context, c net.Conn) context.Context {
	cs := &connState{conn: c}
	cs.ctx = context.WithValue(ctx, connKey{}, cs)
	return cs.ctx
}

// state returns the connection state in ctx, the request's connection's
// context (h1.Context). A request served without ConnContext (a test
// recorder) gets a state of its own from RemoteAddr.
func (p *Proxy) state(ctx context.Context, r *http.Request) *connState {
	if cs, ok := ctx.Value(connKey{}).(*connState); ok {
		cs.once.Do(func() { p.identifyConn(cs) })
		return cs
	}
	return detachedState(ctx, r)
}

// identifyConn asks who is on the other end of the connection, once. The
// identity is built in place, not passed by value: the lookup waits (for
// the process walk, the runtime) at the end of this chain of frames, on the
// connection's goroutine, whose stack is to stay within 4 KB
// (TestConnectionStacksStaySmall; the lookup itself runs on other
// goroutines, offstack).
//
//go:noinline
func (p *Proxy) identifyConn(cs *connState) {
	cs.caller = p.identify(cs.conn)
	cs.identified()
}

// detachedState is the state of a request served without ConnContext.
//
//go:noinline
func detachedState(ctx context.Context, r *http.Request) *connState {
	cs := &connState{ctx: ctx}
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
