#!/usr/bin/env bash
# The second part of `make bench` (scripts/bench.sh runs it after the loopback
# part): what the redirect costs, measured in network namespaces this script
# makes, and written as the section "Through the redirect (namespaces)" of
# docs/BENCHMARKS.md (the rest of the file is kept).
#
# Namespaces (all named igbench-PID-*, removed on exit, also on failure or
# Ctrl-C; the metadata address exists only inside them):
#   imds    169.254.169.254/32 on lo, fakeimds on 169.254.169.254:80
#   direct  veth 192.0.2.1/24 — 192.0.2.2/24 (imds side), route
#           169.254.169.254/32 via 192.0.2.2; no rules, no proxy
#   guard   veth 198.51.100.1/24 — 198.51.100.2/24 (imds side), route
#           169.254.169.254/32 via 198.51.100.2; imdsguard runs here with
#           its redirect rules (ipv4 only, no container interfaces) and
#           its response cache off
# then measures with wrk, run in the client's namespace, at concurrency 1
# (-t1 -c1) and 16 (-t2 -c16), GET http://169.254.169.254/latest/...:
#   (a) direct        from `direct`, v2 with a fakeimds token
#   (b) imdsguard v1  from `guard`, no token: nat OUTPUT REDIRECT to imdsguard
#   (c) imdsguard v2  from `guard`, a token minted by imdsguard (PUT through
#                     the redirect)
#   (d) imdsguard v1  from `guard`, no token, to http://127.0.0.1:8989/...
#       as endpoint   (a client configured with the endpoint): no NAT, so
#                     (b) against (d) is the rule's share of the cost
# interleaved round by round (a b c d at c=1, a b c d at c=16, next round);
# each result is the median over the rounds.
#
# Performance is reported, never asserted; the script fails (after writing
# the report) only on correctness: a non-2xx answer or socket error, an
# upstream 401, upstream GETs that do not match the requests answered, or
# imdsguard sending other than exactly one token PUT upstream.
#
# Environment (the same as scripts/bench.sh):
#   BENCH_ROUNDS   rounds (default 3)
#   BENCH_SECONDS  seconds per wrk run (default 5)
#   BENCH_WARMUP   seconds of warm-up per target at c=16, 0 for none (default 2)
#   BENCH_PATH     metadata path requested (default /latest/meta-data/instance-id)
#   BENCH_OUT      report to write into (default docs/BENCHMARKS.md of the repository)
#   BENCH_KEEP     1: keep the work directory (wrk outputs, logs) and say where
# and, set by scripts/bench.sh:
#   BENCH_NO_BUILD 1: bin/ is built already
#   BENCH_COMMAND  the command line to record in the report
#   BENCH_REVISION the revision measured, taken before the first part wrote
#                  its report (which makes the tree dirty)
#
# Needs root (network namespaces, the rules), ip and iptables, wrk and curl
# (scripts/install-test-deps.sh installs them) and Go.
set -euo pipefail

prog=bench-redirect
target_width=21
proxy_label=imdsguard
# shellcheck source=SCRIPTDIR/lib/bench-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/bench-common.sh"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PATH="$PATH:/usr/local/go/bin"

rounds=${BENCH_ROUNDS:-3}
seconds=${BENCH_SECONDS:-5}
warmup=${BENCH_WARMUP:-2}
path=${BENCH_PATH:-/latest/meta-data/instance-id}
out=${BENCH_OUT:-$root/docs/BENCHMARKS.md}
keep=${BENCH_KEEP:-0}
no_build=${BENCH_NO_BUILD:-0}
concurrencies=(1 16)
targets=(direct imdsguard-v1 imdsguard-v2 imdsguard-v1-endpoint)

imds_addr=169.254.169.254
guard_port=8989 # listen.port: the daemon's default, free in a namespace of its own
direct_host=192.0.2.1 direct_peer=192.0.2.2
guard_host=198.51.100.1 guard_peer=198.51.100.2
ttl_header='X-aws-ec2-metadata-token-ttl-seconds: 21600'

for v in rounds seconds warmup; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "BENCH_${v^^}=${!v}: want a whole number"
done
((rounds >= 1)) || die "BENCH_ROUNDS must be at least 1"
((seconds >= 1)) || die "BENCH_SECONDS must be at least 1"
[[ $path == /latest/* ]] || die "BENCH_PATH=$path: want a path below /latest/"
((EUID == 0)) || die "needs root (network namespaces and iptables rules); run: sudo make bench"
for cmd in ip iptables wrk curl go; do
	command -v "$cmd" >/dev/null ||
		die "$cmd not found; install the test dependencies with scripts/install-test-deps.sh (apt-get install iproute2 iptables wrk curl)"
done

command=${BENCH_COMMAND:-"BENCH_ROUNDS=$rounds BENCH_SECONDS=$seconds BENCH_WARMUP=$warmup scripts/bench-redirect.sh"}
if [[ -z ${BENCH_COMMAND:-} && $path != /latest/meta-data/instance-id ]]; then
	command="BENCH_PATH=$path $command"
fi

# Namespaces of this run; a stale igbench- namespace (a run killed with
# SIGKILL) is named, never touched: it may be another run's.
ns_imds=igbench-$$-imds
ns_direct=igbench-$$-direct
ns_guard=igbench-$$-guard
stale=$(ip netns list | awk '$1 ~ /^igbench-/ { print $1 }')
if [[ -n $stale ]]; then
	echo "bench-redirect: note: namespaces of another or an earlier run exist (left alone; ip netns del NAME removes one): $(tr '\n' ' ' <<<"$stale")" >&2
fi

work=$(mktemp -d /tmp/imdsguard-bench-redirect.XXXXXX)
pids=()           # the processes this script started, stopped by cleanup
declare -A names  # their names, by pid
made=()           # the namespaces this script made, removed by cleanup

# The processes first (imdsguard leaves its rules, keep_on_exit), then the
# namespaces: their rules, routes and veths go with them.
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
	local pid ns
	trap '' INT TERM # a second Ctrl-C must not leave namespaces behind
	for pid in "${pids[@]}"; do
		stop "$pid"
	done
	for ns in "${made[@]}"; do
		ip netns del "$ns" 2>/dev/null || echo "bench-redirect: could not remove namespace $ns" >&2
	done
	if [[ $keep == 1 ]]; then
		echo "bench-redirect: work directory kept: $work" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- build -----------------------------------------------------------------

if [[ $no_build != 1 ]]; then
	echo "bench-redirect: building"
	"$root/scripts/build-tools.sh"
	(cd "$root" && go build -buildvcs=false -o bin/imdsguard ./cmd/imdsguard) ||
		die "building the daemon failed"
fi
(cd "$root/tools" && go build -buildvcs=false -o "$work/benchreport" ./cmd/benchreport) ||
	die "building tools/cmd/benchreport failed"
for b in fakeimds imdsguard; do
	[[ -x $root/bin/$b ]] || die "bin/$b missing; build it with scripts/build-tools.sh and go build -o bin/imdsguard ./cmd/imdsguard"
done

# --- namespaces ----------------------------------------------------------------

# nsexec NS CMD...: CMD in namespace NS.
nsexec() {
	local ns=$1
	shift
	ip netns exec "$ns" "$@"
}

for ns in "$ns_imds" "$ns_direct" "$ns_guard"; do
	ip netns add "$ns" || die "could not make namespace $ns"
	made+=("$ns")
	ip -n "$ns" link set lo up
done
ip -n "$ns_imds" addr add "$imds_addr/32" dev lo

# veth_link NS HOST_ADDR PEER_ADDR: a veth from NS (up0) to the imds namespace
# (IF there: NS's last name part, then 0), made in the namespaces themselves,
# and NS's route to the metadata address over it.
veth_link() {
	local ns=$1 host=$2 peer=$3 peer_if=${1##*-}0
	ip -n "$ns" link add up0 type veth peer name "$peer_if" netns "$ns_imds"
	ip -n "$ns" addr add "$host/24" dev up0
	ip -n "$ns_imds" addr add "$peer/24" dev "$peer_if"
	ip -n "$ns" link set up0 up
	ip -n "$ns_imds" link set "$peer_if" up
	ip -n "$ns" route add "$imds_addr/32" via "$peer"
}
veth_link "$ns_direct" "$direct_host" "$direct_peer"
veth_link "$ns_guard" "$guard_host" "$guard_peer"

# --- processes -------------------------------------------------------------------

# wait_ready PID NAME NS URL [CURL ARGS...]: wait until URL answers HTTP at
# all, asked from namespace NS.
wait_ready() {
	local pid=$1 name=$2 ns=$3 url=$4
	shift 4
	local code
	for _ in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || die "$name exited at start; its log: $(tail -n 5 "$work/$name.err")"
		code=$(nsexec "$ns" curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$@" "$url" || true)
		[[ $code != 000 ]] && return 0
		sleep 0.05
	done
	die "$name did not answer at $url (namespace $ns) within 5 s"
}

# fake_stat KEY: a count from fakeimds's /_fakeimds/stats, asked in its own
# namespace.
fake_stat() {
	local json n
	json=$(nsexec "$ns_imds" curl -sf --max-time 2 "http://$imds_addr/_fakeimds/stats") || die "fakeimds stats unreachable"
	n=$(sed -n "s/.*\"$1\":\([0-9][0-9]*\).*/\1/p" <<<"$json")
	[[ -n $n ]] || die "fakeimds stats: no $1 in $json"
	echo "$n"
}

# `ip netns exec` execs the command, so $! is fakeimds's (imdsguard's) pid.
ip netns exec "$ns_imds" "$root/bin/fakeimds" -listen "$imds_addr:80" >"$work/fakeimds.out" 2>"$work/fakeimds.err" &
fake_pid=$!
pids+=("$fake_pid")
names[$fake_pid]=fakeimds
wait_ready "$fake_pid" fakeimds "$ns_imds" "http://$imds_addr/_fakeimds/stats"

# The token of (a) comes first, over the direct namespace's link (which it
# proves); the PUT count read after it is the baseline: every later PUT is
# imdsguard's.
fake_token=$(nsexec "$ns_direct" curl -sf --max-time 2 -X PUT -H "$ttl_header" "http://$imds_addr/latest/api/token") ||
	die "token PUT to fakeimds from $ns_direct failed"
puts_before=$(fake_stat token_puts)

head -c 32 /dev/urandom >"$work/token.key"
chmod 600 "$work/token.key"
cat >"$work/imdsguard.yaml" <<EOF
version: 1
listen: {port: $guard_port}
upstream: {url: "http://$imds_addr"}
redirect: {ipv4: true, ipv6: false, container_interfaces: []}
tokens: {key_file: $work/token.key}
admin: {socket: $work/admin.sock}
EOF
# Without its response cache, so that every request crosses the redirect to
# IMDS and back, as in the direct runs (and the GET check holds); a daemon
# from before the cache refuses the section and has none anyway.
cp "$work/imdsguard.yaml" "$work/imdsguard-nocache.yaml"
echo "cache: {enabled: false}" >>"$work/imdsguard-nocache.yaml"
if "$root/bin/imdsguard" policy check "$work/imdsguard-nocache.yaml" >/dev/null 2>&1; then
	mv "$work/imdsguard-nocache.yaml" "$work/imdsguard.yaml"
fi
"$root/bin/imdsguard" policy check "$work/imdsguard.yaml" >"$work/policy-check.txt" 2>&1 ||
	die "imdsguard policy check refuses the configuration: $(cat "$work/policy-check.txt")"

# The audit log (stderr) goes to a file. The daemon installs its rules before
# it listens: once its port answers (asked directly, not through the
# redirect) the rules are in place. A GET on the token path is answered
# locally (405): no upstream traffic yet.
ip netns exec "$ns_guard" "$root/bin/imdsguard" run --config "$work/imdsguard.yaml" >"$work/imdsguard.out" 2>"$work/imdsguard.err" &
guard_pid=$!
pids+=("$guard_pid")
names[$guard_pid]=imdsguard
wait_ready "$guard_pid" imdsguard "$ns_guard" "http://127.0.0.1:$guard_port/latest/api/token"
nsexec "$ns_guard" "$root/bin/imdsguard" rules status --config "$work/imdsguard.yaml" >"$work/rules-status.txt" 2>&1 ||
	die "imdsguard's rules are not all installed in $ns_guard: $(cat "$work/rules-status.txt")"
nat_rules=$(nsexec "$ns_guard" iptables -t nat -S) || die "iptables -t nat -S in $ns_guard failed"
grep -- '^-A ' <<<"$nat_rules" >"$work/rules.txt" || true
grep -q -- '-j REDIRECT --to-ports '"$guard_port" "$work/rules.txt" ||
	die "no REDIRECT rule to port $guard_port in $ns_guard: $(cat "$work/rules.txt")"
direct_rules=$(nsexec "$ns_direct" iptables-save 2>&1) || die "iptables-save in $ns_direct failed: $direct_rules"
[[ $direct_rules != *IMDSGUARD* ]] || die "imdsguard rules in $ns_direct, which must have none"

# The token of (c): a PUT to the metadata address, through the redirect.
guard_token=$(nsexec "$ns_guard" curl -sf --max-time 2 -X PUT -H "$ttl_header" "http://$imds_addr/latest/api/token") ||
	die "token PUT through the redirect failed: $(tail -n 3 "$work/imdsguard.err")"

# --- what each target is asked -------------------------------------------------

# url_of TARGET: what its client asks.
url_of() {
	case $1 in
	imdsguard-v1-endpoint) echo "http://127.0.0.1:$guard_port$path" ;;
	*) echo "http://$imds_addr$path" ;;
	esac
}

# ns_of TARGET: the namespace its client runs in.
ns_of() {
	case $1 in
	direct) echo "$ns_direct" ;;
	imdsguard-*) echo "$ns_guard" ;;
	esac
}

# headers_of TARGET: the curl/wrk -H arguments, one a line.
headers_of() {
	case $1 in
	direct) printf '%s\n' -H "X-aws-ec2-metadata-token: $fake_token" ;;
	imdsguard-v2) printf '%s\n' -H "X-aws-ec2-metadata-token: $guard_token" ;;
	esac
}

# in_client TARGET CMD...: run CMD in the namespace of TARGET's client.
in_client() {
	local target=$1
	shift
	nsexec "$(ns_of "$target")" "$@"
}

preflight
echo "bench-redirect: targets answer 200: direct from $ns_direct; imdsguard from $ns_guard, through the redirect and at 127.0.0.1:$guard_port"

# --- wrk -------------------------------------------------------------------------

write_report_lua

# proxy_pid TARGET: the proxy process a target goes through, 0 for none.
proxy_pid() {
	case $1 in
	direct) echo 0 ;;
	imdsguard-*) echo "$guard_pid" ;;
	esac
}

warm_up
measure

# --- counts and report -----------------------------------------------------------

collect_counts

revision=${BENCH_REVISION:-$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)}
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)

mkdir -p "$(dirname "$out")"
status=0
"$work/benchreport" -section redirect -runs "$runs" -out "$out" \
	-command "$command" -date "$(date -u '+%Y-%m-%d %H:%M UTC')" \
	-nproc "$(nproc)" -kernel "$(uname -r)" -go "$(go version)" -cpu "${cpu:-unknown}" \
	-revision "$revision" -path "$path" \
	-rounds "$rounds" -seconds "$seconds" -warmup "$warmup" \
	-puts-before "$puts_before" -upstream-puts $((puts_after - puts_before)) \
	-upstream-gets "$gets" -extra-requests "$extra_requests" -in-flight-max "$in_flight_max" -upstream-unauthorized "$unauthorized" \
	-audit-bytes "$audit_bytes" -audit-lines "$audit_lines" -guard-rule "$guard_rule" -guard-caller "$guard_caller" \
	-clk-tck "$clk_tck" -imds-ns "$ns_imds" -direct-ns "$ns_direct" -guard-ns "$ns_guard" \
	-direct-link "$direct_host/24 — $direct_peer/24" -guard-link "$guard_host/24 — $guard_peer/24" \
	-guard-config "$work/imdsguard.yaml" -rules "$work/rules.txt" || status=$?
exit "$status"
