#!/usr/bin/env bash
# Benchmarks imdsguard against nginx, the reverse proxy users reach for, on
# loopback only, and rewrites docs/BENCHMARKS.md with the results.
#
# It starts fakeimds (a fast tokens-required fake IMDS) and, in front of it on
# free 127.0.0.1 ports, nginx twice (a plain reverse proxy, and one with
# proxy_cache and proxy_cache_lock: scripts/lib/bench-nginx.sh has the
# configuration and why), imdsguard twice (endpoint mode, no redirect rules:
# `cache: {enabled: false}` and `cache: {enabled: true}`; a daemon without a
# cache section, before the response cache landed, runs only uncached and
# the report says the cached target was skipped) and bareproxy (Go's
# httputil.ReverseProxy, the floor of a Go proxy), gofloor twice (a
# constant answer, no proxying: the floor of a Go server, served the way
# imdsguard serves and the way nginx does) and gofloor once more as a proxy
# (each request to fakeimds over at most imdsguard's upstream.MaxConns kept
# connections, nothing decided: the floor of imdsguard's uncached path), and
# the two server floors once more, each spending BENCH_FLOOR_WORK of CPU on
# every request before it answers (about what imdsguard's cached read costs
# above them: a Go server of either kind doing imdsguard's work). It
# measures with wrk at
# concurrency 1 (-t1 -c1), 16, 256 and 1000 (-t2 -cN), keep-alive:
#   (a) direct            fakeimds, v2 with a fakeimds token
#   (b) nginx             v2, the fakeimds token forwarded
#   (c) nginx-cache       v2, the fakeimds token forwarded (and in the cache key)
#   (d) imdsguard-v2      uncached, an imdsguard token
#   (e) imdsguard-cache-v2 cached, an imdsguard token
#   (f) imdsguard-v1      uncached, no token: upgraded into imdsguard's session
#   (g) bareproxy         v2, the fakeimds token forwarded
#   (h) gofloor           a goroutine per connection, the runtime's netpoller
#   (i) gofloor-epoll     an event loop per CPU on a locked thread, epoll_wait
#   (j) gofloor-proxy     v2, the fakeimds token forwarded; MaxConns connections
#   (k) gofloor-work      as (h), BENCH_FLOOR_WORK of CPU per request
#   (l) gofloor-epoll-work as (i), BENCH_FLOOR_WORK of CPU per request
# The runs are interleaved (every target at c=1, every target at c=16, ...,
# then the next round) and each result is the median over the rounds, so
# machine noise hits all targets alike. Besides wrk's requests/s and latency
# percentiles it records, per run, the CPU time the proxy (nginx: master and
# workers) and fakeimds spent per request (/proc/PID/stat), the GETs that
# reached fakeimds, and at c=1000 the proxy's PSS (/proc/PID/smaps_rollup)
# sampled once a second during the run, with the connections it holds
# counted (ss), and once the run is over.
#
# Performance is reported, never asserted; the script fails only on
# correctness: a non-2xx answer or socket error in any run, an upstream 401,
# a proxy without a cache whose upstream GETs do not match the requests it
# answered (one each, give or take those in flight when a run stopped), or
# an imdsguard sending other than exactly one token PUT upstream (once the
# runs are done, the report is written even when a check fails; a failed
# pre-flight or warm-up stops early).
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
#   BENCH_CONCURRENCIES  wrk connections, one run each (default "1 16 256 1000")
#   BENCH_PATH     metadata path requested (default /latest/meta-data/instance-id)
#   BENCH_OUT      report to write (default docs/BENCHMARKS.md of the repository)
#   BENCH_KEEP     1: keep the work directory (wrk outputs, logs) and say where
#   BENCH_REDIRECT 0: skip the second part, through the redirect (default 1)
#   BENCH_FLOOR_WORK  CPU the floors (k) and (l) spend per request (default 6us)
#
# Needs wrk, curl and nginx (scripts/install-test-deps.sh installs them, nginx
# as nginx-light), ss and Go; the second part root, ip and iptables as well.
# 1,000 connections need more than 1,024 open files: the script raises its
# soft limit to the hard one.
set -euo pipefail

prog=bench
target_width=18
proxy_label=proxy
pss_conc=1000 # memory and open connections are sampled from this concurrency on
# shellcheck source=SCRIPTDIR/lib/bench-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/bench-common.sh"
# shellcheck source=SCRIPTDIR/lib/bench-nginx.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/bench-nginx.sh"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PATH="$PATH:/usr/local/go/bin:/usr/sbin"

rounds=${BENCH_ROUNDS:-3}
seconds=${BENCH_SECONDS:-5}
warmup=${BENCH_WARMUP:-2}
path=${BENCH_PATH:-/latest/meta-data/instance-id}
out=${BENCH_OUT:-$root/docs/BENCHMARKS.md}
keep=${BENCH_KEEP:-0}
redirect=${BENCH_REDIRECT:-1}
floor_work=${BENCH_FLOOR_WORK:-6us}
read -r -a concurrencies <<<"${BENCH_CONCURRENCIES:-1 16 256 1000}"
# (e) is dropped below when the daemon has no cache section.
targets=(direct nginx nginx-cache imdsguard-v2 imdsguard-cache-v2 imdsguard-v1 bareproxy gofloor gofloor-epoll gofloor-proxy gofloor-work gofloor-epoll-work)

for v in rounds seconds warmup; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "BENCH_${v^^}=${!v}: want a whole number"
done
((rounds >= 1)) || die "BENCH_ROUNDS must be at least 1"
((seconds >= 1)) || die "BENCH_SECONDS must be at least 1"
((${#concurrencies[@]} >= 1)) || die "BENCH_CONCURRENCIES is empty"
max_conc=0
for c in "${concurrencies[@]}"; do
	[[ $c =~ ^[1-9][0-9]*$ ]] || die "BENCH_CONCURRENCIES: '$c' is not a positive whole number"
	((c <= 5000)) || die "BENCH_CONCURRENCIES: $c connections is more than this script is sized for (5000)"
	((c > max_conc)) && max_conc=$c
done
[[ $path == /latest/* ]] || die "BENCH_PATH=$path: want a path below /latest/"
[[ $floor_work =~ ^[0-9]+(ns|us|ms)$ ]] || die "BENCH_FLOOR_WORK=$floor_work: want a duration such as 6us"

for cmd in wrk curl go ss nginx; do
	command -v "$cmd" >/dev/null ||
		die "$cmd not found; install the test dependencies with scripts/install-test-deps.sh (wrk, curl, nginx: apt-get install wrk curl nginx-light; ss: iproute2)"
done
# wrk holds every connection open at once, each proxy as many again plus its
# upstream connections: raise the soft limit of open files (inherited by
# everything started here) to the hard one.
need_files=$((3 * max_conc + 256))
if (($(ulimit -Sn) < need_files)); then
	ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true
	(($(ulimit -Sn) >= need_files)) ||
		die "open files limit $(ulimit -Sn) (hard $(ulimit -Hn)): $max_conc connections need about $need_files; raise it (ulimit -n) or lower BENCH_CONCURRENCIES"
fi
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

# --- the machine -------------------------------------------------------------

# busy_share SECONDS: the share of all CPUs busy over SECONDS (from
# /proc/stat), in percent: what else runs on the machine, measured while
# nothing of this script does.
busy_share() {
	local -a a b
	read -r -a a < <(head -n 1 /proc/stat)
	sleep "$1"
	read -r -a b < <(head -n 1 /proc/stat)
	awk -v u="$((b[1] + b[2] + b[3] + b[6] + b[7] + b[8] - a[1] - a[2] - a[3] - a[6] - a[7] - a[8]))" \
		-v i="$((b[4] + b[5] - a[4] - a[5]))" 'BEGIN { printf "%.0f", (u + i) ? 100 * u / (u + i) : 0 }'
}

load_before=$(cut -d ' ' -f 1-3 /proc/loadavg)
busy_before=$(busy_share 3)
echo "bench: before the run, other processes keep ${busy_before}% of the CPUs busy (load average $load_before)"

# --- build -----------------------------------------------------------------

echo "bench: building"
if [[ -x $root/scripts/build-tools.sh ]]; then
	"$root/scripts/build-tools.sh"
else
	(cd "$root/tools" && go build -buildvcs=false -o ../bin/fakeimds ./cmd/fakeimds &&
		go build -buildvcs=false -o ../bin/bareproxy ./cmd/bareproxy &&
		go build -buildvcs=false -o ../bin/gofloor ./cmd/gofloor)
fi
(cd "$root" && go build -buildvcs=false -o bin/imdsguard ./cmd/imdsguard) ||
	die "building the daemon failed"
(cd "$root/tools" && go build -buildvcs=false -o "$work/benchreport" ./cmd/benchreport) ||
	die "building tools/cmd/benchreport failed"
for b in fakeimds bareproxy gofloor imdsguard; do
	[[ -x $root/bin/$b ]] || die "bin/$b missing after the build"
done

# --- processes ---------------------------------------------------------------

# free_port prints a TCP port nothing listens on (on any address), not one of
# the ports already given out (the values of port), and below the kernel's
# ephemeral range, where the proxies' own upstream connections cannot take it
# first. Racy in theory; a process that loses the race fails to start and
# wait_ready says so.
declare -A port # by process: fake nginx nginx-cache bare guard guard-cache and the floors by target
read -r ephemeral_low _ </proc/sys/net/ipv4/ip_local_port_range
((ephemeral_low > 11000)) || die "the ephemeral port range starts at $ephemeral_low: no room below it for the benchmark's listeners"
free_port() {
	local p
	for _ in $(seq 200); do
		p=$((10000 + RANDOM % (ephemeral_low - 10000)))
		[[ " ${port[*]} " == *" $p "* ]] && continue
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
		kill -0 "$pid" 2>/dev/null || die "$name exited at start; its log: $(tail -n 5 "$work/$name.err")"
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

floors=(gofloor gofloor-epoll gofloor-proxy gofloor-work gofloor-epoll-work)
for p in fake nginx nginx-cache bare guard guard-cache "${floors[@]}"; do
	port[$p]=$(free_port)
done
fake_addr=127.0.0.1:${port[fake]}
ttl_header='X-aws-ec2-metadata-token-ttl-seconds: 21600'

"$root/bin/fakeimds" -listen "$fake_addr" >"$work/fakeimds.out" 2>"$work/fakeimds.err" &
fake_pid=$!
pids+=("$fake_pid")
names[$fake_pid]=fakeimds
wait_ready "$fake_pid" fakeimds "http://$fake_addr/_fakeimds/stats"

# The token for (a), (b), (c) and (g) comes first, straight from fakeimds;
# the PUT count read after it is the baseline: every later PUT is an
# imdsguard's.
fake_token=$(curl -sf --max-time 2 -X PUT -H "$ttl_header" "http://$fake_addr/latest/api/token") ||
	die "token PUT to fakeimds failed"
puts_before=$(fake_stat token_puts)

start_nginx nginx "${port[nginx]}" "$fake_addr" 0
nginx_plain_pid=$nginx_pid
wait_ready "$nginx_plain_pid" nginx "http://127.0.0.1:${port[nginx]}/_fakeimds/stats"
start_nginx nginx-cache "${port[nginx-cache]}" "$fake_addr" 1
nginx_cache_pid=$nginx_pid
wait_ready "$nginx_cache_pid" nginx-cache "http://127.0.0.1:${port[nginx-cache]}/_fakeimds/stats"
nginx_version=$(nginx -v 2>&1)
nginx_version=${nginx_version#nginx version: }

"$root/bin/bareproxy" -listen "127.0.0.1:${port[bare]}" -upstream "http://$fake_addr" >"$work/bareproxy.out" 2>"$work/bareproxy.err" &
bare_pid=$!
pids+=("$bare_pid")
names[$bare_pid]=bareproxy
wait_ready "$bare_pid" bareproxy "http://127.0.0.1:${port[bare]}/_fakeimds/stats"

# The floors answer every request with what fakeimds answers the path.
floor_body=$(curl -sf --max-time 2 -H "X-aws-ec2-metadata-token: $fake_token" "http://$fake_addr$path") ||
	die "fakeimds does not answer $path with 200"
# The proxy floor holds as many upstream connections as imdsguard may.
max_conns=$(sed -n 's/^const MaxConns = \([0-9][0-9]*\)$/\1/p' "$root/internal/upstream/client.go")
[[ -n $max_conns ]] || die "no 'const MaxConns = N' in internal/upstream/client.go for the proxy floor"
# A target NAME-work is NAME spending BENCH_FLOOR_WORK on each request.
declare -A floor_mode=([gofloor]=goroutine [gofloor-epoll]=epoll [gofloor-proxy]=proxy) floor_pid # by target
for t in "${floors[@]}"; do
	t_work=0
	[[ $t != *-work ]] || t_work=$floor_work
	"$root/bin/gofloor" -listen "127.0.0.1:${port[$t]}" -mode "${floor_mode[${t%-work}]}" -body "$floor_body" -work "$t_work" \
		-upstream "$fake_addr" -conns "$max_conns" >"$work/$t.out" 2>"$work/$t.err" &
	floor_pid[$t]=$!
	pids+=("${floor_pid[$t]}")
	names[${floor_pid[$t]}]=$t
	# with the token: the proxy floor passes the request on, and fakeimds
	# must see no 401
	wait_ready "${floor_pid[$t]}" "$t" "http://127.0.0.1:${port[$t]}$path" -H "X-aws-ec2-metadata-token: $fake_token"
done

# guard_config PORT NAME [CACHE]: an imdsguard configuration, its cache
# section only when CACHE (true or false) is given.
guard_config() {
	local listen=$1 name=$2 cache=${3:-}
	head -c 32 /dev/urandom >"$work/$name.key"
	chmod 600 "$work/$name.key"
	cat <<-EOF
	version: 1
	listen: {port: $listen}
	upstream: {url: "http://$fake_addr"}
	redirect: {ipv4: false, ipv6: false}
	tokens: {key_file: $work/$name.key}
	admin: {socket: $work/$name.sock}
	EOF
	[[ -z $cache ]] || echo "cache: {enabled: $cache}"
}

# Does this imdsguard have a response cache? Its configuration says: a
# daemon from before the cache refuses the section as an unknown field.
guard_config "${port[guard-cache]}" imdsguard-cache true >"$work/imdsguard-cache.yaml"
cache_skipped=
if ! "$root/bin/imdsguard" policy check "$work/imdsguard-cache.yaml" >"$work/cache-check.txt" 2>&1; then
	grep -q 'cache' "$work/cache-check.txt" ||
		die "imdsguard policy check refuses the benchmark's configuration: $(cat "$work/cache-check.txt")"
	cache_skipped="this imdsguard ($(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)) has no response cache: \`imdsguard policy check\` refuses \`cache: {enabled: true}\` ($(head -n 1 "$work/cache-check.txt" | sed 's|^.*\.yaml:[0-9]*:[0-9]*: ||'))"
	echo "bench: (e) imdsguard-cache-v2 skipped: $cache_skipped"
	targets=(direct nginx nginx-cache imdsguard-v2 imdsguard-v1 bareproxy "${floors[@]}")
	guard_config "${port[guard]}" imdsguard >"$work/imdsguard.yaml"
else
	guard_config "${port[guard]}" imdsguard false >"$work/imdsguard.yaml"
fi
"$root/bin/imdsguard" policy check "$work/imdsguard.yaml" >"$work/policy-check.txt" 2>&1 ||
	die "imdsguard policy check refuses the configuration: $(cat "$work/policy-check.txt")"

# start_guard NAME PORT: imdsguard with $work/NAME.yaml; sets guard_pid.
# A GET on the token path is answered locally (405): no upstream traffic yet.
start_guard() {
	local name=$1 listen=$2
	"$root/bin/imdsguard" run --config "$work/$name.yaml" >"$work/$name.out" 2>"$work/$name.err" &
	guard_pid=$!
	pids+=("$guard_pid")
	names[$guard_pid]=$name
	wait_ready "$guard_pid" "$name" "http://127.0.0.1:$listen/latest/api/token"
}

start_guard imdsguard "${port[guard]}"
guard_plain_pid=$guard_pid
guard_token=$(curl -sf --max-time 2 -X PUT -H "$ttl_header" "http://127.0.0.1:${port[guard]}/latest/api/token") ||
	die "token PUT to imdsguard failed: $(tail -n 3 "$work/imdsguard.err")"
guards=1
guard_cache_pid=0
guard_cache_token=
if [[ -z $cache_skipped ]]; then
	start_guard imdsguard-cache "${port[guard-cache]}"
	guard_cache_pid=$guard_pid
	guard_cache_token=$(curl -sf --max-time 2 -X PUT -H "$ttl_header" "http://127.0.0.1:${port[guard-cache]}/latest/api/token") ||
		die "token PUT to the cached imdsguard failed: $(tail -n 3 "$work/imdsguard-cache.err")"
	guards=2
fi

# --- what each target is asked -------------------------------------------------

# proxy_port TARGET: the port the target's client asks.
proxy_port() {
	case $1 in
	direct) echo "${port[fake]}" ;;
	nginx) echo "${port[nginx]}" ;;
	nginx-cache) echo "${port[nginx-cache]}" ;;
	bareproxy) echo "${port[bare]}" ;;
	gofloor*) echo "${port[$1]}" ;;
	imdsguard-v1 | imdsguard-v2) echo "${port[guard]}" ;;
	imdsguard-cache-v2) echo "${port[guard-cache]}" ;;
	esac
}

url_of() {
	echo "http://127.0.0.1:$(proxy_port "$1")$path"
}

# headers_of TARGET: the curl/wrk -H arguments, one a line.
headers_of() {
	case $1 in
	direct | nginx | nginx-cache | bareproxy | gofloor*) printf '%s\n' -H "X-aws-ec2-metadata-token: $fake_token" ;;
	imdsguard-v2) printf '%s\n' -H "X-aws-ec2-metadata-token: $guard_token" ;;
	imdsguard-cache-v2) printf '%s\n' -H "X-aws-ec2-metadata-token: $guard_cache_token" ;;
	esac
}

# in_client TARGET CMD...: run CMD where TARGET's client runs: here, on loopback.
in_client() {
	shift
	"$@"
}

preflight
echo "bench: targets answer 200: ${targets[*]}"

# --- wrk -------------------------------------------------------------------------

write_report_lua

# proxy_pid TARGET: the proxy process a target goes through, 0 for none
# (nginx: the master; its workers are its children).
proxy_pid() {
	case $1 in
	direct) echo 0 ;;
	nginx) echo "$nginx_plain_pid" ;;
	nginx-cache) echo "$nginx_cache_pid" ;;
	bareproxy) echo "$bare_pid" ;;
	gofloor*) echo "${floor_pid[$1]}" ;;
	imdsguard-v1 | imdsguard-v2) echo "$guard_plain_pid" ;;
	imdsguard-cache-v2) echo "$guard_cache_pid" ;;
	esac
}

warm_up
measure

busy_after=$(busy_share 3)
load_after=$(cut -d ' ' -f 1-3 /proc/loadavg)
echo "bench: after the run, other processes keep ${busy_after}% of the CPUs busy (load average $load_after)"

# --- counts and report -----------------------------------------------------------

collect_counts

revision=$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
command="BENCH_ROUNDS=$rounds BENCH_SECONDS=$seconds BENCH_WARMUP=$warmup scripts/bench.sh"
[[ $floor_work == 6us ]] || command="BENCH_FLOOR_WORK=$floor_work $command"
[[ ${concurrencies[*]} == "1 16 256 1000" ]] || command="BENCH_CONCURRENCIES='${concurrencies[*]}' $command"
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
	-puts-before "$puts_before" -upstream-puts $((puts_after - puts_before)) -guards "$guards" \
	-upstream-gets "$gets" -extra-requests "$extra_requests" -in-flight-max "$in_flight_max" -upstream-unauthorized "$unauthorized" \
	-audit-bytes "$audit_bytes" -audit-lines "$audit_lines" -guard-rule "$guard_rule" -guard-caller "$guard_caller" \
	-clk-tck "$clk_tck" -fakeimds "$fake_addr" -imdsguard "127.0.0.1:${port[guard]}" \
	-cache-skipped "$cache_skipped" -nginx-version "$nginx_version" -nginx-valid "$nginx_valid" \
	-nginx-conf "$work/nginx/nginx.conf" -nginx-cache-conf "$work/nginx-cache/nginx.conf" \
	-guard-config "$work/imdsguard.yaml" -guard-cache-config "$work/imdsguard-cache.yaml" \
	-busy-before "$busy_before" -busy-after "$busy_after" -load-before "$load_before" -load-after "$load_after" \
	-pss-conc "$pss_conc" -floor-work "$floor_work" -with-redirect="$with_redirect" || status=$?

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
		BENCH_OUT=$out BENCH_KEEP=$keep BENCH_NO_BUILD=1 BENCH_COMMAND=$command BENCH_REVISION=$revision \
		"$root/scripts/bench-redirect.sh" || rstatus=$?
	((status != 0)) || status=$rstatus
fi
exit "$status"
