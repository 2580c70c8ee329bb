// Package identity tells who is on the other end of a connection to the proxy:
// the Unix user, process and container for host processes (from the kernel's
// own socket tables), the source address, interface and network namespace for
// containers. It is asked once per connection, never per request.
package identity

import (
	"log/slog"
	"net/netip"
	"strconv"

	"github.com/imdsguard/imdsguard/internal/workload"
)

// Class is the kind of caller, which decides the hop limit of its token answers.
type Class uint8

const (
	// Host is a process on this host (traffic through nat OUTPUT, or a direct
	// connection to the proxy's loopback listener).
	Host Class = iota
	// Container is a caller in another network namespace behind a container
	// interface (traffic through nat PREROUTING).
	Container
)

func (c Class) String() string {
	if c == Container {
		return "container"
	}
	return "host"
}

// Caller is what is known about the peer of one connection.
type Caller struct {
	Class  Class
	Remote netip.AddrPort // the client's address as the proxy sees it
	Local  netip.AddrPort // the address the connection landed on

	// OrigDst is the destination the client dialled before the redirect
	// (SO_ORIGINAL_DST); zero when the connection was not redirected.
	OrigDst   netip.AddrPort
	Interface string // ingress interface, for container callers
	// LocalRedirect is true for a caller that came through the local
	// redirect listener (a Cilium Local Redirect Policy: no NAT, OrigDst
	// zero, Local is this node's address and that listener's port).
	LocalRedirect bool

	// UIDKnown is false when the kernel could not attest the user: such a
	// caller matches no user or group rule.
	UIDKnown  bool
	UID       uint32
	GID       uint32
	Groups    []uint32 // supplementary groups
	User      string   // user name of UID, "" when it has none
	PID       int
	Comm      string
	Exe       string
	Container string // container id from the cgroup path, "" for none
	NetNS     uint64 // inode of the caller's network namespace, 0 if unknown

	// GIDKnown is false when GID and Groups could not be read, or are not
	// the socket owner's: they come from the process (PID), not from the
	// socket, so a caller whose process is gone, or runs as another user than
	// the socket's owner, has a known UID but no groups and matches no group
	// rule.
	GIDKnown bool
	// Cgroup is the process's cgroup path (the unified hierarchy's, else the
	// first one listed), "" when PID is 0.
	Cgroup string
	// ProcUID is the effective uid process PID runs as now. It differs from
	// UID, the socket's owner as the kernel attests it, when the process
	// changed user after it made the socket or was handed the socket by
	// another process. Policy goes by UID; ProcUID is for the audit trail.
	ProcUID uint32

	// Unknown says why the identity could not be established ("" when it was).
	Unknown string

	// Workload is what the runtime that owns Container says about it
	// (package workload): set after identification, nil for a caller
	// whose cgroup names no container or whose runtime did not answer.
	// The kernel attests the container id; the runtime, the rest.
	Workload *workload.Workload
	// WorkloadUnknown says why a caller whose cgroup names a container
	// has no Workload ("" otherwise).
	WorkloadUnknown string
}

// Binding is the string a caller's tokens are bound to: the uid for host
// processes whose user the kernel attested; the network namespace and source
// address for containers; the source address otherwise. A token minted for
// one binding is worthless under any other.
func (c *Caller) Binding() string {
	switch {
	case c.Class == Host && c.UIDKnown:
		return "uid:" + strconv.FormatUint(uint64(c.UID), 10)
	case c.Class == Container:
		return "netns:" + strconv.FormatUint(c.NetNS, 10) + "/if:" + c.Interface + "/addr:" + c.Remote.Addr().String()
	}
	return "addr:" + c.Remote.Addr().String()
}

// LogValue implements slog.LogValuer: the caller as audit-event attributes.
func (c *Caller) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("class", c.Class.String()),
		slog.String("source", c.Remote.Addr().String()),
	}
	if c.UIDKnown {
		attrs = append(attrs, slog.Uint64("uid", uint64(c.UID)), slog.String("user", c.User))
	}
	if c.PID != 0 {
		attrs = append(attrs, slog.Int("pid", c.PID), slog.String("comm", c.Comm), slog.String("exe", c.Exe))
		if c.UIDKnown && c.ProcUID != c.UID { // the process changed user after making the socket
			attrs = append(attrs, slog.Uint64("proc_uid", uint64(c.ProcUID)))
		}
	}
	if c.Container != "" {
		attrs = append(attrs, slog.String("container", c.Container))
	}
	if c.Workload != nil {
		attrs = append(attrs, slog.Any("workload", c.Workload))
	}
	if c.WorkloadUnknown != "" {
		attrs = append(attrs, slog.String("workload_unknown", c.WorkloadUnknown))
	}
	if c.Interface != "" {
		attrs = append(attrs, slog.String("interface", c.Interface))
	}
	if c.LocalRedirect {
		attrs = append(attrs, slog.Bool("local_redirect", true))
	}
	if c.Unknown != "" {
		attrs = append(attrs, slog.String("identity_unknown", c.Unknown))
	}
	return slog.GroupValue(attrs...)
}
