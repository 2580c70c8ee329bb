#!/usr/bin/env bash
# Benchmark of the rule upkeep on a busy node (issue 24): imdsguard's CPU,
# iptables-save, rules status, check --ready, start and repair times with
# 0, 20,000 and 60,000 extra kube-proxy-shaped nat rules, on the nft and
# the legacy backend, written to docs/RULES_BENCH.md (tools/cmd/rulesbench).
# Needs root and bin/imdsguard (make build); takes about 5 minutes.
# RULESBENCH_FLAGS are bin/rulesbench's flags, e.g. '-sizes 0,60000'.
# To compare bin/imdsguard (A) with another build (B) in one run, cell by
# cell, side by side with issue 24's envelope for each (about twice as long):
#   sudo RULESBENCH_FLAGS='-imdsguard-b /tmp/old/imdsguard' scripts/bench-rules.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
if [ "$(id -u)" -ne 0 ]; then
	echo "bench-rules.sh: needs root (network namespaces); run: sudo make bench" >&2
	exit 1
fi
PATH="$PATH:/usr/local/go/bin"
(cd tools && go build -o ../bin/rulesbench ./cmd/rulesbench)
# shellcheck disable=SC2086
bin/rulesbench ${RULESBENCH_FLAGS:-}
