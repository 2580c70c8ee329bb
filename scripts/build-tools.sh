#!/usr/bin/env bash
# Builds the test tools into bin/ of the repository: aemm (the IMDS mock,
# from the tools module's `tool` directive), imdsclient, fakeimds, fakests
# (a fake STS), bench (the benchmarks, `make bench`) and demo (`make
# demo`'s program); helm (the chart tests) and kube (bin/kube/: the
# cluster tests' Kubernetes binaries), each from a pinned wrapper module of
# its own (tools/helm, tools/kube) on the Go module proxy, nothing
# prebuilt. A binary newer than all of its sources is left alone, so
# running this on every `make test` costs next to nothing; helm and kube
# print how long a build took.
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
build fakeimds ./cmd/fakeimds go.mod go.sum cmd/fakeimds fakeimds httpserve
build fakests ./cmd/fakests go.mod go.sum cmd/fakests fakests fakeimds httpserve
build bench ./cmd/bench go.mod go.sum cmd/bench testbed fakeimds fakests ../internal ../go.mod
build demo ./cmd/demo go.mod go.sum cmd/demo testbed fakeimds fakests ../internal ../go.mod
# promqlnames: Prometheus's PromQL parser for the dashboard tests, from a
# module of its own (tools/promql: the Prometheus module would raise the
# tools module's aws-sdk-go, pinned for bin/imdsclient).
if wanted promqlnames && stale "$bin/promqlnames" promql; then
	echo "build-tools: bin/promqlnames"
	(cd promql && go build -buildvcs=false -o "$bin/promqlnames" .)
fi
# A static copy for the client images of the container runtime tests
# (a busybox root has no libc).
CGO_ENABLED=0 build imdsclient-static ./cmd/imdsclient go.mod go.sum cmd/imdsclient

# helm: static, and `helm version` says which release it is, as helm's own
# Makefile builds it. Built to a temporary name and moved, so that an
# interrupted build never leaves a bin/helm that looks fresh. Measured
# here: 8 s with a warm build cache, about 2.5 min cold.
if wanted helm && stale "$bin/helm" helm/go.mod helm/go.sum; then
	version=$(cd helm && go list -m -f '{{.Version}}' helm.sh/helm/v4)
	echo "build-tools: bin/helm (helm.sh/helm/v4 $version)"
	start=$SECONDS
	(cd helm && CGO_ENABLED=0 go build -buildvcs=false -trimpath \
		-ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$version" \
		-o "$bin/helm.tmp" helm.sh/helm/v4/cmd/helm)
	mv "$bin/helm.tmp" "$bin/helm"
	echo "build-tools: bin/helm built in $((SECONDS - start)) s"
fi

# kube: kube-apiserver, kube-controller-manager, kube-scheduler, kubelet,
# kubectl and kube-proxy (the kube-proxy tests) from tools/kube
# (k8s.io/kubernetes v1.30.14; no registry, no release tarball), stamped
# with the release as hack/lib/version.sh does, in one go build (the
# shared packages compile once). Measured on 2 cores:
# 5 min 21 s with an empty build cache, 34 s with a warm one (adding
# kube-proxy to a warm cache: 27 s).
kube_version=v1.30.14
kube_names=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl kube-proxy)
kube_stale() {
	local n
	for n in "${kube_names[@]}"; do
		stale "$bin/kube/$n" kube/go.mod kube/go.sum && return 0
	done
	return 1
}
if wanted kube && kube_stale; then
	pkgs=() ldflags=""
	for n in "${kube_names[@]}"; do
		pkgs+=("k8s.io/kubernetes/cmd/$n")
	done
	for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		ldflags+=" -X $p.gitVersion=$kube_version -X $p.gitMajor=1 -X $p.gitMinor=30 -X $p.gitTreeState=clean"
	done
	echo "build-tools: bin/kube/ (Kubernetes $kube_version: ${kube_names[*]}; minutes when the build cache is cold)"
	mkdir -p "$bin/kube"
	start=$SECONDS
	(cd kube && go build -buildvcs=false -ldflags "-s -w$ldflags" -o "$bin/kube/" "${pkgs[@]}")
	# go build leaves an up-to-date binary's time alone: touch them, so
	# that the next run finds them newer than go.mod.
	for n in "${kube_names[@]}"; do
		touch "$bin/kube/$n"
	done
	echo "build-tools: bin/kube/ built in $((SECONDS - start)) s"
fi
