#!/usr/bin/env bash
# Installs everything the tests need on Debian (CI runs it as root on a clean
# machine), then builds the test tools (build-tools.sh: helm and the cluster
# tests' Kubernetes binaries too) and the cached base of the DaemonSet image.
# Idempotent: when every package is present it touches nothing and only runs
# build-tools.sh (and finds the cached base).
#
#   scripts/install-test-deps.sh          everything: make test, make e2e, make bench
#   scripts/install-test-deps.sh --demo   only what make demo runs: its packages,
#                                         bin/aemm, bin/imdsclient, bin/demo; no
#                                         container runtimes, no image base (debootstrap)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

demo=false
case ${1:-} in
'') ;;
--demo) demo=true ;;
*) echo "install-test-deps: unknown argument $1 (only --demo)" >&2; exit 2 ;;
esac

# What the demo (tools/cmd/demo) runs; the tests run all of it too.
demo_packages=(
	iproute2         # ip netns: network namespaces as test hosts
	iptables         # the redirect rules
	procps           # sysctl: forwarding in the test host's namespace
	python3-boto     # legacy IMDSv1-only client
	python3-botocore # IMDSv2 client
	awscli           # aws configure export-credentials
	amazon-ec2-utils # ec2-metadata
	cloud-utils      # ec2metadata
	curl             # the plain v1 client in the e2e tests and the demo
	util-linux       # setpriv, unshare: clients as other users, the unit boot test
)

# What only the tests and benchmarks need.
test_packages=(
	wrk hey          # load generators
	nginx-light      # the reference reverse proxy of the benchmarks (tools/cmd/bench)
	shellcheck       # lint of scripts/
	binutils         # objdump: the .deb's glibc dependency check
	systemd          # systemd-analyze verify/security, the unit boot test
	docker.io        # real runtimes in the tests: dockerd inside a test namespace
	containerd runc  # containerd with ctr (docker.io's dockerd runs this one too)
	containernetworking-plugins # the CNI bridge plugin wiring ctr's containers
	busybox-static   # the shell and wget of the test containers' images
	debootstrap      # scripts/build-image.sh: the DaemonSet image without a registry
	etcd-server      # the cluster tests' etcd (3.4.23; kube-apiserver 1.30 needs >= 3.4.22), run by the harness, never as a service
	catatonit        # a static init: the whole content of the cluster's offline pause image
	conntrack        # the cluster tests read the node namespace's connection tracking (pods are not NATed; failure diagnostics)
	nftables         # nft: kube-proxy's nftables mode in the cluster tests, and reading the nft rule set in diagnostics
	rpm              # rpm -qp/--root: the .rpm's file list, scripts, requires and a scratch-root install
	packer           # packer validate of packaging/packer (Debian's 1.6.6)
	prometheus       # promtool: the alerting/recording rules' unit tests and the dashboard's PromQL
)

packages=("${demo_packages[@]}")
if ! $demo; then
	packages+=("${test_packages[@]}")
fi

missing=()
for pkg in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q '^install ok installed$'; then
		missing+=("$pkg")
	fi
done

if ((${#missing[@]} > 0)); then
	echo "install-test-deps: installing ${missing[*]}"
	sudo=()
	if ((EUID != 0)); then
		sudo=(sudo)
	fi
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
	# docker.io, containerd and etcd-server start their services when
	# installed: the tests run their own daemons inside network namespaces,
	# and a dockerd in the machine's namespace would rewrite its iptables. A policy-rc.d that
	# says "no" (when there is none) keeps them stopped during the install.
	policy=/usr/sbin/policy-rc.d
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
		"${sudo[@]}" chmod 755 "$policy"
		trap '"${sudo[@]}" rm -f "$policy"' EXIT
	fi
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if $demo; then
	"$root/scripts/build-tools.sh" aemm imdsclient demo
	exit 0
fi
# Every tool, helm and the Kubernetes binaries too (about 5.5 minutes with a
# cold build cache on 2 cores, 34 s with a warm one, nothing once built).
"$root/scripts/build-tools.sh"
# The cached Debian root of the DaemonSet image (debootstrap from the apt
# mirror, about two minutes once); the image tests add the binary to it.
base=("$root/scripts/build-image.sh" --base-only)
if ((EUID != 0)); then
	base=(sudo "${base[@]}")
fi
"${base[@]}" >/dev/null
