# shellcheck shell=bash
# shellcheck disable=SC2154 # work, names, pids and die come from the sourcing script
# nginx as a reference reverse proxy for scripts/bench.sh; sourced, not run.
#
# Each instance lives in a directory of its own under the work directory:
# its configuration, pid file, error log, temporary files and cache, so it
# touches nothing of the system's nginx (no /etc/nginx, no /var/log/nginx,
# no port below 1024). Run as root, the master keeps root and the workers
# run as nobody, the usual split; the directories they write are theirs.
#
# The configuration is what a user tuning nginx as an IMDS proxy would write,
# so that the comparison is fair to nginx:
#   - worker_processes: one per CPU (auto);
#   - upstream keep-alive: `keepalive 32` with HTTP/1.1 and an empty
#     Connection header, keepalive_requests raised so that neither side
#     closes a busy connection every 1,000 requests (nginx's default; Go's
#     server, like imdsguard, has no such limit);
#   - listen backlog 4096 (Go listens with the kernel's somaxconn, 4096 here),
#     worker_connections and worker_rlimit_nofile sized for 1,000 clients;
#   - no access log (imdsguard writes its audit log, which it cannot turn off;
#     the report says so);
#   - cached instance: proxy_cache with proxy_cache_lock (one request fills a
#     missing entry, the others wait for it), proxy_cache_use_stale updating
#     with proxy_cache_background_update (an expired entry is refreshed by
#     one request in the background while the others get the stale copy),
#     every answer valid 5 s (nginx cannot tell the paths that never change
#     from those that do, so one short lifetime for all: imdsguard's own
#     lifetime for paths that can change), and the token in the cache key so
#     that a request is served only what the same token was served.

# nginx_valid is the cached instance's proxy_cache_valid, stated in the report.
nginx_valid='200 301 404 5s'

# nginx_conf DIR PORT UPSTREAM CACHE: the configuration of an instance in DIR
# listening on 127.0.0.1:PORT in front of UPSTREAM (host:port); CACHE 1 adds
# the cache.
nginx_conf() {
	local dir=$1 port=$2 upstream=$3 cache=$4 user=
	((EUID == 0)) && user='user nobody nogroup;'
	cat <<-EOF
	# nginx as a $( ((cache == 1)) && echo caching || echo plain) reverse proxy for scripts/bench.sh.
	$user
	worker_processes auto;
	worker_rlimit_nofile 16384;
	pid $dir/nginx.pid;
	error_log $dir/error.log warn;
	events { worker_connections 8192; }
	http {
	    access_log off;
	    keepalive_timeout 60s;
	    keepalive_requests 1000000;
	    client_body_temp_path $dir/tmp/client_body;
	    proxy_temp_path $dir/tmp/proxy;
	    fastcgi_temp_path $dir/tmp/fastcgi;
	    uwsgi_temp_path $dir/tmp/uwsgi;
	    scgi_temp_path $dir/tmp/scgi;
	EOF
	if ((cache == 1)); then
		cat <<-EOF
		    proxy_cache_path $dir/cache levels=1:2 keys_zone=imds:1m max_size=16m inactive=10m use_temp_path=off;
		EOF
	fi
	cat <<-EOF
	    upstream imds {
	        server $upstream;
	        keepalive 32;
	        keepalive_requests 1000000;
	    }
	    server {
	        listen 127.0.0.1:$port backlog=4096;
	        location / {
	            proxy_pass http://imds;
	            proxy_http_version 1.1;
	            proxy_set_header Connection "";
	EOF
	if ((cache == 1)); then
		cat <<-EOF
		            proxy_cache imds;
		            proxy_cache_key \$request_method\$request_uri\$http_x_aws_ec2_metadata_token;
		            proxy_cache_valid $nginx_valid;
		            proxy_cache_lock on;
		            proxy_cache_use_stale updating;
		            proxy_cache_background_update on;
		EOF
	fi
	cat <<-EOF
	        }
	    }
	}
	EOF
}

# start_nginx NAME PORT UPSTREAM CACHE: writes the configuration to
# $work/NAME/nginx.conf, checks it, starts nginx in the foreground of a
# background job (daemon off: $! is the master) and sets nginx_pid.
start_nginx() {
	local name=$1 port=$2 upstream=$3 cache=$4 dir=$work/$1
	mkdir -p "$dir/tmp" "$dir/cache"
	if ((EUID == 0)); then
		# The workers (nobody) reach their directories through the work
		# directory (mktemp: 0700), which they may traverse, not list.
		chmod 711 "$work" "$dir"
		chown nobody:nogroup "$dir/tmp" "$dir/cache"
	fi
	nginx_conf "$dir" "$port" "$upstream" "$cache" >"$dir/nginx.conf"
	nginx -t -q -p "$dir/" -e "$dir/error.log" -c "$dir/nginx.conf" >"$work/$name.check" 2>&1 ||
		die "nginx refuses the configuration $dir/nginx.conf: $(cat "$work/$name.check")"
	nginx -p "$dir/" -e "$dir/error.log" -c "$dir/nginx.conf" -g 'daemon off;' >"$work/$name.out" 2>"$work/$name.err" &
	nginx_pid=$!
	pids+=("$nginx_pid")
	# shellcheck disable=SC2034,SC2004 # names: the sourcing script's associative array
	names[$nginx_pid]=$name
}
