package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/imdsguard/imdsguard/policy"
)

// These run `imdsguard check` with the redirect off, so that nothing is
// sent to a metadata address: IMDS is a local test server (upstream.url
// and --metadata-url), and the runtimes are a fake CRI socket and a socket
// that is not there. The real rules and the redirect are checked in
// tools/e2e (TestCheckNode).

// criVersion is a CRI runtime service that answers Version only.
type criVersion struct {
	runtimeapi.UnimplementedRuntimeServiceServer
}

func (criVersion) Version(context.Context, *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{RuntimeName: "cri-o", RuntimeVersion: "1.30.4", RuntimeApiVersion: "v1"}, nil
}

// checkConfig writes a configuration without a redirect, IMDS at imds,
// the proxy on a port nothing listens on, and the runtimes given.
func checkConfig(t *testing.T, imds, runtimes string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	path := filepath.Join(t.TempDir(), "imdsguard.yaml")
	yaml := "version: 1\nlisten: {port: " + strconv.Itoa(port) + "}\nupstream: {url: \"" + imds + "\"}\n" +
		"redirect: {ipv4: false, ipv6: false}\nruntimes: " + runtimes + "\n"
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCheckCommand(t *testing.T) {
	imds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPut && r.URL.Path == "/latest/api/token":
			w.Write([]byte("tok"))
		case r.Header.Get("X-aws-ec2-metadata-token") == "tok":
			w.WriteHeader(http.StatusNotFound) // tags off
		default:
			w.WriteHeader(http.StatusUnauthorized) // http-tokens required
		}
	}))
	defer imds.Close()
	dir := t.TempDir()
	crio := filepath.Join(dir, "crio.sock")
	ln, err := net.Listen("unix", crio)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	runtimeapi.RegisterRuntimeServiceServer(srv, criVersion{})
	go srv.Serve(ln)
	defer srv.Stop()
	cfg := checkConfig(t, imds.URL, `{docker: "`+filepath.Join(dir, "docker.sock")+`", containerd: "", crio: "`+crio+`"}`)

	code, out, errb := runCLI(t, "check", "--config", cfg, "--metadata-url", imds.URL)
	if n := strings.Count(out, "PASS  ") + strings.Count(out, "FAIL  ") + strings.Count(out, "WARN  ") + strings.Count(out, "INFO  "); code != 1 || n != 12 {
		t.Fatalf("check: exit %d with %d results, want 1 with 12\n%s%s", code, n, out, errb)
	}
	for _, want := range []string{
		"FAIL  redirect rules installed", "redirect.ipv4 and redirect.ipv6 are off",
		"PASS  landing addresses on lo", "none needed",
		"PASS  container runtimes answer",
		"docker at " + filepath.Join(dir, "docker.sock") + ": not on this node",
		"cri-o at " + crio + ": answers: cri-o 1.30.4 (CRI v1)",
		"FAIL  imdsguard answers on its port",
		"FAIL  imdsguard answers metadata requests through the redirect", "not sent: the redirect rules are not complete",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	// The direct probe sets the daemon's firewall mark: root's (CAP_NET_ADMIN).
	if os.Geteuid() == 0 {
		for _, want := range []string{"PASS  IMDS itself rejects IMDSv1 without a token", "PASS  IMDS's endpoint is enabled",
			"INFO  IMDS's IPv6 endpoint answers as redirect.ipv6 expects", "not asked: redirect.ipv6 is off and upstream.url is not IMDS's address",
			"INFO  tags in instance metadata", "off: /latest/meta-data/tags/instance answers 404",
			"the policy allows tags to rule root, rule others: they get 404 until tags are on"} {
			if !strings.Contains(out, want) {
				t.Errorf("check output lacks %q:\n%s", want, out)
			}
		}
	}
}

// --ready: only the three results, none about IMDS or runtimes; exit 1
// when not ready, with the FAIL lines on stdout and the verdict on stderr.
func TestCheckReadyFlag(t *testing.T) {
	cfg := checkConfig(t, "http://127.0.0.1:1", `{docker: "", containerd: "", crio: ""}`)
	code, out, errb := runCLI(t, "check", "--ready", "--config", cfg)
	if code != 1 || strings.Count(out, "PASS  ")+strings.Count(out, "FAIL  ") != 3 {
		t.Fatalf("check --ready: exit %d, want 1 with 3 results\n%s%s", code, out, errb)
	}
	for _, want := range []string{"FAIL  redirect rules installed", "PASS  landing addresses on lo", "FAIL  imdsguard answers metadata requests through the redirect"} {
		if !strings.Contains(out, want) {
			t.Errorf("check --ready output lacks %q:\n%s", want, out)
		}
	}
	for _, not := range []string{"IMDS itself rejects", "runtimes answer", "IMDSv1 request", "on its port"} {
		if strings.Contains(out, not) {
			t.Errorf("check --ready output has %q:\n%s", not, out)
		}
	}
	if errb != "imdsguard: not ready: see the FAIL lines\n" {
		t.Errorf("stderr %q", errb)
	}
	code, out, _ = runCLI(t, "check", "--help")
	if code != 0 || !strings.Contains(out, "--ready") || !strings.Contains(out, `--ready runs only 1, 2 and 6`) {
		t.Errorf("check --help: %d\n%s", code, out)
	}
}

// --offline on an image root: the units installed and enabled as
// systemctl --root enable leaves them, the configuration file loaded from
// inside the root; exit 0. Without the enablement symlinks: exit 1.
func TestCheckOffline(t *testing.T) {
	root := t.TempDir()
	put := func(p, body string) {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []string{"imdsguard.service", "imdsguard.socket"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "systemd", u))
		if err != nil {
			t.Fatal(err)
		}
		put("/usr/lib/systemd/system/"+u, string(b))
	}
	put("/usr/lib/tmpfiles.d/imdsguard.conf", "f /run/xtables.lock 0600 root root -\n")
	put("/etc/imdsguard/imdsguard.yaml", "version: 1\nlisten: {port: 8989}\n")
	code, out, errb := runCLI(t, "check", "--offline", "--root", root)
	if code != 1 || !strings.Contains(out, "FAIL  imdsguard.service is installed and enabled") {
		t.Fatalf("check --offline, not enabled: exit %d\n%s%s", code, out, errb)
	}
	for target, u := range map[string]string{"multi-user.target": "imdsguard.service", "sockets.target": "imdsguard.socket"} {
		link := filepath.Join(root, "/etc/systemd/system", target+".wants", u)
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("/usr/lib/systemd/system/"+u, link); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errb = runCLI(t, "check", "--offline", "--root", root)
	if code != 0 || strings.Contains(out, "FAIL") || !strings.Contains(out, "/etc/imdsguard/imdsguard.yaml loads and validates") ||
		!strings.Contains(out, "the image is ready") {
		t.Fatalf("check --offline: exit %d\n%s%s", code, out, errb)
	}
	put("/etc/imdsguard/imdsguard.yaml", "version: 1\nlisten: {port: nope}\n")
	if code, out, _ = runCLI(t, "check", "--offline", "--root", root); code != 1 || !strings.Contains(out, "FAIL  the configuration file loads and validates") {
		t.Errorf("check --offline, bad configuration: exit %d\n%s", code, out)
	}
}

// tagsAllowedTo: the rules that, applying, give the instance's tags.
func TestTagsAllowedTo(t *testing.T) {
	deny := policy.DefaultConfig()
	deny.Rules[1].Deny = append(deny.Rules[1].Deny, "/meta-data/tags/**")
	onlyName := policy.Config{Default: "allow", Rules: []policy.RuleConfig{
		{Name: "app", Match: &policy.MatchConfig{Users: []string{"1000"}}, Allow: []string{"/meta-data/tags/instance/Name"}},
		{Name: "none", Match: &policy.MatchConfig{Users: []string{"1001"}}, Allow: []string{"/meta-data/instance-id"}},
	}}
	for _, c := range []struct {
		name string
		cfg  policy.Config
		want string
	}{
		{"default policy", policy.DefaultConfig(), "rule root, rule others"},
		{"tags denied to others", deny, "rule root"},
		{"one tag, default allow", onlyName, "rule app, callers no rule matches (default: allow)"},
	} {
		if got := strings.Join(tagsAllowedTo(c.cfg), ", "); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
