#!/bin/sh
# The one step that makes imdsguard's image root from a Debian bookworm
# minbase/slim root. It runs inside that root: as the Dockerfile's RUN (on
# debian:bookworm-slim) and, for builds without a registry, chrooted by
# scripts/build-image.sh (on a `debootstrap --variant=minbase` root, what
# the slim image is made from). One script, so both give the same image.
#
# iptables brings both backends (xtables-nft-multi and xtables-legacy-multi):
# imdsguard picks the one the node already uses, as kube-proxy's
# iptables-wrapper does, and never mixes them. The probes run imdsguard
# itself (imdsguard check --ready): nothing else is needed.
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends iptables
apt-get clean
# What the slim image leaves out (its /etc/dpkg/dpkg.cfg.d/docker), and
# apt's lists: nothing in the image needs them.
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old \
	/var/log/apt /var/log/dpkg.log /var/log/alternatives.log /var/log/bootstrap.log \
	/usr/share/doc/* /usr/share/man/* /usr/share/info/* /usr/share/lintian/* /usr/share/linda/*
find /usr/share/locale -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
# The token key's and the admin socket's directories (hostPath and emptyDir
# volumes are mounted over them in the DaemonSet).
install -d -m 0700 /var/lib/imdsguard /run/imdsguard
