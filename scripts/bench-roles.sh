#!/usr/bin/env bash
# Benchmark of roles per workload (issue 22), report only, written to
# docs/ROLES_BENCH.md with the command that made it: tools/e2e's
# BenchmarkRoles on a testbed Host (network namespaces, a dockerd on a
# containerd of its own, imdsguard with roles:, the fake STS answering after
# 20 ms). Needs root and the test tools (make deps).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root/tools"
out="${BENCH_ROLES_OUT:-$root/docs/ROLES_BENCH.md}"
cmd=(go test ./e2e -count=1 -run '^$' -bench BenchmarkRoles -benchtime 1x)
if [ "$(id -u)" -ne 0 ]; then
	echo "bench-roles.sh: needs root (network namespaces, dockerd); run: sudo make bench" >&2
	exit 1
fi
start=$(date +%s)
result="$("${cmd[@]}")" || { echo "$result" >&2; exit 1; }
took=$(( $(date +%s) - start ))
{
	echo "# Roles per workload: benchmark"
	echo
	echo "Command: \`cd tools && go test ./e2e -count=1 -run '^\$' -bench BenchmarkRoles -benchtime 1x\` (as root; \`make bench\` runs it through \`scripts/bench-roles.sh\`), ${took} s"
	echo
	echo "Date: $(date -u +%Y-%m-%dT%H:%MZ); machine: $(nproc) CPUs, kernel $(uname -r), $(go version | cut -d' ' -f3)"
	echo
	echo "A testbed Host (tools/testbed): AEMM as IMDS, imdsguard with \`roles:\` (rate 2/s, burst 4),"
	echo "Debian's dockerd, and the fake STS (tools/fakests) answering every AssumeRole after 20 ms."
	echo "Report only: nothing here fails on time. With 10 or 5 samples, p99 is the maximum."
	echo
	echo "- cold: a host user's first request for a role session nobody asked for yet (no"
	echo "  container event prefetches a host user's), curl's \`time_total\`: the AssumeRole"
	echo "  (signed with the node's credentials) is inside it. Each sample is a new role (a"
	echo "  policy reload between samples)."
	echo "- container start: \`docker run --rm --label app=ci IMAGE imdsclient -sdk v2 -creds\`"
	echo "  from the CLI's start to its exit, beside the same run reading \`instance-id\`"
	echo "  (no STS). imdsguard starts the AssumeRole on Docker's start event; the line"
	echo "  after the table says how the containers' first reads were answered."
	echo "- cached: one curl reading the held credentials over one keep-alive connection,"
	echo "  \`time_total\` of each request, beside the same for \`instance-id\`."
	echo
	echo "| what | min | p50 | p99 | max |"
	echo "|---|---|---|---|---|"
	echo "$result" | sed -n 's/^ROLESBENCH | /| /p'
	echo
	echo "$result" | sed -n 's/^ROLESBENCH \([^|]\)/\1/p' | sed 's/^/- /'
	echo
	echo '```'
	echo "$result" | grep -E '^(Benchmark|goos|goarch|cpu|ok|PASS)'
	echo '```'
} > "$out"
echo "$result" | grep -E '^(ROLESBENCH|Benchmark)'
echo "wrote $out"
