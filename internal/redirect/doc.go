// Package redirect owns the kernel side of imdsguard: the netfilter rules that
// send metadata traffic (169.254.169.254 and fd00:ec2::254, tcp port 80) to
// the local proxy, shield the proxy port from the network and refuse
// metadata traffic that would otherwise be routed; and the netlink view of
// the container interfaces that traffic arrives on.
//
// The rules live in own chains, each hooked in by one jump (inserted first):
//
//	nat    OUTPUT     -> IMDSGUARD-OUT  own marked traffic RETURNs, the rest is REDIRECTed
//	nat    PREROUTING -> IMDSGUARD-PRE  REDIRECT from the container interface patterns
//	filter INPUT      -> IMDSGUARD-IN   the proxy port answers lo and redirected flows only
//	filter FORWARD    -> IMDSGUARD-FWD  metadata traffic that would be routed is reset
//	filter OUTPUT     -> IMDSGUARD-FENCE  local metadata traffic that escaped the redirect
//	                                    (an outside nat flush) is reset; marked traffic passes
//
// Every rule carries an "imdsguard: ..." comment. Rule arguments are built by
// pure functions (rules.go) shared by Install, Remove and Status; the kernel
// is reached through a small runner interface (runner.go) that
// github.com/coreos/go-iptables satisfies and a fake stands in for in tests.
// Chain names are constants that must never change: an upgraded daemon has
// to find and remove what an older one installed.
//
// Decisions worth knowing:
//
//   - Fail closed between a flush and its restore. nat OUTPUT runs before
//     filter OUTPUT, so a redirected packet's destination is loopback by the
//     time IMDSGUARD-FENCE sees it; a packet still headed for IMDS there is
//     either the daemon's (marked) or escaped a flushed redirect, and is
//     reset. Keep restores the redirect within a second; meanwhile callers
//     get "connection refused", never IMDS.
//   - Backends. iptables-nft and iptables-legacy are both supported, never
//     mixed: the tools are named explicitly (iptables-nft, ip6tables-legacy,
//     ...), and detection (Options.Backend "") follows kube-proxy's
//     iptables-wrapper: the backend already holding IMDSGUARD chains, else
//     the one with more rules, else nft.
//   - The proxy port is protected by conntrack's original destination
//     (-m conntrack --ctstate DNAT --ctorigdst IMDS), which matches REDIRECTed
//     flows on both paths; route_localnet is never needed. Only tcp to the
//     port is dropped, silently (no answer).
//   - Remove leaves iptables-save byte-identical to before Install. When
//     Install had to create a table (nf_tables: a table appears on first
//     write) it marks it with the empty chain IMDSGUARD-MADE-TABLE, and Remove
//     deletes the table again if nothing else was put in it. Two limits: a
//     legacy table, once instantiated (any access does it), lives as long as
//     its namespace, so it stays, empty, with policy ACCEPT; and an nf_tables
//     base chain (e.g. nat PREROUTING) that Install created in an existing
//     table stays as an empty base chain with policy accept: invisible to
//     iptables-save, visible in `nft list ruleset`, without effect.
//   - Keep never reads the whole rule set: every 250 ms it asks for a stamp
//     (nf_tables' generation; the legacy tables' headers, with a read every
//     30 s as they are not exact); when it moved, an in-process digest of
//     imdsguard's chains and hooks (nf_tables), and only when those changed,
//     a read of just those chains (verify.go), compared with what a full
//     check verified. A repair writes each table's fixes in one
//     iptables-restore --noflush transaction. A jump stays below someone
//     else's rules only when they provably cannot touch metadata traffic and
//     came back after one move (above.go). On nf_tables an outside flush is
//     undone within about 300 ms, whatever else the node holds.
//   - Every method acts in the network namespace of the calling thread (the
//     iptables tools and netlink sockets inherit it); Keep does all its work
//     on its own goroutine, so a caller that pinned it to a namespace keeps
//     it there.
package redirect
