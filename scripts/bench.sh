#!/usr/bin/env bash
# Benchmarks imdsguard against a plain reverse proxy, on loopback only, and
# rewrites docs/BENCHMARKS.md with the results.
#
# It starts fakeimds (a fast tokens-required fake IMDS), bareproxy
# (httputil.ReverseProxy in front of it) and imdsguard (endpoint mode, no
# redirect rules) on free 127.0.0.1 ports, then measures with wrk, at
# concurrency 1 (-t1 -c1) and 16 (-t2 -c16):
#   (a) direct   fakeimds, v2 with a fakeimds token
#   (b) bareproxy          v2, the fakeimds token forwarded as-is
#   (c) imdsguard v1       no token: upgraded into imdsguard's upstream session
#   (d) imdsguard v2       an imdsguard token
# The runs are interleaved (a b c d at c=1, a b c d at c=16, next round) and
# each result is the median over the rounds, so machine noise hits all
# targets alike. Besides wrk's requests/s and latency percentiles it records
# the CPU time each process spent per request (/proc/PID/stat).
#
# Performance is reported, never asserted; the script fails only on
# correctness: a non-2xx answer or socket error in any run, an upstream 401,
# upstream GETs that do not match the requests answered (one each, give or
# take those in flight when a run stopped), or imdsguard sending other than
# exactly one token PUT upstream (once the runs are done, the report is
# written even when a check fails; a failed pre-flight or warm-up stops early).
#
# Then, as its second part, it runs scripts/bench-redirect.sh: the cost of the
# redirect, imdsguard reached through its nat rules against the client going
# straight to 169.254.169.254, measured in network namespaces that script
# makes and removes (it needs root). It adds the section "Through the
# redirect (namespaces)" to the same report, with the same settings.
#
# Environment:
#   BENCH_ROUNDS   rounds (default 3)
#   BENCH_SECONDS  seconds per wrk run (default 5)
#   BENCH_WARMUP   seconds of warm-up per target at c=16, 0 for none (default 2)
#   BENCH_PATH     metadata path requested (default /latest/meta-data/instance-id)
#   BENCH_OUT      report to write (default docs/BENCHMARKS.md of the repository)
#   BENCH_KEEP     1: keep the work directory (wrk outputs, logs) and say where
#   BENCH_REDIRECT 0: skip the second part, through the redirect (default 1)
#
# Needs wrk and curl (scripts/install-test-deps.sh installs them) and Go; the
# second part root, ip and iptables as well.
set -euo pipefail

prog=bench
target_width=13
proxy_label=proxy
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
redirect=${BENCH_REDIRECT:-1}
concurrencies=(1 16)
targets=(direct bareproxy imdsguard-v1 imdsguard-v2)

for v in rounds seconds warmup; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "BENCH_${v^^}=${!v}: want a whole number"
done
((rounds >= 1)) || die "BENCH_ROUNDS must be at least 1"
((seconds >= 1)) || die "BENCH_SECONDS must be at least 1"
[[ $path == /latest/* ]] || die "BENCH_PATH=$path: want a path below /latest/"

for cmd in wrk curl go ss; do
	command -v "$cmd" >/dev/null ||
		die "$cmd not found; install the test dependencies with scripts/install-test-deps.sh (wrk, curl: apt-get install wrk curl; ss: iproute2)"
done
# The second part's needs, checked before the first part's minutes.
[[ $redirect == 0 || $redirect == 1 ]] || die "BENCH_REDIRECT=$redirect: want 0 or 1"
if [[ $redirect == 1 ]]; then
	((EUID == 0)) ||
		die "the second part (through the redirect, in network namespaces) needs root: run sudo make bench, or BENCH_REDIRECT=0 for the loopback part alone"
	for cmd in ip iptables; do
		command -v "$cmd" >/dev/null ||
			die "$cmd not found (the second part needs it); install the test dependencies with scripts/install-test-deps.sh, or BENCH_REDIRECT=0"
	done
	[[ -x $root/scripts/bench-redirect.sh ]] || die "scripts/bench-redirect.sh missing or not executable"
fi

work=$(mktemp -d /tmp/imdsguard-bench.XXXXXX)
pids=()         # the processes this script started, stopped by cleanup
declare -A names # their names, by pid

# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
	local pid
	trap '' INT TERM # a second Ctrl-C must not leave processes behind
	for pid in "${pids[@]}"; do
		stop "$pid"
	done
	if [[ $keep == 1 ]]; then
		echo "bench: work directory kept: $work" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- build -----------------------------------------------------------------

echo "bench: building"
if [[ -x $root/scripts/build-tools.sh ]]; then
	"$root/scripts/build-tools.sh"
else
	(cd "$root/tools" && go build -buildvcs=false -o ../bin/fakeimds ./cmd/fakeimds &&
		go build -buildvcs=false -o ../bin/bareproxy ./cmd/bareproxy)
fi
(cd "$root" && go build -buildvcs=false -o bin/imdsguard ./cmd/imdsguard) ||
	die "building the daemon failed"
(cd "$root/tools" && go build -buildvcs=false -o "$work/benchreport" ./cmd/benchreport) ||
	die "building tools/cmd/benchreport failed"
for b in fakeimds bareproxy imdsguard; do
	[[ -x $root/bin/$b ]] || die "bin/$b missing after the build"
done

# --- processes ---------------------------------------------------------------

# free_port prints a TCP port nothing listens on (on any address), not one of
# the ports already given out ("$@"). Racy in theory; a process that loses
# the race fails to start and wait_ready says so.
free_port() {
	local p
	for _ in $(seq 200); do
		p=$((20000 + RANDOM % 40000))
		[[ " $* " == *" $p "* ]] && continue
		if [[ -z $(ss -Htln "sport = :$p") ]]; then
			echo "$p"
			return 0
		fi
	done
	die "no free port found"
}

# wait_ready PID NAME URL [CURL ARGS...]: wait until URL answers HTTP at all.
wait_ready() {
	local pid=$1 name=$2 url=$3
	shift 3
	local code
	for _ in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || die "$name exited at start; its log: $(cat "$work/$name.err")"
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$@" "$url" || true)
		[[ $code != 000 ]] && return 0
		sleep 0.05
	done
	die "$name did not answer at $url within 5 s"
}

# fake_stat KEY: a count from fakeimds's /_fakeimds/stats.
fake_stat() {
	local json n
	json=$(curl -sf --max-time 2 "http://$fake_addr/_fakeimds/stats") || die "fakeimds stats unreachable"
	n=$(sed -n "s/.*\"$1\":\([0-9][0-9]*\).*/\1/p" <<<"$json")
	[[ -n $n ]] || die "fakeimds stats: no $1 in $json"
	echo "$n"
}

fake_port=$(free_port)
bare_port=$(free_port "$fake_port")
guard_port=$(free_port "$fake_port" "$bare_port")
fake_addr=127.0.0.1:$fake_port
bare_addr=127.0.0.1:$bare_port
guard_addr=127.0.0.1:$guard_port
ttl_header='X-aws-ec2-metadata-token-ttl-seconds: 21600'

"$root/bin/fakeimds" -listen "$fake_addr" >"$work/fakeimds.out" 2>"$work/fakeimds.err" &
fake_pid=$!
pids+=("$fake_pid")
names[$fake_pid]=fakeimds
wait_ready "$fake_pid" fakeimds "http://$fake_addr/_fakeimds/stats"

# The token for (a) and (b) comes first, straight from fakeimds; the PUT count
# read after it is the baseline: every later PUT is imdsguard's.
fake_token=$(curl -sf --max-time 2 -X PUT -H "$ttl_header" "http://$fake_addr/latest/api/token") ||
	die "token PUT to fakeimds failed"
puts_before=$(fake_stat token_puts)

"$root/bin/bareproxy" -listen "$bare_addr" -upstream "http://$fake_addr" >"$work/bareproxy.out" 2>"$work/bareproxy.err" &
bare_pid=$!
pids+=("$bare_pid")
names[$bare_pid]=bareproxy
wait_ready "$bare_pid" bareproxy "http://$bare_addr/_fakeimds/stats"

head -c 32 /dev/urandom >"$work/token.key"
chmod 600 "$work/token.key"
cat >"$work/imdsguard.yaml" <<EOF
version: 1
listen: {port: $guard_port}
upstream: {url: "http://$fake_addr"}
redirect: {ipv4: false, ipv6: false}
tokens: {key_file: $work/token.key}
admin: {socket: $work/admin.sock}
EOF
"$root/bin/imdsguard" run --config "$work/imdsguard.yaml" >"$work/imdsguard.out" 2>"$work/imdsguard.err" &
guard_pid=$!
pids+=("$guard_pid")
names[$guard_pid]=imdsguard
# A GET on the token path is answered locally (405): no upstream traffic yet.
wait_ready "$guard_pid" imdsguard "http://$guard_addr/latest/api/token"

guard_token=$(curl -sf --max-time 2 -X PUT -H "$ttl_header" "http://$guard_addr/latest/api/token") ||
	die "token PUT to imdsguard failed: $(tail -n 3 "$work/imdsguard.err")"

# --- what each target is asked -------------------------------------------------

url_of() {
	case $1 in
	direct) echo "http://$fake_addr$path" ;;
	bareproxy) echo "http://$bare_addr$path" ;;
	imdsguard-v1 | imdsguard-v2) echo "http://$guard_addr$path" ;;
	esac
}

# headers_of TARGET: the curl/wrk -H arguments, one a line.
headers_of() {
	case $1 in
	direct | bareproxy) printf '%s\n' -H "X-aws-ec2-metadata-token: $fake_token" ;;
	imdsguard-v2) printf '%s\n' -H "X-aws-ec2-metadata-token: $guard_token" ;;
	esac
}

# in_client TARGET CMD...: run CMD where TARGET's client runs: here, on loopback.
in_client() {
	shift
	"$@"
}

preflight
echo "bench: targets answer 200: fakeimds $fake_addr, bareproxy $bare_addr, imdsguard $guard_addr"

# --- wrk -------------------------------------------------------------------------

write_report_lua

# proxy_pid TARGET: the proxy process a target goes through, 0 for none.
proxy_pid() {
	case $1 in
	direct) echo 0 ;;
	bareproxy) echo "$bare_pid" ;;
	imdsguard-v1 | imdsguard-v2) echo "$guard_pid" ;;
	esac
}

warm_up
measure

# --- counts and report -----------------------------------------------------------

collect_counts

revision=$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
command="BENCH_ROUNDS=$rounds BENCH_SECONDS=$seconds BENCH_WARMUP=$warmup scripts/bench.sh"
[[ $path == /latest/meta-data/instance-id ]] || command="BENCH_PATH=$path $command"

with_redirect=false
if [[ $redirect == 1 ]]; then
	with_redirect=true
fi
mkdir -p "$(dirname "$out")"
status=0
"$work/benchreport" -runs "$runs" -out "$out" \
	-command "$command" -date "$(date -u '+%Y-%m-%d %H:%M UTC')" \
	-nproc "$(nproc)" -kernel "$(uname -r)" -go "$(go version)" -cpu "${cpu:-unknown}" \
	-revision "$revision" -path "$path" \
	-rounds "$rounds" -seconds "$seconds" -warmup "$warmup" \
	-puts-before "$puts_before" -upstream-puts $((puts_after - puts_before)) \
	-upstream-gets "$gets" -extra-requests "$extra_requests" -in-flight-max "$in_flight_max" -upstream-unauthorized "$unauthorized" \
	-audit-bytes "$audit_bytes" -audit-lines "$audit_lines" -guard-rule "$guard_rule" -guard-caller "$guard_caller" \
	-clk-tck "$clk_tck" -fakeimds "$fake_addr" -bareproxy "$bare_addr" -imdsguard "$guard_addr" \
	-with-redirect="$with_redirect" || status=$?

# --- second part: through the redirect -----------------------------------------

if [[ $redirect == 1 ]]; then
	# The loopback processes would only sit on memory: stop them first.
	for pid in "${pids[@]}"; do
		stop "$pid"
	done
	pids=()
	echo "bench: second part, through the redirect: scripts/bench-redirect.sh"
	rstatus=0
	BENCH_ROUNDS=$rounds BENCH_SECONDS=$seconds BENCH_WARMUP=$warmup BENCH_PATH=$path \
		BENCH_OUT=$out BENCH_KEEP=$keep BENCH_NO_BUILD=1 BENCH_COMMAND=$command \
		"$root/scripts/bench-redirect.sh" || rstatus=$?
	((status != 0)) || status=$rstatus
fi
exit "$status"
