#!/usr/bin/env bash
# Builds bin/helm from the Go module proxy, nothing prebuilt: the wrapper
# module tools/helm pins helm.sh/helm/v4 with a `tool` directive, and its
# go.sum pins everything helm brings (the k8s.io modules at one release).
# A bin/helm newer than tools/helm/go.mod and go.sum is left alone, so
# running this on every `make test` costs next to nothing; a build prints
# how long it took (tools/README.md has the times measured here).
#
#   scripts/build-helm.sh
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$root/bin"
mkdir -p "$bin"
cd "$root/tools/helm"
# sudo and CI shells may leave the Go toolchain off PATH.
PATH="$PATH:/usr/local/go/bin"
if ! command -v go >/dev/null; then
	echo "build-helm: no go toolchain on PATH" >&2
	exit 1
fi

# stale OUT SOURCE...: true when OUT is missing or a SOURCE (file or
# directory tree) has anything newer than it (as in build-tools.sh).
stale() {
	local out=$1
	shift
	[[ ! -e $out ]] && return 0
	[[ -n $(find "$@" -newer "$out" -print -quit) ]]
}

if stale "$bin/helm" go.mod go.sum; then
	version=$(go list -m -f '{{.Version}}' helm.sh/helm/v4)
	echo "build-helm: bin/helm (helm.sh/helm/v4 $version)"
	start=$SECONDS
	# As helm's own Makefile builds it: static, and `helm version` says
	# which release it is. Built to a temporary name and moved, so that an
	# interrupted build never leaves a bin/helm that looks fresh.
	CGO_ENABLED=0 go build -buildvcs=false -trimpath \
		-ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$version" \
		-o "$bin/helm.tmp" helm.sh/helm/v4/cmd/helm
	mv "$bin/helm.tmp" "$bin/helm"
	echo "build-helm: bin/helm built in $((SECONDS - start)) s"
fi
