package testbed

import "testing"

func TestGuardConfigYAML(t *testing.T) {
	c := GuardConfig{
		Port: 8989, UpstreamURL: "http://127.0.0.1:1338", RedirectIPv4: true,
		KeyFile: "/tmp/x/token.key", AdminSocket: "/tmp/igt1/admin.sock",
		Extra: "forwarded_headers: strip\n\n",
	}
	const want = `version: 1
listen: {port: 8989}
upstream: {url: "http://127.0.0.1:1338"}
redirect: {ipv4: true, ipv6: false}
tokens: {key_file: "/tmp/x/token.key"}
admin: {socket: "/tmp/igt1/admin.sock"}
audit: {summary_interval: 0s}
forwarded_headers: strip
runtimes: {docker: "", containerd: "", crio: ""}
`
	if got := c.YAML(); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if got := (GuardConfig{Raw: "version: 1\n"}).YAML(); got != "version: 1\n" {
		t.Fatalf("Raw ignored: %q", got)
	}
}
