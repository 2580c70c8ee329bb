#!/usr/bin/env bash
# The AMI bake step: install imdsguard, enable it for every boot, and
# optionally make IMDSv2 mandatory. See --help.
set -euo pipefail

usage() {
	cat <<'EOF'
Usage: scripts/bake-ami.sh [OPTIONS] [PACKAGE.deb | PACKAGE.rpm]

Installs imdsguard on this machine (run as root on the instance being baked,
or in a chroot of the image) and enables imdsguard.service, so that its
redirect rules are in place from the first boot of every instance made from
the image, before any container runtime starts.

Install (one of):
  PACKAGE.deb         the package to install with apt-get (Debian, Ubuntu),
                      so iptables comes along
  PACKAGE.rpm         the package to install with dnf (yum without dnf):
                      Amazon Linux 2023, RHEL 9 and kin, so iptables-nft
                      comes along
                      default: the newest dist/imdsguard_*.deb where apt-get
                      is, else the newest dist/imdsguard-*.rpm where dnf or
                      yum is
  --binary [PATH]     no package: install PATH (default bin/imdsguard) as
                      /usr/sbin/imdsguard, the units as
                      /etc/systemd/system/imdsguard.{service,socket}, its tmpfiles.d
                      entry, and the default /etc/imdsguard/imdsguard.yaml
                      (an existing configuration is kept); needs iptables

Service:
  --start             also start imdsguard now (needs systemd running); by
                      default it is only enabled, and starts at next boot

IMDSv2 (needs the AWS CLI and credentials allowed to change the instance):
  --require-imdsv2    make IMDS answer only IMDSv2 on this instance:
                        aws ec2 modify-instance-metadata-options
                          --instance-id ID --http-tokens required
                          --http-put-response-hop-limit 1 --http-endpoint enabled
                      imdsguard keeps IMDSv1 clients working (it upgrades
                      their requests) and gives containers their tokens with
                      hop limit 2 itself, so hop limit 1 stays safe
  --instance-id ID    the instance to change; default: asked from IMDS,
                      through imdsguard (127.0.0.1:8989) when it answers
  --region REGION     default: AWS_REGION, else asked from IMDS likewise
  --lightsail NAME    a Lightsail instance instead of EC2:
                        aws lightsail update-instance-metadata-options
                          --instance-name NAME --http-tokens required
  --ami-id AMI        also mark the finished image so that instances
                      launched from it require IMDSv2 from the start:
                        aws ec2 modify-image-attribute --image-id AMI
                          --imds-support v2.0
                      (an instance setting does not carry over into an AMI)

Other:
  --dry-run           print every command instead of running it (nothing is
                      installed, nothing is asked from IMDS or AWS)
  -h, --help          this help

Order matters when IMDSv2 becomes mandatory on a running instance: start
imdsguard first (--start), or IMDSv1-only software breaks until it runs.
EOF
}

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
unit=imdsguard.service
socket=imdsguard.socket # the proxy's sockets, held across restarts
proxy=http://127.0.0.1:8989
imds=http://169.254.169.254

pkg=""
binary=""
start=false
require_v2=false
instance_id=""
region=${AWS_REGION:-}
lightsail=""
ami=""
dry_run=false

die() {
	echo "bake-ami: $*" >&2
	exit 1
}

parse_args() {
	while (($# > 0)); do
		case $1 in
		--binary)
			binary=$root/bin/imdsguard
			if (($# > 1)) && [[ $2 != -* && $2 != *.deb && $2 != *.rpm ]]; then
				binary=$2
				shift
			fi
			;;
		--start) start=true ;;
		--require-imdsv2) require_v2=true ;;
		--instance-id) instance_id=${2:?--instance-id needs an id} && shift ;;
		--region) region=${2:?--region needs a region} && shift ;;
		--lightsail) lightsail=${2:?--lightsail needs an instance name} && shift ;;
		--ami-id) ami=${2:?--ami-id needs an image id} && shift ;;
		--dry-run) dry_run=true ;;
		-h | --help)
			usage
			exit 0
			;;
		-*)
			echo "bake-ami: unknown option $1 (see --help)" >&2
			exit 2
			;;
		*)
			[[ -z $pkg ]] || die "one package at a time ($pkg, $1)"
			pkg=$1
			;;
		esac
		shift
	done
	if [[ -n $pkg && -n $binary ]]; then
		die "give a package or --binary, not both"
	fi
	if [[ -n $lightsail && -n $instance_id ]]; then
		die "--lightsail names the instance; --instance-id is for EC2"
	fi
	if [[ -n $lightsail ]]; then
		require_v2=true
	fi
}

# run CMD...: run it, or with --dry-run print it, shell-quoted (but for
# <placeholders> of values a real run would ask IMDS for).
run() {
	if $dry_run; then
		local a line=""
		for a in "$@"; do
			if [[ $a =~ ^\<[a-z-]+\>$ ]]; then
				line+=" $a"
			else
				line+=" $(printf '%q' "$a")"
			fi
		done
		echo "${line# }"
	else
		"$@"
	fi
}

systemd_running() { [[ -d /run/systemd/system ]]; }

# newest_package: the newest package in dist/ of the kind this machine
# installs (apt-get: .deb; dnf or yum: .rpm).
newest_package() {
	local pattern='imdsguard_*.deb' build="make deb" newest="" f
	if ! command -v apt-get >/dev/null && { command -v dnf || command -v yum; } >/dev/null; then
		pattern='imdsguard-*.rpm' build="make rpm"
	fi
	for f in "$root"/dist/$pattern; do
		if [[ -f $f && (-z $newest || $f -nt $newest) ]]; then
			newest=$f
		fi
	done
	[[ -n $newest ]] || die "no dist/$pattern: run $build, or pass a package or --binary"
	echo "$newest"
}

# rpm_installer: dnf (AL2023, RHEL 8 and later), else yum; a dry run on a
# machine with neither shows dnf.
rpm_installer() {
	if command -v dnf >/dev/null; then
		echo dnf
	elif command -v yum >/dev/null; then
		echo yum
	elif $dry_run; then
		echo dnf
	else
		die "no dnf or yum on this machine to install $pkg (and its dependencies)"
	fi
}

# install_package: with the distribution's installer, not dpkg -i or rpm -i,
# so that the dependencies come along.
install_package() {
	[[ -f $pkg ]] || die "no package $pkg"
	pkg=$(cd "$(dirname "$pkg")" && pwd)/$(basename "$pkg")
	case $pkg in
	*.deb) run env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$pkg" ;;
	*.rpm) run "$(rpm_installer)" install -y "$pkg" ;;
	*) die "$pkg: not a .deb or an .rpm" ;;
	esac
}

install_binary() {
	[[ -f $binary ]] || die "no binary $binary (go build -o bin/imdsguard ./cmd/imdsguard)"
	if ! command -v iptables-nft >/dev/null && ! command -v iptables-legacy >/dev/null &&
		! command -v iptables >/dev/null && ! [[ -x /usr/sbin/iptables ]]; then
		echo "bake-ami: warning: no iptables on this machine; imdsguard needs it (apt-get install iptables, dnf install iptables-nft)" >&2
	fi
	run install -D -m 0755 "$binary" /usr/sbin/imdsguard
	run install -D -m 0644 "$root/systemd/imdsguard.service" /etc/systemd/system/$unit
	run install -D -m 0644 "$root/systemd/imdsguard.socket" /etc/systemd/system/$socket
	run install -D -m 0644 "$root/systemd/imdsguard.tmpfiles" /etc/tmpfiles.d/imdsguard.conf
	if [[ -e /etc/imdsguard/imdsguard.yaml ]]; then
		echo "bake-ami: keeping the existing /etc/imdsguard/imdsguard.yaml" >&2
	else
		run install -D -m 0644 "$root/packaging/imdsguard.yaml" /etc/imdsguard/imdsguard.yaml
	fi
}

# enable_service: enable for every boot (systemctl enable also works with
# no systemd running, e.g. in a chroot); start only when asked.
enable_service() {
	if systemd_running; then
		run systemctl daemon-reload
		run systemd-tmpfiles --create imdsguard.conf
	fi
	run systemctl enable $socket $unit
	if $start; then
		systemd_running || $dry_run || die "--start: systemd is not running here"
		run systemctl start $socket $unit
	fi
}

# imds_get PATH: a metadata value (IMDSv2), through imdsguard when it
# answers on its port, else from IMDS itself (whose answer, once imdsguard's
# rules are in place, also goes through imdsguard, or is refused).
imds_get() {
	local base=$imds token
	if curl -fsS -m 2 -o /dev/null -X OPTIONS "$proxy/latest/api/token" 2>/dev/null; then
		base=$proxy
	fi
	token=$(curl -fsS -m 5 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' "$base/latest/api/token") ||
		die "no IMDS token from $base: start imdsguard (--start) or pass --instance-id and --region"
	curl -fsS -m 5 -H "X-aws-ec2-metadata-token: $token" "$base/latest/meta-data/$1" ||
		die "no $1 from IMDS at $base: pass it as an option"
}

# lookup VALUE PATH: VALUE if set; else the metadata at PATH, or in a dry
# run a <placeholder> (and a comment saying where it would come from).
lookup() {
	if [[ -n $1 ]]; then
		echo "$1"
	elif $dry_run; then
		echo "# <${2##*/}>: asked from IMDS (meta-data/$2) through imdsguard on ${proxy#http://} when it answers" >&2
		echo "<${2##*/}>"
	else
		imds_get "$2"
	fi
}

# imdsv2: make IMDSv2 mandatory on this instance and/or on the image.
imdsv2() {
	local r id
	r=$(lookup "$region" placement/region)
	if [[ -n $lightsail ]]; then
		run aws lightsail update-instance-metadata-options --region "$r" \
			--instance-name "$lightsail" --http-tokens required
	elif $require_v2; then
		id=$(lookup "$instance_id" instance-id)
		run aws ec2 modify-instance-metadata-options --region "$r" --instance-id "$id" \
			--http-tokens required --http-put-response-hop-limit 1 --http-endpoint enabled
	fi
	if [[ -n $ami ]]; then
		run aws ec2 modify-image-attribute --region "$r" --image-id "$ami" --imds-support v2.0
	fi
}

main() {
	parse_args "$@"
	if ! $dry_run && ((EUID != 0)); then
		die "run as root (or try --dry-run)"
	fi
	if [[ -n $binary ]]; then
		install_binary
	else
		[[ -n $pkg ]] || pkg=$(newest_package)
		install_package
	fi
	enable_service
	if $require_v2 || [[ -n $ami ]]; then
		imdsv2
	fi
	if ! $dry_run; then
		echo "bake-ami: imdsguard installed and enabled$($start && echo ", running")"
	fi
}

main "$@"
