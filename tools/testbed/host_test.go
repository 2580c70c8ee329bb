package testbed

import (
	"strings"
	"testing"
)

func TestHostGuardConfigYAML(t *testing.T) {
	got := HostGuardConfig{HopLimitContainer: 1, Extra: "forwarded_headers: strip\n"}.YAML(8989, "/k", "/s")
	const want = `version: 1
listen: {port: 8989}
upstream: {url: "http://169.254.169.254"}
redirect: {ipv4: true, ipv6: true, container_interfaces: ["+"], keep_on_exit: true}
tokens: {key_file: "/k", hop_limit: {host: 1, container: 2}}
admin: {socket: "/s"}
audit: {summary_interval: 0s}
forwarded_headers: strip
runtimes: {docker: "", containerd: "", crio: ""}
`
	if strings.Replace(want, "container: 2", "container: 1", 1) != got {
		t.Fatalf("got\n%s", got)
	}
	got = HostGuardConfig{NoIPv6: true, ContainerInterfaces: []string{}}.YAML(1, "/k", "/s")
	if !strings.Contains(got, "redirect: {ipv4: true, ipv6: false, container_interfaces: [], keep_on_exit: true}\n") {
		t.Fatalf("got\n%s", got)
	}
}

func TestCurlStatus(t *testing.T) {
	cases := []struct {
		out, body string
		status    int
	}{
		{"i-1\nHTTP 200\n", "i-1", 200},
		{"a\nb\nHTTP 401\n", "a\nb", 401},
		{"HTTP 000\n", "", 0},
		{"", "", 0},
	}
	for _, c := range cases {
		body, status := CurlStatus(Result{Stdout: c.out})
		if body != c.body || status != c.status {
			t.Errorf("%q: %q %d, want %q %d", c.out, body, status, c.body, c.status)
		}
	}
}

func TestIMDSURL(t *testing.T) {
	if got := IMDSURL(4); got != "http://169.254.169.254" {
		t.Error(got)
	}
	if got := IMDSURL(6); got != "http://[fd00:ec2::254]" {
		t.Error(got)
	}
	if got := prefix24("198.51.100.2"); got != "198.51.100.0/24" {
		t.Error(got)
	}
}

func TestWorldExecutable(t *testing.T) {
	if !worldExecutable("/bin/sh") {
		t.Error("/bin/sh not world-executable")
	}
	dir := t.TempDir() // 0700
	p := dir + "/x"
	e := &Env{T: t, Dir: dir}
	e.WriteFile("x", "#!/bin/sh\n")
	if worldExecutable(p) {
		t.Errorf("%s in a 0700 directory reported world-executable", p)
	}
}

// TestHostBaseline builds the three namespaces (and c2) and shows the
// baseline without imdsguard: every caller reaches AEMM on both families,
// which refuses IMDSv1 with 401 (http-tokens required).
func TestHostBaseline(t *testing.T) {
	e := New(t)
	h := e.NewHost(HostOptions{SecondContainer: true})
	for _, ns := range h.Callers() {
		for _, v := range []int{4, 6} {
			r := e.Run(In(ns, e.Curl(IMDSURL(v)+"/latest/meta-data/instance-id")))
			if _, st := CurlStatus(r); st != 401 {
				t.Errorf("%s v%d: want 401 from AEMM, got %v", ns, v, r)
			}
		}
	}
	out := h.Shell(h.HostNS, "ip route get "+IMDSv4+"; ip -6 route get "+IMDSv6+"; sysctl -n net.ipv4.ip_forward")
	for _, want := range []string{"via " + IMDSLinkV4 + " dev " + UplinkIf, "via " + IMDSLinkV6 + " dev " + UplinkIf, "\n1\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("host routes/forwarding lack %q:\n%s", want, out)
		}
	}
}
