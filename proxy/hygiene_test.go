package proxy

import (
	"net/http"
	"testing"
)

// Whatever a client sends, in either forwarded_headers mode, IMDS receives
// only the headers it needs: never X-Forwarded-For, Forwarded, Via or a
// hop-by-hop header.
func TestUpstreamNeverSeesCallerHeaders(t *testing.T) {
	nasty := []string{
		"X-Forwarded-For: 203.0.113.7", "x-forwarded-for: 198.51.100.9", "Forwarded: for=203.0.113.7",
		"X-Forwarded-Host: evil", "X-Forwarded-Proto: https", "X-Real-Ip: 203.0.113.7", "Via: 1.1 relay",
		"Connection: X-Custom, Keep-Alive", "X-Custom: hop", "Keep-Alive: timeout=5", "Te: trailers",
		"Upgrade: websocket", "Proxy-Authorization: Basic eDp5", "Proxy-Connection: keep-alive",
		"Cookie: a=b", "Authorization: Bearer x", "Accept-Encoding: gzip", "User-Agent: curl/8",
		"X-aws-ec2-metadata-token-ttl-seconds: 60",
	}
	for _, mode := range []struct {
		name string
		opts []envOpt
	}{{"reject", nil}, {"strip", []envOpt{strip}}} {
		t.Run(mode.name, func(t *testing.T) {
			e := newEnv(t, mode.opts...)
			tok := e.mint(t)
			for _, target := range []string{"/latest/meta-data/instance-id", "http://169.254.169.254/latest/meta-data/placement/availability-zone"} {
				for _, h := range append([][]string{nil}, nasty) {
					e.raw(t, "GET", target, h...)
					e.raw(t, "GET", target, append(h, "X-aws-ec2-metadata-token: "+tok)...)
					e.raw(t, "HEAD", target, h...)
				}
				for _, h := range nasty {
					e.raw(t, "GET", target, h)
				}
			}
			checkUpstreamHeaders(t, e.imds.received())
		})
	}
}

func checkUpstreamHeaders(t *testing.T, reqs []*http.Request) {
	t.Helper()
	gets := 0
	for _, r := range reqs {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			gets++
		}
		for name, vals := range r.Header {
			switch name {
			case "X-Aws-Ec2-Metadata-Token", "User-Agent", "Accept":
			case "X-Aws-Ec2-Metadata-Token-Ttl-Seconds", "Content-Length": // the daemon's own token PUT
				if r.Method != http.MethodPut {
					t.Errorf("%s %s carried %s", r.Method, r.RequestURI, name)
				}
			default:
				t.Errorf("IMDS received %s: %q on %s %s", name, vals, r.Method, r.RequestURI)
			}
		}
		if ua := r.Header.Get("User-Agent"); ua != "imdsguard-test" {
			t.Errorf("IMDS received User-Agent %q, not the daemon's", ua)
		}
		if len(r.TransferEncoding) > 0 || r.Close && r.Method != http.MethodPut {
			t.Errorf("hop-by-hop framing reached IMDS: %v close=%v", r.TransferEncoding, r.Close)
		}
	}
	if gets == 0 {
		t.Fatal("no request reached IMDS: the test proves nothing")
	}
}

// IMDS's answer reaches the caller without the headers that belong to the
// upstream connection: the hop-by-hop ones and those its Connection names.
func TestPassThroughDropsConnectionHeaders(t *testing.T) {
	resp := &http.Response{Header: http.Header{
		"Connection":      {"X-Upstream-Only, keep-alive", " x-other "},
		"X-Upstream-Only": {"hop"},
		"X-Other":         {"hop"},
		"Keep-Alive":      {"timeout=5"},
		"Content-Type":    {"text/plain"},
		"Server":          {"EC2ws"},
	}}
	got := passThrough(resp).Header
	for _, h := range []string{"Connection", "X-Upstream-Only", "X-Other", "Keep-Alive"} {
		if v, ok := got[h]; ok {
			t.Errorf("%s: %q reached the caller", h, v)
		}
	}
	if got.Get("Content-Type") != "text/plain" || got.Get("Server") != "EC2ws" {
		t.Errorf("end-to-end headers lost: %v", got)
	}
}
