#!/usr/bin/env bash
# Builds imdsguard's container image without a registry: the same image as
# packaging/image/Dockerfile, made from Debian packages of the configured
# apt mirror instead of debian:bookworm-slim and golang:1.26-bookworm.
set -euo pipefail

usage() {
	cat <<'EOF'
Usage: scripts/build-image.sh [--out FILE] [--version VERSION]
                              [--docker-host URL [--tag NAME]] [--base-only]

Makes the image root as packaging/image/Dockerfile does and writes it as a
tar (the input of `docker import`):

  1. base: `debootstrap --variant=minbase bookworm` from the mirror (what
     debian:bookworm-slim is built from), apt sources as in that image,
     then packaging/image/setup.sh chrooted in it (the Dockerfile's RUN).
     Cached as bin/image-base-KEY.tar, KEY a hash of setup.sh, the suite
     and the mirrors: about two minutes once, then reused.
  2. bin/imdsguard built static as the Dockerfile builds it (CGO_ENABLED=0,
     -trimpath, -s -w, main.version), added to a copy of the base.
  3. with --docker-host: `docker import` with the Dockerfile's ENTRYPOINT,
     CMD and ENV lines as --change, tagged NAME.

  --out FILE          the image tar (default: bin/imdsguard-image.tar)
  --version VERSION   main.version (default: git describe --tags --always)
  --docker-host URL   import into this dockerd (e.g. unix:///run/docker.sock)
  --tag NAME          image name for the import (default: imdsguard:VERSION)
  --base-only         only make (or find) the cached base, print its path
  -h, --help          this help

Environment: DEBIAN_MIRROR (default: the first deb.debian.org-style
"URIs:" of /etc/apt/sources.list.d/debian.sources, else
http://deb.debian.org/debian), DEBIAN_SECURITY_MIRROR (default:
http://deb.debian.org/debian-security). Needs root (debootstrap, chroot)
and the debootstrap package. Prints the tar's path on the last line.
EOF
}

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/bin/imdsguard-image.tar"
version="" docker_host="" tag="" base_only=false
while (($# > 0)); do
	case $1 in
	--out) out=${2:?--out needs a file}; shift 2 ;;
	--version) version=${2:?--version needs a value}; shift 2 ;;
	--docker-host) docker_host=${2:?--docker-host needs a URL}; shift 2 ;;
	--tag) tag=${2:?--tag needs a name}; shift 2 ;;
	--base-only) base_only=true; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "build-image: unknown argument $1" >&2; usage >&2; exit 2 ;;
	esac
done
PATH="$PATH:/usr/local/go/bin:/usr/sbin:/sbin"
suite=bookworm
image_dir="$root/packaging/image"

mirror_from_sources() {
	local f=/etc/apt/sources.list.d/debian.sources
	[[ -r $f ]] && awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' "$f"
}
mirror=${DEBIAN_MIRROR:-$(mirror_from_sources || true)}
mirror=${mirror:-http://deb.debian.org/debian}
security=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

# sources: the apt sources of debian:bookworm-slim, on our mirrors.
sources() {
	cat <<EOF
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
}

key=$( { cat "$image_dir/setup.sh"; echo "$suite $mirror $security"; } | sha256sum | cut -c1-12)
base="$root/bin/image-base-$key.tar"

# make_base builds the base root in a temporary directory and tars it.
make_base() {
	if ((EUID != 0)); then
		echo "build-image: making the base root needs root (debootstrap, chroot)" >&2
		exit 1
	fi
	command -v debootstrap >/dev/null || {
		echo "build-image: no debootstrap: scripts/install-test-deps.sh installs it" >&2
		exit 1
	}
	local tmp
	tmp=$(mktemp -d)
	# shellcheck disable=SC2064 # expand now: tmp is local
	trap "rm -rf '$tmp'" EXIT
	echo "build-image: debootstrap --variant=minbase $suite from $mirror" >&2
	debootstrap --variant=minbase "$suite" "$tmp/root" "$mirror" >"$tmp/debootstrap.log" 2>&1 || {
		tail -20 "$tmp/debootstrap.log" >&2
		exit 1
	}
	rm -f "$tmp/root/etc/apt/sources.list"
	sources >"$tmp/root/etc/apt/sources.list.d/debian.sources"
	cp /etc/resolv.conf "$tmp/root/etc/resolv.conf"
	cp "$image_dir/setup.sh" "$tmp/root/tmp/setup.sh"
	echo "build-image: setup.sh in the root" >&2
	chroot "$tmp/root" /bin/sh /tmp/setup.sh >"$tmp/setup.log" 2>&1 || {
		tail -20 "$tmp/setup.log" >&2
		exit 1
	}
	rm -f "$tmp/root/tmp/setup.sh"
	: >"$tmp/root/etc/resolv.conf" # the runtime provides it
	mkdir -p "$root/bin"
	tar -C "$tmp/root" --numeric-owner -cf "$base.part" .
	mv "$base.part" "$base"
	rm -rf "$tmp"
	trap - EXIT
}

start=$SECONDS
if [[ ! -s $base ]]; then
	make_base
	echo "build-image: base $base made in $((SECONDS - start)) s" >&2
fi
if $base_only; then
	echo "$base"
	exit 0
fi

version=${version:-$(git -C "$root" describe --tags --always --dirty 2>/dev/null || echo dev)}
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/usr/sbin"
(cd "$root" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$version" \
	-o "$stage/usr/sbin/imdsguard" ./cmd/imdsguard)
mkdir -p "$(dirname "$out")"
cp "$base" "$out.part"
tar -C "$stage" --numeric-owner --owner=0 --group=0 -rf "$out.part" ./usr/sbin/imdsguard
mv "$out.part" "$out"
echo "build-image: $out ($(du -h "$out" | cut -f1)) in $((SECONDS - start)) s" >&2

if [[ -n $docker_host ]]; then
	tag=${tag:-imdsguard:$version}
	changes=()
	while IFS= read -r line; do
		changes+=(--change "$line")
	done < <(grep -E '^(ENTRYPOINT|CMD|ENV) ' "$image_dir/Dockerfile")
	docker -H "$docker_host" import "${changes[@]}" "$out" "$tag" >/dev/null
	echo "build-image: imported as $tag into $docker_host" >&2
fi
echo "$out"
