package main

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/imdsguard/imdsguard/tools/testbed"
)

// guardYAML is imdsguard's configuration for a target: endpoint mode (no
// redirect rules), upstream fakeimds, the response cache on or off, and
// every other section the daemon's default. It names only fields every
// imdsguard with a response cache knows, so that an older build can be
// the B of an A/B.
func guardYAML(port int, upstreamURL, keyFile, socket string, cache bool) string {
	return fmt.Sprintf(`version: 1
listen: {port: %d}
upstream: {url: %q}
redirect: {ipv4: false, ipv6: false}
tokens: {key_file: %q}
admin: {socket: %q}
cache: {enabled: %t}
`, port, upstreamURL, keyFile, socket, cache)
}

// startGuard starts the imdsguard binary bin as tg inside ns, in front of
// upstreamURL, and gets an imdsguard token from it for wrk.
func startGuard(e *testbed.Env, bin, ns string, tg *target, upstreamURL string) *testbed.Proc {
	t := e.T
	t.Helper()
	name := "imdsguard-" + strings.ReplaceAll(tg.ID, "'", "b")
	key := filepath.Join(e.Dir, name+".key")
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		t.Fatalf("token key of %s: %v", name, err)
	}
	if err := os.WriteFile(key, secret, 0o600); err != nil {
		t.Fatalf("write %s: %v", key, err)
	}
	yaml := guardYAML(tg.Port, upstreamURL, key, filepath.Join(e.Dir, name+".sock"), tg.Cached())
	g := e.StartGuard(testbed.GuardConfig{Port: tg.Port, Raw: yaml}, testbed.GuardOptions{NS: ns, Bin: bin})
	g.Name = name
	tg.Header = "X-aws-ec2-metadata-token: " + putToken(t, ns, tg.Addr(), name)
	return g.Proc
}

// putToken asks addr for an IMDSv2 token (PUT /latest/api/token) from
// inside ns.
func putToken(t testbed.TB, ns, addr, name string) string {
	t.Helper()
	r, err := testbed.RawRequestIn(ns, addr, "PUT", "/latest/api/token",
		[]string{"X-aws-ec2-metadata-token-ttl-seconds: 21600"})
	if err != nil {
		t.Fatalf("token PUT to %s: %v", name, err)
	}
	if r.Status != 200 || len(r.Body) == 0 {
		t.Fatalf("token PUT to %s: %s %q", name, r.StatusLine, r.Body)
	}
	return string(r.Body)
}
