#!/usr/bin/env bash
# Benchmark of the caller identity lookup (issue: at most 30 us per lookup),
# written to docs/IDENTITY_BENCH.md with the command that made it. Runs the Go
# benchmarks of internal/identity as root, in a namespace they make, with a few
# hundred idle sockets of other processes around the caller's.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="${BENCH_IDENTITY_OUT:-docs/IDENTITY_BENCH.md}"
count="${BENCH_IDENTITY_COUNT:-3}"
cmd=(go test ./internal/identity -run '^$' -bench . -benchtime 2000x -benchmem -count "$count")
if [ "$(id -u)" -ne 0 ]; then
	echo "bench-identity.sh: needs root (network namespaces); run: sudo make bench" >&2
	exit 1
fi
result="$("${cmd[@]}")"
{
	echo "# Caller identity lookup: benchmark"
	echo
	echo "Command: \`${cmd[*]}\` (as root; \`make bench\` runs it)"
	echo
	echo "Date: $(date -u +%Y-%m-%dT%H:%MZ); machine: $(nproc) CPUs, kernel $(uname -r), $(go version | cut -d' ' -f3)"
	echo
	echo "- ExactLookup: imdsguard's exact SOCK_DIAG_BY_FAMILY request for one 4-tuple (target: at most 30 us)."
	echo "- SocketGet: vishvananda/netlink's SocketGet, a dump filtered by ports (the TESTBED trap: slow, and it matched a wrong socket)."
	echo "- Identify/warm: the whole per-connection lookup (inet_diag, then pid via /proc, comm, exe, groups, cgroup) with the caller's pid cached."
	echo "- Identify/scan: the same with the pid cache cleared, so /proc is scanned (300 idle sockets of three other processes around)."
	echo "- IdentifyContainer: a container caller, looked up inside its own network namespace (namespace cached)."
	echo
	echo "Identity is looked up once per connection, never per request."
	echo
	echo '```'
	echo "$result"
	echo '```'
} > "$out"
echo "$result" | grep -E '^Benchmark'
echo "wrote $out"
