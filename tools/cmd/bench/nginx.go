package main

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/imdsguard/imdsguard/tools/testbed"
)

// nginxValid is the cached instance's proxy_cache_valid, stated in the
// report: nginx cannot tell the paths that never change from those that do,
// so one short lifetime for all, imdsguard's own for paths that can change.
const nginxValid = "200 301 404 5s"

// nginxConf is the configuration of an instance whose files live in dir,
// listening on 127.0.0.1:port in front of upstream (host:port), with
// proxy_cache when cache is set; asRoot: it is started as root. It is what a user tuning nginx as an IMDS
// proxy would write, so that the comparison is fair to nginx; the reasons
// are comments in the file itself.
func nginxConf(dir string, port int, upstream string, cache, asRoot bool) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("# nginx as a reverse proxy in front of fakeimds, written by tools/cmd/bench.")
	w("# Everything it writes is in %s: nothing of the system's nginx is touched.", dir)
	if asRoot {
		w("# The master keeps root, the workers run as nobody: the usual split.")
		w("user nobody nogroup;")
	}
	w("# One worker per CPU.")
	w("worker_processes auto;")
	w("# Sized for 1,000 clients and their upstream connections.")
	w("worker_rlimit_nofile 16384;")
	w("pid %s/nginx.pid;", dir)
	w("error_log %s/error.log warn;", dir)
	w("events { worker_connections 8192; }")
	w("http {")
	w("    # No access log: imdsguard summarizes routine reads in its audit log.")
	w("    access_log off;")
	w("    keepalive_timeout 60s;")
	w("    # nginx closes a client connection after 1,000 requests by default;")
	w("    # Go's server, imdsguard's, has no such limit.")
	w("    keepalive_requests 1000000;")
	for _, p := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		w("    %s_temp_path %s/tmp/%s;", p, dir, p)
	}
	if cache {
		w("    proxy_cache_path %s/cache levels=1:2 keys_zone=imds:1m max_size=16m inactive=10m use_temp_path=off;", dir)
	}
	nginxServer(w, port, upstream, cache)
	w("}")
	return b.String()
}

// nginxServer writes the upstream and server blocks.
func nginxServer(w func(string, ...any), port int, upstream string, cache bool) {
	w("    # Upstream keep-alive: HTTP/1.1, an empty Connection header, and no")
	w("    # close every 1,000 requests.")
	w("    upstream imds {")
	w("        server %s;", upstream)
	w("        keepalive 32;")
	w("        keepalive_requests 1000000;")
	w("    }")
	w("    server {")
	w("        # Go listens with the kernel's somaxconn (4096).")
	w("        listen 127.0.0.1:%d backlog=4096;", port)
	w("        location / {")
	w("            proxy_pass http://imds;")
	w("            proxy_http_version 1.1;")
	w(`            proxy_set_header Connection "";`)
	if cache {
		nginxCacheConf(w)
	}
	w("        }")
	w("    }")
}

// nginxCacheConf writes the cached instance's location directives.
func nginxCacheConf(w func(string, ...any)) {
	w("            proxy_cache imds;")
	w("            # The token is in the key: a request is served only what the")
	w("            # same token was served.")
	w("            proxy_cache_key $request_method$request_uri$http_x_aws_ec2_metadata_token;")
	w("            proxy_cache_valid %s;", nginxValid)
	w("            # One request fills a missing entry, the others wait for it.")
	w("            proxy_cache_lock on;")
	w("            # An expired entry is refreshed by one request in the background")
	w("            # while the others get the stale copy.")
	w("            proxy_cache_use_stale updating;")
	w("            proxy_cache_background_update on;")
}

// startNginx writes the configuration of tg into dir, checks it with
// nginx -t and starts nginx in the foreground (daemon off: the process
// started is the master) inside ns.
func startNginx(t testbed.TB, nginx, ns, dir string, tg *target, upstream string) *testbed.Proc {
	t.Helper()
	for _, d := range []string{"tmp", "cache"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatalf("nginx directory %s: %v", d, err)
		}
	}
	asRoot := os.Geteuid() == 0
	if asRoot {
		nginxOwnDirs(t, dir)
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(nginxConf(dir, tg.Port, upstream, tg.Cached(), asRoot)), 0o644); err != nil {
		t.Fatalf("write %s: %v", conf, err)
	}
	base := []string{"-p", dir + "/", "-e", filepath.Join(dir, "error.log"), "-c", conf}
	if r := testbed.RunCombined(30*time.Second, nil, nginx, append([]string{"-t", "-q"}, base...)...); r.Err != nil {
		t.Fatalf("nginx -t refuses %s: %v", conf, r)
	}
	p := testbed.StartProc(t, testbed.ProcSpec{Name: "nginx " + tg.ID, Path: nginx, NS: ns,
		Args: append(base, "-g", "daemon off;")})
	testbed.WaitListening(t, p, ns, tg.Addr())
	return p
}

// nginxOwnDirs lets the workers (nobody) write their directories, which
// they reach through the temporary directory: traverse, not list.
func nginxOwnDirs(t testbed.TB, dir string) {
	t.Helper()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatalf("chmod %s: %v", d, err)
		}
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Fatalf("nginx's workers: user nobody: %v", err)
	}
	g, err := user.LookupGroup("nogroup")
	if err != nil {
		t.Fatalf("nginx's workers: group nogroup: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(g.Gid)
	for _, d := range []string{"tmp", "cache"} {
		if err := os.Chown(filepath.Join(dir, d), uid, gid); err != nil {
			t.Fatalf("chown nobody %s: %v", d, err)
		}
	}
}
