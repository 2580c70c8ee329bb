#!/usr/bin/env bash
# Builds the imdsguard package, .deb or .rpm: bin/imdsguard stamped with
# the package version, bin/nfpm from the tools module if it is missing, then
# dist/imdsguard_<version>_<arch>.deb or dist/imdsguard-<version>-1.<arch>.rpm
# (one packaging/nfpm.yaml says what is in both).
set -euo pipefail

usage() {
	cat <<'EOF'
Usage: scripts/build-package.sh [--packager deb|rpm] [--out DIR] [--version VERSION]

Builds bin/imdsguard (go build -ldflags "-s -w -X main.version=VERSION") and
packs it with nfpm (packaging/nfpm.yaml) as DIR/imdsguard_VERSION_ARCH.deb
(ARCH amd64, arm64) or DIR/imdsguard-VERSION-1.ARCH.rpm (ARCH x86_64,
aarch64; Release 1). Prints the path of the package on the last line.

  --packager FORMAT  deb (default; scripts/build-deb.sh) or rpm
  --out DIR          where to write the package (default: dist)
  --version VERSION  package version (a tag such as v1.2.3 is fine); default
                     from `git describe --tags --always`, made a valid Debian
                     upstream version, which is a valid RPM Version too (no
                     "-"; "~" sorts before the release in both, rpm >= 4.10):
                     v1.2.3 -> 1.2.3, v1.2.3-4-gabc1234 ->
                     1.2.3+git4.gabc1234, v1.2.3-rc1 -> 1.2.3~rc1, no tag
                     (a bare commit abc1234) -> 0.0.0~gitabc1234, no git
                     at all -> 0.0.0~dev
  -h, --help         this help

Environment: GOARCH (amd64 or arm64; default: the Go toolchain's),
IMDSGUARD_MAINTAINER (the package's Maintainer field).
EOF
}

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
packager=deb
out=dist
version=""
while (($# > 0)); do
	case $1 in
	--packager)
		packager=${2:?--packager needs deb or rpm}
		shift 2
		;;
	--out)
		out=${2:?--out needs a directory}
		shift 2
		;;
	--version)
		version=${2:?--version needs a value}
		shift 2
		;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		echo "build-package: unknown argument $1 (see --help)" >&2
		exit 2
		;;
	esac
done
case $packager in
deb | rpm) ;;
*)
	echo "build-package: --packager $packager: deb or rpm" >&2
	exit 2
	;;
esac

# sudo and CI shells may leave the Go toolchain off PATH.
PATH="$PATH:/usr/local/go/bin"
if ! command -v go >/dev/null; then
	echo "build-package: no go toolchain on PATH" >&2
	exit 1
fi

# git_version: `git describe --tags --always`, with a bare commit (no tag
# to describe from, and a hash may well start with a digit) marked "g".
git_version() {
	local d
	if d=$(git describe --tags 2>/dev/null); then
		echo "$d"
	elif d=$(git describe --always 2>/dev/null); then
		echo "0.0.0~git$d"
	fi
}

# debian_version RAW: a version or `git describe` string as a Debian
# upstream version, which must start with a digit and use only
# [A-Za-z0-9.+~] here (no "-": that would start a Debian revision, and
# rpm refuses it in a Version). The same string is the RPM's Version.
debian_version() {
	local v=$1
	v=${v#v}
	if [[ -z $v ]]; then
		echo "0.0.0~dev"
		return
	fi
	if [[ ! $v =~ ^[0-9] ]]; then
		v="0.0.0~$v"
	fi
	if [[ $v =~ ^(.*)-([0-9]+)-g([0-9a-f]+)$ ]]; then
		v="${BASH_REMATCH[1]}+git${BASH_REMATCH[2]}.g${BASH_REMATCH[3]}"
	fi
	v=${v//-/\~}
	echo "${v//[^A-Za-z0-9.+~]/.}"
}

cd "$root"
if [[ -z $version ]]; then
	version=$(debian_version "$(git_version)")
else
	version=$(debian_version "$version")
fi

goarch=${GOARCH:-$(go env GOARCH)}
case $goarch in
amd64 | arm64) arch=$goarch ;;
*)
	echo "build-package: GOARCH $goarch: only amd64 and arm64 are packaged" >&2
	exit 1
	;;
esac

echo "build-package: bin/imdsguard $version ($arch)"
GOARCH=$goarch go build -trimpath -ldflags "-s -w -X main.version=$version" -o bin/imdsguard ./cmd/imdsguard

if [[ ! -x bin/nfpm ]]; then
	echo "build-package: bin/nfpm (tools module)"
	(cd tools && go build -o ../bin/nfpm github.com/goreleaser/nfpm/v2/cmd/nfpm)
fi

# package_name: the file name each format's tools expect.
package_name() {
	if [[ $packager == deb ]]; then
		echo "imdsguard_${version}_${arch}.deb"
	else
		local rpmarch=x86_64
		[[ $arch == amd64 ]] || rpmarch=aarch64
		echo "imdsguard-${version}-1.${rpmarch}.rpm"
	fi
}

mkdir -p "$out"
pkg="$out/$(package_name)"
rm -f "$pkg"
IMDSGUARD_VERSION=$version \
	IMDSGUARD_ARCH=$arch \
	IMDSGUARD_MAINTAINER=${IMDSGUARD_MAINTAINER:-imdsguard maintainers <maintainers@imdsguard.invalid>} \
	bin/nfpm package --config packaging/nfpm.yaml --packager "$packager" --target "$pkg" >&2
echo "$pkg"
