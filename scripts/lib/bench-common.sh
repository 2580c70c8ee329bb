# shellcheck shell=bash
# shellcheck disable=SC2154 # the variables listed below are set by the sourcing script
# Shared by scripts/bench.sh and scripts/bench-redirect.sh; sourced, not run.
# The sourcing script sets:
#   prog            its name in messages
#   names           an associative array pid -> process name (for stop)
#   work            its temporary directory
#   targets, concurrencies, rounds, seconds, warmup
#   target_width    the width of target names in progress lines
#   proxy_label     what the proxy is called in progress lines
#   fake_pid        fakeimds's pid
#   pss_conc        (optional) from this concurrency on, bench samples the
#                   proxy's memory and open connections halfway through a
#                   run; it then needs proxy_port TARGET (the port the proxy
#                   serves the target on)
# and defines fake_stat FIELD (a count fakeimds keeps), url_of TARGET, headers_of TARGET (wrk -H arguments, one a line),
# proxy_pid TARGET (0 for none; nginx: its master, whose children count
# with it) and in_client TARGET CMD... (CMD run where the target's client
# runs).

die() {
	echo "$prog: $*" >&2
	exit 1
}

# stop PID: SIGTERM, wait up to 10 s, then SIGKILL (imdsguard exits at once
# on SIGTERM, so a daemon that ignores it is news); reaps it either way.
# shellcheck disable=SC2317 # called from the scripts' cleanup, the EXIT trap
stop() {
	local pid=$1 s=
	kill "$pid" 2>/dev/null || return 0
	for _ in $(seq 100); do
		s=$(cat "/proc/$pid/stat" 2>/dev/null) || break
		s=${s##*) }
		[[ ${s%% *} == Z ]] && break
		sleep 0.1
	done
	if [[ -n $s && ${s%% *} != Z ]]; then
		echo "$prog: ${names[$pid]:-process} (pid $pid) did not exit within 10 s of SIGTERM; killing it" >&2
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

# alive PID NAME TARGET: fail the run when a daemon died during it. wrk
# catches SIGINT and exits 0, so bash never sees the Ctrl-C (the foreground
# command handled it): the daemons, which got it too and stopped, are how an
# interrupted run shows.
alive() {
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || s=
	s=${s##*) }
	if [[ -z $s || ${s%% *} == Z ]]; then
		die "$2 (pid $1) exited during the run on $3 (interrupted?)"
	fi
}

# proc_pids PID: PID and its live children (nginx: the master, its workers
# and cache processes), one a line.
proc_pids() {
	local f
	echo "$1"
	for f in /proc/"$1"/task/*/children; do
		[[ -r $f ]] || continue
		tr ' ' '\n' <"$f" | sed '/^$/d'
	done
}

# cpu_ticks PID: user+system CPU time so far, in clock ticks, of a process
# (all its threads, and its children that it reaped: iptables for imdsguard,
# an exited cache loader for nginx) and of its live children; 0 for pid 0.
cpu_ticks() {
	local s p n=0
	local -a f
	if (($1 == 0)); then
		echo 0
		return
	fi
	[[ -r /proc/$1/stat ]] || die "process $1 is gone"
	for p in $(proc_pids "$1"); do
		s=$(cat "/proc/$p/stat" 2>/dev/null) || continue # a child that just exited
		read -r -a f <<<"${s##*) }"                        # fields after "pid (comm) ": state is f[0]
		n=$((n + f[11] + f[12] + f[13] + f[14]))          # utime stime cutime cstime
	done
	echo "$n"
}

# pss_kb PID: proportional set size of a process and its live children, in
# kB (/proc/PID/smaps_rollup: shared pages are split among their users, so
# nginx's master and workers add up without counting shared code twice).
pss_kb() {
	local p n=0 kb
	for p in $(proc_pids "$1"); do
		kb=$(awk '$1 == "Pss:" { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null) || kb=0
		n=$((n + ${kb:-0}))
	done
	echo "$n"
}

# settled_gets: fakeimds's GET count once it has stopped moving (requests a
# proxy still had in flight when wrk stopped land in the run that sent them,
# not in the next one). Gives up after 5 s of movement.
settled_gets() {
	local a b
	a=$(fake_stat gets)
	for _ in $(seq 50); do
		sleep 0.1
		b=$(fake_stat gets)
		[[ $a == "$b" ]] && break
		a=$b
	done
	echo "$a"
}

# sample_during TARGET PID SECONDS: over a run of SECONDS, samples the
# proxy's PSS (kB) and the established connections on its port (what the
# client holds open) once a second from the first second to the last but
# one (once halfway for a run of 2 s or less) and prints the largest of
# each: the memory a proxy needs while the connections are open.
sample_during() {
	local target=$1 pid=$2 secs=$3 listen n i pss conns max_pss=0 max_conns=0
	listen=$(proxy_port "$target")
	[[ $listen =~ ^[0-9]+$ ]] || die "no port for $target"
	n=$((secs - 2))
	((n >= 1)) || n=1
	if ((secs > 2)); then
		sleep 1
	else
		sleep 0.5
	fi
	for ((i = 0; i < n; i++)); do
		((i == 0)) || sleep 1
		pss=$(pss_kb "$pid")
		conns=$(in_client "$target" ss -Htn state established "( sport = :$listen )" | wc -l)
		((pss > max_pss)) && max_pss=$pss
		((conns > max_conns)) && max_conns=$conns
	done
	printf '%d %d\n' "$max_pss" "$max_conns"
}

# preflight: every target answers 200 with the body fakeimds gives directly
# (fakeimds requires its own tokens: a 200 for v1, or for an imdsguard token,
# can only come through imdsguard).
preflight() {
	local t code want
	local -a h
	mapfile -t h < <(headers_of direct)
	want=$(in_client direct curl -sf --max-time 2 "${h[@]}" "$(url_of direct)") || die "fakeimds does not answer $path with 200"
	for t in "${targets[@]}"; do
		mapfile -t h < <(headers_of "$t")
		code=$(in_client "$t" curl -s -o "$work/preflight.body" -w '%{http_code}' --max-time 2 "${h[@]}" "$(url_of "$t")" || true)
		[[ $code == 200 ]] || die "pre-flight: $t answers $path with $code, not 200 ($(head -c 300 "$work/preflight.body"); imdsguard log: $(tail -n 2 "$work/imdsguard.err"))"
		[[ $(<"$work/preflight.body") == "$want" ]] || die "pre-flight: $t answers a different body than fakeimds"
	done
}

# write_report_lua writes the wrk script that prints one machine-readable
# line when a run is done (latency in µs), which bench reads.
write_report_lua() {
	cat >"$work/report.lua" <<-'EOF'
	-- Prints one machine-readable line when wrk is done (latency in µs).
	done = function(summary, latency, requests)
	  local e = summary.errors
	  io.write(string.format(
	    "BENCHRESULT\t%d\t%d\t%.1f\t%.1f\t%d\t%d\t%d\t%d\t%d\n",
	    summary.requests, summary.duration,
	    latency:percentile(50), latency:percentile(99),
	    e.connect, e.read, e.write, e.status, e.timeout))
	end
	EOF
}

# bench TAG TARGET CONC SECONDS: run wrk (its output kept in the work
# directory as wrk-TAG-TARGET-cCONC.txt); prints the result fields, tab-separated:
# requests duration_us p50_us p99_us err_connect err_read err_write err_status err_timeout
# proxy_cpu_ticks fakeimds_cpu_ticks upstream_gets pss_during_kb pss_after_kb conns_during
# (upstream_gets: the GETs fakeimds received over the run; the last three
# only from $pss_conc on, else 0: the largest PSS and connection count seen
# during the run, and the PSS once it is over).
bench() {
	local tag=$1 target=$2 conc=$3 secs=$4 threads=1 log line pp p0 f0 p1 f1 g0 g1 spid=0
	local pss_after=0 sample="0 0"
	((conc > 1)) && threads=2
	log="$work/wrk-$tag-$target-c$conc.txt"
	local -a h r
	mapfile -t h < <(headers_of "$target")
	pp=$(proxy_pid "$target")
	g0=$(fake_stat gets)
	p0=$(cpu_ticks "$pp") || exit 1
	f0=$(cpu_ticks "$fake_pid") || exit 1
	if ((pp != 0 && ${pss_conc:-0} > 0 && conc >= ${pss_conc:-0})); then
		sample_during "$target" "$pp" "$secs" >"$work/sample.txt" &
		spid=$!
	fi
	if ! in_client "$target" wrk -t"$threads" -c"$conc" -d"${secs}s" --timeout 10s --latency -s "$work/report.lua" "${h[@]}" "$(url_of "$target")" >"$log" 2>&1; then
		die "wrk failed on $target c=$conc: $(cat "$log")"
	fi
	alive "$fake_pid" fakeimds "$target"
	((pp == 0)) || alive "$pp" "${names[$pp]}" "$target"
	line=$(grep '^BENCHRESULT' "$log") || die "no result from wrk on $target c=$conc: $(cat "$log")"
	read -r -a r <<<"${line#BENCHRESULT	}"
	((r[1] >= secs * 900000)) || die "wrk on $target c=$conc stopped after $((r[1] / 1000)) ms of ${secs} s (interrupted?)"
	p1=$(cpu_ticks "$pp") || exit 1
	f1=$(cpu_ticks "$fake_pid") || exit 1
	g1=$(settled_gets)
	if ((spid != 0)); then
		wait "$spid" || die "sampling $target's memory during the run failed"
		sample=$(<"$work/sample.txt")
		[[ $sample =~ ^[0-9]+\ [0-9]+$ ]] || die "sampling $target's memory during the run: got '$sample'"
		pss_after=$(pss_kb "$pp")
	fi
	printf '%s\t%d\t%d\t%d\t%d\t%d\t%d\n' "${line#BENCHRESULT	}" $((p1 - p0)) $((f1 - f0)) \
		$((g1 - g0)) "${sample% *}" "$pss_after" "${sample#* }"
}

# warm_up runs every target at c=16 for $warmup seconds. It sets
# extra_requests (requests that reached fakeimds outside the measured runs:
# one pre-flight GET per target and one to learn the answer, then the
# warm-up's) and in_flight_max (requests that can have been in flight when a
# wrk run ended: wrk does not count those, fakeimds may have).
warm_up() {
	local t res
	local -a f
	extra_requests=$((${#targets[@]} + 1))
	in_flight_max=0
	((warmup > 0)) || return 0
	echo "$prog: warm-up, ${warmup}s per target"
	for t in "${targets[@]}"; do
		res=$(bench warmup "$t" 16 "$warmup")
		read -r -a f <<<"$res"
		extra_requests=$((extra_requests + f[0]))
		in_flight_max=$((in_flight_max + 16))
		((f[4] + f[5] + f[6] + f[7] + f[8] == 0)) || die "warm-up on $t: errors (connect read write status timeout: ${f[*]:4})"
	done
}

# measure runs the interleaved rounds (every target at one concurrency, then
# the next concurrency, then the next round) into $runs, one line a run.
measure() {
	local r c t res
	local -a f
	clk_tck=$(getconf CLK_TCK)
	runs="$work/runs.tsv"
	: >"$runs"
	echo "$prog: $rounds round(s) × ${#concurrencies[@]} concurrencies × ${#targets[@]} targets × ${seconds}s"
	for ((r = 1; r <= rounds; r++)); do
		for c in "${concurrencies[@]}"; do
			for t in "${targets[@]}"; do
				res=$(bench "round$r" "$t" "$c" "$seconds")
				printf '%s\t%s\t%s\t%s\n' "$r" "$c" "$t" "$res" >>"$runs"
				read -r -a f <<<"$res"
				in_flight_max=$((in_flight_max + c))
				progress "$r" "$c" "$t" "${f[@]}"
			done
		done
	done
}

# progress ROUND C TARGET FIELDS...: one line per run on stdout.
progress() {
	local r=$1 c=$2 t=$3
	shift 3
	local -a f=("$@")
	local mem=
	((f[12] == 0)) || mem=$(printf '  PSS %.1f MB with %d connections' "$(awk -v k="${f[12]}" 'BEGIN { print k / 1024 }')" "${f[14]}")
	printf "%s: round %d c=%-4d %-${target_width}s %8.0f req/s  p50 %7.0f µs  p99 %7.0f µs  errors %d  CPU/req: %s %5.1f µs, fakeimds %5.1f µs  upstream GETs %d%s\n" \
		"$prog" "$r" "$c" "$t" "$(awk -v n="${f[0]}" -v d="${f[1]}" 'BEGIN { print n / (d / 1e6) }')" \
		"${f[2]}" "${f[3]}" $((f[4] + f[5] + f[6] + f[7] + f[8])) "$proxy_label" \
		"$(awk -v t="${f[9]}" -v n="${f[0]}" -v hz="$clk_tck" 'BEGIN { print t / hz / n * 1e6 }')" \
		"$(awk -v t="${f[10]}" -v n="${f[0]}" -v hz="$clk_tck" 'BEGIN { print t / hz / n * 1e6 }')" \
		"${f[11]}" "$mem"
}

# collect_counts reads what fakeimds counted (puts_after, gets, unauthorized),
# the size of imdsguard's audit log (audit_bytes, audit_lines), and who
# imdsguard saw and which rule served wrk (guard_caller, guard_rule, from its
# first v1 request).
# shellcheck disable=SC2034 # its outputs: the sourcing script reads them
collect_counts() {
	local first
	puts_after=$(fake_stat token_puts)
	gets=$(fake_stat gets)
	unauthorized=$(fake_stat unauthorized)

	# imdsguard writes each audit line before it answers, so its log is complete.
	audit_bytes=$(wc -c <"$work/imdsguard.err")
	audit_lines=$(wc -l <"$work/imdsguard.err")
	# Who imdsguard saw and which policy rule served wrk (its first v1 request).
	first=$(awk '/"version":"v1"/ && /"comm":"wrk"/ { print; exit }' "$work/imdsguard.err")
	[[ -n $first ]] || first=$(grep -m 1 '"version":"v1"' "$work/imdsguard.err" || true)
	guard_rule=$(sed -n 's/.*"rule":"\([^"]*\)".*/\1/p' <<<"$first")
	guard_caller=$(sed -n 's/.*"caller":\({[^}]*}\).*/\1/p' <<<"$first")
}
