#!/usr/bin/env bash
# Fuzzes every fuzz target (func Fuzz*) of every package of the main module
# for FUZZTIME each (default 60s). `go test -fuzz` takes one target of one
# package at a time, so the targets are listed first (go test -list) and then
# fuzzed one by one; a new target is fuzzed without being named here.
# Prints each target as it starts and, at the end, every target that ran.
set -euo pipefail

GO="${GO:-go}"
FUZZTIME="${FUZZTIME:-60s}"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# "package target" per line: -list prints a package's matching names, then
# its "ok <package> <time>" line.
targets="$("$GO" test -list '^Fuzz' ./... | awk '
	/^Fuzz/ { names[n++] = $1; next }
	/^ok /  { for (i = 0; i < n; i++) print $2, names[i]; n = 0 }
')"
if [[ -z "$targets" ]]; then
	echo "fuzz: no fuzz targets found" >&2
	exit 1
fi

ran=()
while read -r pkg name; do
	echo "fuzz: $name in $pkg for $FUZZTIME"
	"$GO" test "$pkg" -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME"
	ran+=("$pkg.$name")
done <<<"$targets"

echo "fuzz: ${#ran[@]} targets ran for $FUZZTIME each:"
printf '  %s\n' "${ran[@]}"
