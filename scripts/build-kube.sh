#!/usr/bin/env bash
# Builds the Kubernetes binaries the cluster tests run (tools/testbed's
# StartCluster) into bin/kube/: kube-apiserver, kube-controller-manager,
# kube-scheduler, kubelet and kubectl, from the pinned wrapper module
# tools/kube (k8s.io/kubernetes v1.30.14 from the Go module proxy; no
# registry, no release tarball). Binaries newer than tools/kube/go.mod and
# go.sum are left alone. Measured on 2 cores: 5 min 21 s with an empty build
# cache (8 min of user CPU; 12.5 min while other builds shared the cores),
# 34 s with a warm one (the five links), nothing when up to date.
#
#   scripts/build-kube.sh
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/bin/kube"
mod="$root/tools/kube"
# sudo and CI shells may leave the Go toolchain off PATH.
PATH="$PATH:/usr/local/go/bin"
if ! command -v go >/dev/null; then
	echo "build-kube: no go toolchain on PATH" >&2
	exit 1
fi

# The release the binaries report (kubectl version, the node's
# kubeletVersion): what hack/lib/version.sh stamps into a release build.
version=v1.30.14
names=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl)

# stale: a binary is missing or older than the module's go.mod or go.sum.
stale() {
	local n
	for n in "${names[@]}"; do
		[[ -e $out/$n ]] || return 0
		[[ -z $(find "$mod/go.mod" "$mod/go.sum" -newer "$out/$n" -print -quit) ]] || return 0
	done
	return 1
}

if ! stale; then
	exit 0
fi

pkgs=()
for n in "${names[@]}"; do
	pkgs+=("k8s.io/kubernetes/cmd/$n")
done
ldflags=""
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	ldflags+=" -X $p.gitVersion=$version -X $p.gitMajor=1 -X $p.gitMinor=30 -X $p.gitTreeState=clean"
done

echo "build-kube: bin/kube/{$(
	IFS=,
	echo "${names[*]}"
)} (Kubernetes $version; minutes when the build cache is cold)"
mkdir -p "$out"
start=$SECONDS
# One go build for the five: the shared packages compile once, in
# parallel. -s -w drops the symbol tables (a third of each binary).
(cd "$mod" && go build -ldflags "-s -w$ldflags" -o "$out/" "${pkgs[@]}")
# go build leaves an up-to-date binary's modification time alone: touch
# them all, so that the next run finds them newer than go.mod.
for n in "${names[@]}"; do
	touch "$out/$n"
done
echo "build-kube: done in $((SECONDS - start)) s"
