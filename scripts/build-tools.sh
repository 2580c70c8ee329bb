#!/usr/bin/env bash
# Builds the test tools into bin/ of the repository: aemm (the IMDS mock,
# from the tools module's `tool` directive), imdsclient, fakeimds, bench
# (the benchmarks, `make bench`) and demo (`make demo`'s program). A binary
# newer than all of its sources is left alone, so running this on every
# `make test` costs next to nothing.
#
#   scripts/build-tools.sh [NAME...]   only those (make demo: aemm imdsclient demo)
set -euo pipefail

only=("$@")

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$root/bin"
mkdir -p "$bin"
cd "$root/tools"
# sudo and CI shells may leave the Go toolchain off PATH.
PATH="$PATH:/usr/local/go/bin"
if ! command -v go >/dev/null; then
	echo "build-tools: no go toolchain on PATH" >&2
	exit 1
fi

# stale OUT SOURCE...: true when OUT is missing or a SOURCE (file or
# directory tree) has anything newer than it.
stale() {
	local out=$1
	shift
	[[ ! -e $out ]] && return 0
	[[ -n $(find "$@" -newer "$out" -print -quit) ]]
}

# wanted NAME: NAME was asked for, or no name was.
wanted() {
	((${#only[@]} == 0)) || [[ " ${only[*]} " == *" $1 "* ]]
}

# build NAME PACKAGE SOURCE...: go build PACKAGE into bin/NAME when wanted
# and stale.
build() {
	local name=$1 pkg=$2
	shift 2
	if wanted "$name" && stale "$bin/$name" "$@"; then
		echo "build-tools: bin/$name"
		go build -buildvcs=false -o "$bin/$name" "$pkg"
	fi
}

build aemm github.com/aws/amazon-ec2-metadata-mock/cmd go.mod go.sum
build imdsclient ./cmd/imdsclient go.mod go.sum cmd/imdsclient
build fakeimds ./cmd/fakeimds go.mod go.sum cmd/fakeimds fakeimds
build bench ./cmd/bench go.mod go.sum cmd/bench testbed fakeimds ../internal ../go.mod
build demo ./cmd/demo go.mod go.sum cmd/demo testbed fakeimds ../internal ../go.mod
# A static copy for the client images of the container runtime tests
# (a busybox root has no libc).
CGO_ENABLED=0 build imdsclient-static ./cmd/imdsclient go.mod go.sum cmd/imdsclient
