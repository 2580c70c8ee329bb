#!/usr/bin/env bash
# imdsguard demo (`sudo make demo`): a model of an EC2 instance in three
# network namespaces, with amazon-ec2-metadata-mock (AEMM) as an IMDS that
# requires tokens, imdsguard in the "host" namespace, and real clients (curl,
# aws-sdk-go v1 and v2, boto, botocore/aws CLI, ec2-metadata, ec2metadata)
# left at their built-in endpoint, 169.254.169.254.
#
#   igdemo-imds   lo: 169.254.169.254, fd00:ec2::254 (AEMM -I on :80 of each)
#                 eth0 192.0.2.2 ---- uplink0 192.0.2.1       igdemo-host
#                                     veth-c1 198.51.100.1     (imdsguard, its rules)
#   igdemo-c1     eth0 198.51.100.2 -/  (a "container")
#
# Everything stays inside these namespaces: no rule, address or packet
# touches the machine's own network. Everything is removed on exit, also on
# Ctrl-C or failure. Needs root, the binaries in bin/ (make build tools) and
# the Debian clients (scripts/install-test-deps.sh).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$root/bin"
P=igdemo
NS_IMDS=$P-imds
NS_HOST=$P-host
NS_C1=$P-c1
DEMO_USER=imdstest-demo
PORT=8989
IMDS4=169.254.169.254
IMDS6=fd00:ec2::254

# ---- presentation --------------------------------------------------------

if [[ -t 1 ]]; then
	B=$'\e[1m' D=$'\e[2m' R=$'\e[31m' C=$'\e[36m' N=$'\e[0m'
else
	B='' D='' R='' C='' N=''
fi

step() { printf '\n%s== %s ==%s\n' "$B" "$*" "$N"; }
say() { printf '%s%s%s\n' "$D" "$*" "$N"; }
die() {
	printf '%sdemo: %s%s\n' "$R" "$*" "$N" >&2
	exit 1
}

# ---- cleanup: only what this run made ------------------------------------

pids=()
made_ns=()
made_user=0
tmp=''

# alive PID: the process runs (a zombie, exited but not yet waited for, does not).
alive() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	[[ ${stat##*) } != Z* ]]
}

cleanup() {
	local rc=$? pid ns deadline
	trap - EXIT INT TERM
	for pid in "${pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	deadline=$((SECONDS + 5))
	for pid in "${pids[@]}"; do
		while alive "$pid" && ((SECONDS < deadline)); do
			sleep 0.05
		done
		if alive "$pid"; then
			printf 'demo: pid %s ignored SIGTERM for 5s; killing it\n' "$pid" >&2
			kill -KILL "$pid" 2>/dev/null || true
		fi
		wait "$pid" 2>/dev/null || true
	done
	for ns in "${made_ns[@]}"; do
		ip netns del "$ns" 2>/dev/null || true
	done
	if ((made_user)); then
		userdel "$DEMO_USER" 2>/dev/null || true
	fi
	if [[ -n $tmp ]]; then
		rm -rf "$tmp"
	fi
	if ((rc != 0)); then
		printf '%sdemo failed (exit %d); everything it made is removed%s\n' "$R" "$rc" "$N" >&2
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# forget PID: it exited (killed on purpose and waited for).
forget() {
	local keep=() p
	for p in "${pids[@]}"; do
		[[ $p == "$1" ]] || keep+=("$p")
	done
	pids=("${keep[@]}")
}

# wait_for DESCRIPTION SECONDS COMMAND...: poll COMMAND until it succeeds.
wait_for() {
	local what=$1 limit=$2
	shift 2
	local deadline=$((SECONDS + limit))
	until "$@" >/dev/null 2>&1; do
		((SECONDS < deadline)) || die "$what: not after ${limit}s"
		sleep 0.05
	done
}

# ---- checks ---------------------------------------------------------------

((EUID == 0)) || die "needs root (network namespaces, iptables): sudo make demo"
for b in aemm imdsguard imdsclient; do
	[[ -x $bin/$b ]] || die "missing bin/$b: run make build tools (or sudo make demo)"
done
for f in /usr/bin/curl /usr/bin/python3 /usr/bin/aws /usr/bin/ec2-metadata /usr/bin/ec2metadata /usr/bin/setpriv; do
	[[ -x $f ]] || die "missing $f: run scripts/install-test-deps.sh"
done
for ns in "$NS_IMDS" "$NS_HOST" "$NS_C1"; do
	if ip netns list | grep -qw "$ns"; then
		die "namespace $ns exists (another demo running, or one killed hard): remove it with ip netns del $ns"
	fi
done

# ---- the instance ---------------------------------------------------------

tmp=$(mktemp -d /tmp/igdemo.XXXXXX)
chmod 0711 "$tmp"
mkdir -m 0700 "$tmp/run"

if ! id "$DEMO_USER" >/dev/null 2>&1; then
	useradd --system --no-create-home --shell /usr/sbin/nologin "$DEMO_USER"
	made_user=1
fi
demo_uid=$(id -u "$DEMO_USER")
demo_gid=$(id -g "$DEMO_USER")

# Client homes: empty AWS config, so credentials can only come from IMDS.
for who in root user; do
	mkdir -p "$tmp/home-$who"
	: >"$tmp/home-$who/aws-config"
	: >"$tmp/home-$who/aws-credentials"
done
chown -R "$demo_uid:$demo_gid" "$tmp/home-user"
chmod 0755 "$tmp/home-user"
# The user may not reach bin/ (a checkout below /root): a copy it can run.
mkdir -m 0755 "$tmp/bin"
install -m 0755 "$bin/imdsclient" "$tmp/bin/imdsclient"

for ns in "$NS_IMDS" "$NS_HOST" "$NS_C1"; do
	ip netns add "$ns"
	made_ns+=("$ns")
	ip -n "$ns" link set lo up
done
ip -n "$NS_IMDS" addr add "$IMDS4/32" dev lo
ip -n "$NS_IMDS" -6 addr add "$IMDS6/128" dev lo nodad
# veth HOSTIF HOSTADDR4 HOSTADDR6 NS NSADDR4 NSADDR6
veth() {
	ip -n "$NS_HOST" link add "$1" type veth peer name eth0 netns "$4"
	ip -n "$NS_HOST" addr add "$2" dev "$1"
	ip -n "$NS_HOST" -6 addr add "$3" dev "$1" nodad
	ip -n "$4" addr add "$5" dev eth0
	ip -n "$4" -6 addr add "$6" dev eth0 nodad
	ip -n "$NS_HOST" link set "$1" up
	ip -n "$4" link set eth0 up
}
veth uplink0 192.0.2.1/24 2001:db8:1::1/64 "$NS_IMDS" 192.0.2.2/24 2001:db8:1::2/64
veth veth-c1 198.51.100.1/24 2001:db8:2::1/64 "$NS_C1" 198.51.100.2/24 2001:db8:2::2/64
ip -n "$NS_HOST" route add "$IMDS4/32" via 192.0.2.2
ip -n "$NS_HOST" -6 route add "$IMDS6/128" via 2001:db8:1::2
ip -n "$NS_IMDS" route add 198.51.100.0/24 via 192.0.2.1
ip -n "$NS_IMDS" -6 route add 2001:db8:2::/64 via 2001:db8:1::1
ip -n "$NS_C1" route add default via 198.51.100.1
ip -n "$NS_C1" -6 route add default via 2001:db8:2::1
ip netns exec "$NS_HOST" sysctl -q -w net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1

mkdir -p "$tmp/aemm-home"
HOME="$tmp/aemm-home" ip netns exec "$NS_IMDS" "$bin/aemm" -I -n "$IMDS4" -p 80 >"$tmp/aemm4.log" 2>&1 &
pids+=("$!")
HOME="$tmp/aemm-home" ip netns exec "$NS_IMDS" "$bin/aemm" -I -n "[$IMDS6]" -p 80 >"$tmp/aemm6.log" 2>&1 &
pids+=("$!")

# reachable NS ADDR PORT: a TCP connection from NS succeeds.
reachable() { ip netns exec "$1" bash -c "exec 3<>/dev/tcp/$2/$3"; }
no_tentative() { [[ -z $(ip -n "$1" -6 addr show tentative) ]]; }
for ns in "$NS_IMDS" "$NS_HOST" "$NS_C1"; do
	wait_for "IPv6 addresses of $ns" 10 no_tentative "$ns"
done
for ns in "$NS_HOST" "$NS_C1"; do
	wait_for "$ns reaching AEMM on $IMDS4" 15 reachable "$ns" "$IMDS4" 80
	wait_for "$ns reaching AEMM on $IMDS6" 15 reachable "$ns" "$IMDS6" 80
done

# ---- clients --------------------------------------------------------------

client_env() { # HOMEDIR
	printf '%s\n' env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "HOME=$1" \
		"AWS_CONFIG_FILE=$1/aws-config" "AWS_SHARED_CREDENTIALS_FILE=$1/aws-credentials" \
		AWS_DEFAULT_REGION=us-east-1 AWS_PAGER=
}
mapfile -t ENV_USER < <(client_env "$tmp/home-user")
mapfile -t ENV_ROOT < <(client_env "$tmp/home-root")

# run WHERE WHO LABEL COMMAND...: show and run COMMAND in namespace WHERE
# (host|c1) as WHO (user|root); its output is indented, its exit status
# shown when not 0. Never fails the demo: a client failing is part of it.
run() {
	local where=$1 who=$2 label=$3 ns pre=()
	shift 3
	case $where in
	host) ns=$NS_HOST ;;
	c1) ns=$NS_C1 ;;
	esac
	if [[ $who == user ]]; then
		pre=(setpriv "--reuid=$demo_uid" "--regid=$demo_gid" --clear-groups "${ENV_USER[@]}")
		who=$DEMO_USER
	else
		pre=("${ENV_ROOT[@]}")
	fi
	printf '%s[%s, %s]%s %s$ %s%s\n' "$C" "$where" "$who" "$N" "$B" "$label" "$N"
	local out rc=0
	out=$(ip netns exec "$ns" "${pre[@]}" "$@" 2>&1) || rc=$?
	if [[ -n $out ]]; then
		printf '%s\n' "$out" | xhtml_titles | head -n "${MAX_LINES:-12}" | sed 's/^/    /'
	fi
	if ((rc != 0)); then
		printf '    %s(exit %d)%s\n' "$R" "$rc" "$N"
	fi
}

# xhtml_titles: IMDS's XHTML error pages, shortened to their title.
xhtml_titles() {
	awk '/<\?xml/ { page = 1; title = "" }
		page && /<title>/ { title = $0; sub(/.*<title>/, "", title); sub(/<\/title>.*/, "", title) }
		page && /<\/html>/ { print "[XHTML error page: " title "]"; page = 0; next }
		!page { print }'
}

CURL=(/usr/bin/curl -s -S --max-time 5 -w '  [HTTP %{http_code}]\n')
BOTO='import boto.utils
m = boto.utils.get_instance_metadata(timeout=2, num_retries=1)
print("instance-id:", m["instance-id"] if m else m)'
BOTOCORE='from botocore.utils import InstanceMetadataFetcher as F
c = F(timeout=2, num_attempts=1).retrieve_iam_role_credentials()
print("access key:", c.get("access_key") if c else c)'
URL=http://$IMDS4/latest/meta-data

# ---- the audit log --------------------------------------------------------

guard_log=''
mark=0

# audit_table FILE FROM: the audit events of FILE after line FROM, one row each.
audit_table() {
	/usr/bin/python3 - "$1" "$2" <<'EOF'
import json, sys
path, skip = sys.argv[1], int(sys.argv[2])
rows = []
with open(path, errors="replace") as f:
    for n, line in enumerate(f):
        if n < skip or not line.startswith("{"):
            continue
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if ev.get("msg") != "imds request":
            continue
        c = ev.get("caller", {})
        who = c.get("user") or ("uid %s" % c["uid"] if "uid" in c else "?")
        where = c.get("class", "?")
        if where == "container":
            where = "container %s" % c.get("source", "")
        rows.append(("%s (%s)" % (who, where), c.get("comm", ""),
                     "%s %s" % (ev.get("method", ""), ev.get("path") or ev.get("target", "")),
                     ev.get("version") or ("token" if (ev.get("path") or "").endswith("/api/token") else "-"),
                     ev.get("decision", ""), str(ev.get("status", "")),
                     ev.get("rule", "")))
if not rows:
    print("    (no audit events)")
    sys.exit(0)
head = ("caller", "comm", "request", "ver", "decision", "status", "rule")
w = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
w[2] = min(w[2], 62)
fmt = "    " + "  ".join("%%-%ds" % x for x in w)
print(fmt % head)
for r in rows:
    r = list(r)
    if len(r[2]) > 62:
        r[2] = r[2][:59] + "..."
    print(fmt % tuple(r))
EOF
}

# show_audit: the audit events since the last call.
show_audit() {
	[[ -n $guard_log ]] || return 0
	printf '%s  audit log (imdsguard stderr, JSON lines) for this step:%s\n' "$D" "$N"
	audit_table "$guard_log" "$mark"
	mark=$(wc -l <"$guard_log")
}

# log_lines FILE MSG: the log lines of FILE whose msg is MSG, compact.
log_lines() {
	/usr/bin/python3 - "$1" "$2" <<'EOF'
import json, sys
for line in open(sys.argv[1], errors="replace"):
    try:
        ev = json.loads(line)
    except ValueError:
        continue
    if ev.get("msg") == sys.argv[2]:
        ev.pop("time", None)
        print("    " + json.dumps(ev)[:300])
EOF
}

aemm_requests() { cat "$tmp/aemm4.log" "$tmp/aemm6.log" | grep -c 'Received request' || true; }

# ---- imdsguard ------------------------------------------------------------

cat >"$tmp/imdsguard.yaml" <<EOF
# The demo's configuration: the defaults (default policy, both families,
# container interfaces docker0, br-+, cni+, veth+), with the key file and
# the admin socket in the demo's temporary directory, and every request on
# its own audit line (the default summarizes routine IMDSv2 reads once a
# minute) so that each step shows its decisions at once.
version: 1
listen: {port: $PORT}
upstream: {url: "http://$IMDS4"}
redirect: {ipv4: true, ipv6: true}
tokens: {key_file: "$tmp/run/token.key"}
admin: {socket: "$tmp/run/admin.sock"}
audit: {summary_interval: 0s}
EOF

guard_pid=''
guard_n=0
start_guard() {
	guard_n=$((guard_n + 1))
	guard_log=$tmp/imdsguard-$guard_n.log
	mark=0
	ip netns exec "$NS_HOST" "$bin/imdsguard" run --config "$tmp/imdsguard.yaml" 2>"$guard_log" &
	guard_pid=$!
	pids+=("$guard_pid")
	wait_for "imdsguard listening" 15 reachable "$NS_HOST" 127.0.0.1 "$PORT"
	say "  imdsguard (pid $guard_pid) runs in $NS_HOST:"
	log_lines "$guard_log" "imdsguard serving"
	mark=$(wc -l <"$guard_log")
}

# ---- the story ------------------------------------------------------------

printf '%simdsguard demo%s: IMDS (AEMM) requires tokens, like an instance set to\n' "$B" "$N"
printf 'http-tokens required. Clients run unconfigured (default endpoint %s);\n' "$IMDS4"
printf '"user" is %s (uid %s), a non-root account; c1 is a container.\n' "$DEMO_USER" "$demo_uid"

step "1. Without imdsguard: legacy IMDSv1-only clients break against a tokens-required IMDS"
run host user "curl $URL/instance-id" "${CURL[@]}" "$URL/instance-id"
run host user "python3 boto.utils.get_instance_metadata()   # boto 2.49, IMDSv1 only" /usr/bin/python3 -c "$BOTO"
run host user "imdsclient -sdk v1 -get instance-id            # aws-sdk-go v1.25, IMDSv1 only" "$tmp/bin/imdsclient" -sdk v1 -get instance-id
run host user "imdsclient -sdk v2 -get instance-id            # IMDSv2 clients are fine" "$tmp/bin/imdsclient" -sdk v2 -no-fallback -get instance-id
say "  -> 401 and {} straight from IMDS: the instance cannot require tokens without breaking these."

step "2. imdsguard starts in the host namespace: the same clients, unchanged, now work"
start_guard
run host user "curl $URL/instance-id" "${CURL[@]}" "$URL/instance-id"
run host user "python3 boto.utils.get_instance_metadata()" /usr/bin/python3 -c "$BOTO"
run host user "imdsclient -sdk v1 -get instance-id" "$tmp/bin/imdsclient" -sdk v1 -get instance-id
run host user "imdsclient -sdk v2 -get instance-id" "$tmp/bin/imdsclient" -sdk v2 -no-fallback -get instance-id
run host user "ec2-metadata -i" /usr/bin/ec2-metadata -i
run host user "ec2metadata --url http://$IMDS4/latest --instance-id" /usr/bin/ec2metadata --url "http://$IMDS4/latest" --instance-id
run host user "curl http://[$IMDS6]/latest/meta-data/instance-id   # IPv6 too" "${CURL[@]}" -g "http://[$IMDS6]/latest/meta-data/instance-id"
show_audit
say "  From the container c1 (through PREROUTING; tokens get hop limit 2):"
run c1 root "curl $URL/instance-id" "${CURL[@]}" "$URL/instance-id"
run c1 root "python3 boto.utils.get_instance_metadata()" /usr/bin/python3 -c "$BOTO"
run c1 root "imdsclient -sdk v1 -get instance-id" "$tmp/bin/imdsclient" -sdk v1 -get instance-id
run c1 root "imdsclient -sdk v2 -get instance-id" "$tmp/bin/imdsclient" -sdk v2 -no-fallback -get instance-id
run c1 root "ec2-metadata -i" /usr/bin/ec2-metadata -i
run c1 root "aws configure export-credentials --format env" /usr/bin/aws configure export-credentials --format env
show_audit
say "  -> v1 requests are answered through one IMDSv2 session; v2 clients get tokens minted by imdsguard."
say "     (The container's uid 0 is not the host's root: users entries name host users, so it gets the others rule, without the role credentials.)"

step "3. Role credentials: denied to the non-root user, served to root (default policy)"
run host user "aws configure export-credentials --format env" /usr/bin/aws configure export-credentials --format env
run host user "python3 botocore InstanceMetadataFetcher().retrieve_iam_role_credentials()" /usr/bin/python3 -c "$BOTOCORE"
run host user "curl $URL/iam/security-credentials/" "${CURL[@]}" "$URL/iam/security-credentials/"
run host root "aws configure export-credentials --format env" /usr/bin/aws configure export-credentials --format env
show_audit

step "4. Bypass attempts: one canonical path decides, relayed requests are refused"
run host user "curl --path-as-is $URL/placement/..%2fiam/security-credentials/" \
	"${CURL[@]}" --path-as-is "$URL/placement/..%2fiam/security-credentials/"
run host user "curl --path-as-is http://$IMDS4//latest/meta-data/%69am/security-credentials/" \
	"${CURL[@]}" --path-as-is "http://$IMDS4//latest/meta-data/%69am/security-credentials/"
run host root "curl -H 'X-Forwarded-For: 203.0.113.9' $URL/instance-id   # an SSRF relay" \
	"${CURL[@]}" -H 'X-Forwarded-For: 203.0.113.9' "$URL/instance-id"
show_audit

step "5. The kernel rules: imdsguard rules status"
MAX_LINES=60 run host root "imdsguard rules status" "$bin/imdsguard" rules status --config "$tmp/imdsguard.yaml"

step "6. imdsguard killed (SIGKILL): the rules stay, callers are refused, never sent to IMDS"
token=$(ip netns exec "$NS_HOST" setpriv "--reuid=$demo_uid" "--regid=$demo_gid" --clear-groups \
	/usr/bin/curl -s --max-time 5 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 600' "http://$IMDS4/latest/api/token")
say "  (before the kill, $DEMO_USER took a token: ${token:0:16}...)"
before=$(aemm_requests)
kill -KILL "$guard_pid"
wait "$guard_pid" 2>/dev/null || true
forget "$guard_pid"
say "  killed pid $guard_pid"
run host root "imdsguard rules status | head -1" bash -c "'$bin/imdsguard' rules status --config '$tmp/imdsguard.yaml' | head -n 1"
run host user "curl $URL/instance-id" "${CURL[@]}" "$URL/instance-id"
run c1 root "curl $URL/instance-id" "${CURL[@]}" "$URL/instance-id"
run host user "curl http://[$IMDS6]/latest/meta-data/instance-id" "${CURL[@]}" -g "http://[$IMDS6]/latest/meta-data/instance-id"
run host user "python3 boto.utils.get_instance_metadata()" /usr/bin/python3 -c "$BOTO"
after=$(aemm_requests)
say "  -> connection refused (fail closed); requests that reached IMDS meanwhile: $((after - before))"

step "7. imdsguard restarted: served again (tokens survive: the key file persists)"
start_guard
run host user "curl $URL/instance-id" "${CURL[@]}" "$URL/instance-id"
run host user "python3 boto.utils.get_instance_metadata()" /usr/bin/python3 -c "$BOTO"
run c1 root "imdsclient -sdk v2 -get instance-id" "$tmp/bin/imdsclient" -sdk v2 -no-fallback -get instance-id
run host user "curl -H 'X-aws-ec2-metadata-token: <the token from before the kill>' $URL/instance-id" \
	"${CURL[@]}" -H "X-aws-ec2-metadata-token: $token" "$URL/instance-id"
show_audit

step "Done"
if ((made_user)); then
	say "Cleaning up: processes stopped, namespaces $P-* and user $DEMO_USER removed."
else
	say "Cleaning up: processes stopped, namespaces $P-* removed."
fi
