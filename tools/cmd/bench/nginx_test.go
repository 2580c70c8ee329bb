package main

import (
	"strings"
	"testing"
)

func TestNginxConf(t *testing.T) {
	plain := nginxConf("/w/nginx-b", 9002, "127.0.0.1:8990", false, true)
	cached := nginxConf("/w/nginx-c", 9003, "127.0.0.1:8990", true, false)
	for _, want := range []string{"user nobody nogroup;", "listen 127.0.0.1:9002 backlog=4096;", "server 127.0.0.1:8990;",
		"pid /w/nginx-b/nginx.pid;", "proxy_temp_path /w/nginx-b/tmp/proxy;", "keepalive 32;"} {
		if !strings.Contains(plain, want) {
			t.Errorf("plain configuration lacks %q", want)
		}
	}
	if strings.Contains(plain, "proxy_cache") {
		t.Error("plain configuration has a cache")
	}
	for _, want := range []string{"proxy_cache imds;", "proxy_cache_path /w/nginx-c/cache ", "proxy_cache_lock on;",
		"proxy_cache_valid " + nginxValid + ";", "proxy_cache_key $request_method$request_uri$http_x_aws_ec2_metadata_token;"} {
		if !strings.Contains(cached, want) {
			t.Errorf("cached configuration lacks %q", want)
		}
	}
	if strings.Contains(cached, "user ") {
		t.Error("a user directive when not started as root")
	}
	if o, c := strings.Count(cached, "{"), strings.Count(cached, "}"); o != c {
		t.Errorf("cached configuration: %d '{' and %d '}'", o, c)
	}
}
