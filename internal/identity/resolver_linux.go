package identity

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strings"

	"github.com/imdsguard/imdsguard/internal/imds"
)

// Resolver identifies the callers of accepted connections. It is safe for
// concurrent use: one inet_diag socket serves every lookup in the resolver's
// own network namespace; lookups in container namespaces open a socket there
// for the time of one lookup (a socket kept open would keep a removed
// container's namespace alive).
type Resolver struct {
	log          *slog.Logger
	interfaceFor func(netip.Addr) string
	imds         []netip.Addr

	host    *diagSock // inet_diag socket in the resolver's namespace; nil: see hostErr
	hostErr error
	self    nsID // the resolver's network namespace
	selfErr error
	procs   *procs
	users   *passwdNames
	nsBySrc nsCache
	running chan struct{} // one token per lookup under way: MaxLookups
}

// MaxLookups is how many identity lookups run at once; a burst of new
// connections waits its turn. A lookup reads /proc and netlink with
// blocking system calls, each holding an OS thread: a thousand connections
// opened at once would otherwise start hundreds of threads, whose memory
// the process keeps, for no gain (the /proc walks they wait for are shared).
const MaxLookups = 16

// NewResolver makes a Resolver for the network namespace of the calling
// thread (the one whose OUTPUT and PREROUTING redirect to the proxy). It
// does not fail: what it cannot open is reported, per connection, as the
// reason the identity is unknown.
func NewResolver(o Options) *Resolver {
	r := &Resolver{
		log:          o.logger(),
		interfaceFor: o.InterfaceFor,
		imds:         o.imds(),
		procs:        openProcs("/proc"),
		running:      make(chan struct{}, MaxLookups),
		users:        newPasswdNames("/etc/passwd"),
	}
	runtime.LockOSThread() // both on one thread, so in one namespace
	r.host, r.hostErr = openDiag()
	r.self, r.selfErr = threadNetNS()
	runtime.UnlockOSThread()
	for _, err := range []error{r.hostErr, r.selfErr, r.procs.err} {
		if err != nil {
			r.log.Error("caller identity degraded", "err", err)
		}
	}
	return r
}

// Close releases the resolver's sockets and files.
func (r *Resolver) Close() error {
	if r.host != nil {
		r.host.Close()
	}
	return r.procs.close()
}

// Identify tells who is on the other end of c, an accepted connection. Call
// it once per connection. It never fails: what cannot be established is left
// empty, with UIDKnown false and the reason in Unknown. Remote and Local come
// unmapped (an IPv4 client of a dual-stack listener is given as IPv4).
func (r *Resolver) Identify(c net.Conn) Caller {
	if ic, ok := c.(*identifiedConn); ok {
		return ic.caller
	}
	r.running <- struct{}{}
	defer func() { <-r.running }()
	cl := Caller{Remote: unmap(addrPortOf(c.RemoteAddr())), Local: unmap(addrPortOf(c.LocalAddr()))}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		cl.Unknown = fmt.Sprintf("not a TCP connection (%T)", c)
		return cl
	}
	dst, redirected, err := OriginalDst(tc)
	if err != nil {
		r.log.Warn("read original destination", "remote", cl.Remote, "err", err)
	}
	if redirected {
		cl.OrigDst = dst
	} else {
		dst = cl.Local // a direct caller: its socket's peer is the proxy itself
	}
	cl.Class = classify(cl.Local, cl.OrigDst, r.imds)
	if cl.Class == Container {
		if r.interfaceFor != nil {
			cl.Interface = r.interfaceFor(cl.Remote.Addr())
		}
		r.identifyContainer(&cl, dst)
	} else {
		r.identifyHost(&cl, dst)
	}
	if cl.Unknown != "" {
		r.log.Debug("caller identity unknown", "remote", cl.Remote, "reason", cl.Unknown)
	}
	return cl
}

// IdentifyLocalRedirect identifies the caller of a connection accepted on
// the local redirect listener (listen.local_redirect_port). There, a Cilium
// Local Redirect Policy has rewritten a pod's connect() to the metadata
// address, in the pod's own socket, into this node's address and that
// port: nothing was NATed, so the client's socket, in the pod's network
// namespace, points at the very address the connection landed on, and that
// is the tuple looked up (a redirected caller's socket points at the
// metadata address instead). Where Cilium balances per packet instead
// (socketLB.hostNamespaceOnly: its BPF translates each packet, and the
// pod's socket keeps pointing at the metadata address), the socket has the
// metadata address of the connection's family, port 80: each namespace is
// asked for either tuple, in one pass. The caller is a container
// caller, as one redirected through PREROUTING would be, when the host
// routes its address through a container interface and its socket is
// found, exactly, in one other network namespace. Otherwise Unknown says
// why; a source that is no container interface's (the host itself, the
// network) is not searched for at all.
func (r *Resolver) IdentifyLocalRedirect(c net.Conn) Caller {
	r.running <- struct{}{}
	defer func() { <-r.running }()
	cl := Caller{Class: Container, LocalRedirect: true,
		Remote: unmap(addrPortOf(c.RemoteAddr())), Local: unmap(addrPortOf(c.LocalAddr()))}
	if _, ok := c.(*net.TCPConn); !ok {
		cl.Unknown = fmt.Sprintf("not a TCP connection (%T)", c)
		return cl
	}
	if r.interfaceFor != nil {
		cl.Interface = r.interfaceFor(cl.Remote.Addr())
	}
	if cl.Interface == "" {
		cl.Unknown = "source " + cl.Remote.Addr().String() + " is not routed through a container interface"
		return cl
	}
	// As rewritten at connect() first; as sent, for per-packet balancing.
	r.identifyContainer(&cl, cl.Local, netip.AddrPortFrom(r.imdsOf(cl.Local.Addr()), imds.Port))
	if cl.Unknown != "" {
		r.log.Debug("local redirect caller identity unknown", "remote", cl.Remote, "reason", cl.Unknown)
	}
	return cl
}

// orList names destinations in messages: "a", or "a or b".
func orList(dsts []netip.AddrPort) string {
	s := make([]string, len(dsts))
	for i, d := range dsts {
		s[i] = d.String()
	}
	return strings.Join(s, " or ")
}

// imdsOf is the metadata address of a's family.
func (r *Resolver) imdsOf(a netip.Addr) netip.Addr {
	for _, m := range r.imds {
		if m.Unmap().Is4() == a.Unmap().Is4() {
			return m
		}
	}
	return netip.Addr{}
}

// identifyHost looks the client's socket up in the resolver's namespace.
func (r *Resolver) identifyHost(c *Caller, dst netip.AddrPort) {
	if r.host == nil {
		c.Unknown = "no inet_diag socket: " + r.hostErr.Error()
		return
	}
	ans, err := r.host.lookup(c.Remote, dst)
	if err != nil {
		c.Unknown = err.Error()
		return
	}
	r.attest(c, ans, 0)
}

// identifyContainer finds the network namespace that holds the client's
// socket (the one remembered for its source address first) and looks it up
// there, with each destination in turn (the first one found counts).
func (r *Resolver) identifyContainer(c *Caller, dsts ...netip.AddrPort) {
	if r.selfErr != nil {
		c.Unknown = "cannot tell network namespaces apart: " + r.selfErr.Error()
		return
	}
	src := c.Remote
	if cand, ok := r.nsBySrc.get(src.Addr()); ok {
		if ans, err := lookupIn(cand, r.self.dev, src, dsts...); err == nil {
			c.NetNS = cand.ino
			r.attest(c, ans, cand.ino)
			return
		}
		r.nsBySrc.drop(src.Addr())
	}
	cand, ans, err := r.searchNamespaces(src, dsts...)
	if err != nil {
		c.Unknown = err.Error()
		return
	}
	r.nsBySrc.put(src.Addr(), cand)
	c.NetNS = cand.ino
	r.attest(c, ans, cand.ino)
}

// searchNamespaces tries the exact lookup in every other network namespace.
func (r *Resolver) searchNamespaces(src netip.AddrPort, dsts ...netip.AddrPort) (nsCandidate, diagAnswer, error) {
	return searchIn(r.procs.namespaces(r.self), r.self.dev, src, dsts...)
}

// searchIn asks every candidate: a tuple found in two namespaces
// (overlapping container networks) is ambiguous and identifies nobody.
func searchIn(cands []nsCandidate, dev uint64, src netip.AddrPort, dsts ...netip.AddrPort) (nsCandidate, diagAnswer, error) {
	var (
		found    []nsCandidate
		ans      diagAnswer
		firstErr error
	)
	for _, cand := range cands {
		a, err := lookupIn(cand, dev, src, dsts...)
		switch {
		case err == nil:
			found, ans = append(found, cand), a
		case !errors.Is(err, errNoSocket) && !errors.Is(err, errMismatch) && firstErr == nil:
			firstErr = err
		}
	}
	dst := orList(dsts)
	switch {
	case len(found) == 1:
		return found[0], ans, nil
	case len(found) > 1:
		return nsCandidate{}, diagAnswer{}, fmt.Errorf("client socket %s -> %s is in %d network namespaces: ambiguous", src, dst, len(found))
	case firstErr != nil:
		return nsCandidate{}, diagAnswer{}, fmt.Errorf("client socket %s -> %s not found; looking into network namespaces failed: %w", src, dst, firstErr)
	}
	return nsCandidate{}, diagAnswer{}, fmt.Errorf("client socket %s -> %s is in none of %d network namespaces", src, dst, len(cands))
}

// attest records what the kernel's answer attests (the socket's owner) and
// then what the owning process tells, if one still holds the socket.
func (r *Resolver) attest(c *Caller, ans diagAnswer, netns uint64) {
	if err := ans.ownerAttested(); err != nil {
		c.Unknown = err.Error()
		return
	}
	c.UIDKnown, c.UID = true, ans.UID
	if c.Class == Host { // a container's uids are named by its image's passwd, not ours
		c.User = r.userName(ans.UID)
	}
	if ans.Inode == 0 {
		r.log.Debug("client socket has no process any more", "remote", c.Remote, "uid", ans.UID)
		return
	}
	pr, err := r.procs.find(ans.Inode, ans.UID, netns)
	if err != nil {
		r.log.Debug("no process for client socket", "remote", c.Remote, "err", err)
		return
	}
	defer pr.close()
	info, err := pr.read()
	if err != nil {
		r.log.Debug("read client process", "remote", c.Remote, "pid", pr.pid, "err", err)
		return
	}
	c.PID, c.Comm, c.Exe = pr.pid, info.Comm, info.Exe
	c.ProcUID = info.Status.UID[1]
	// Groups belong to the process. When it no longer runs as the socket's
	// owner (it made the socket as root and dropped to a user, or was handed
	// it), they are another user's groups: none count.
	if c.ProcUID == c.UID {
		c.GIDKnown, c.GID, c.Groups = true, info.Status.GID[1], info.Status.Groups
	}
	c.Cgroup, c.Container = info.Cgroup, info.ContainerID
}

func (r *Resolver) userName(uid uint32) string {
	name, err := r.users.Name(uid)
	if err != nil {
		r.log.Warn("user names", "err", err)
	}
	return name
}
