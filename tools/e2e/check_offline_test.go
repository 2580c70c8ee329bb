package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imdsguard/imdsguard/internal/netnstest"
	"github.com/imdsguard/imdsguard/internal/testenv"
	"github.com/imdsguard/imdsguard/tools/testbed"
)

// TestCheckOffline: `imdsguard check --offline --root DIR` on an image
// root laid out as the .deb installs it, run in a network namespace with
// no network at all (lo down: no IMDS, no rules), and judged against what
// systemd's own `systemctl --root DIR` does to the root and says of it
// (is-enabled), with no running systemd involved:
//
//   - installed, not enabled: both units FAIL (systemctl: disabled), exit 1;
//   - after `systemctl --root DIR enable`: every line passes, exit 0;
//   - after `systemctl --root DIR mask imdsguard.service`: FAIL, masked;
//   - a token key left in the image: WARN, exit 0.
func TestCheckOffline(t *testing.T) {
	e := testbed.New(t)
	e.RequireBins("imdsguard")
	systemctl, err := exec.LookPath("systemctl")
	if err != nil {
		testenv.Skipf(t, "no systemctl (apt-get install systemd): %v", err)
	}
	ns := netnstest.New(t, "offline") // lo down: nothing reachable
	root := t.TempDir()
	install := func(src, dst string, mode os.FileMode) {
		b, err := os.ReadFile(filepath.Join(e.Root, src))
		if err != nil {
			t.Fatal(err)
		}
		full := filepath.Join(root, dst)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, mode); err != nil {
			t.Fatal(err)
		}
	}
	// packaging/nfpm.yaml's file list.
	install("systemd/imdsguard.service", "/lib/systemd/system/imdsguard.service", 0o644)
	install("systemd/imdsguard.socket", "/lib/systemd/system/imdsguard.socket", 0o644)
	install("systemd/imdsguard.tmpfiles", "/usr/lib/tmpfiles.d/imdsguard.conf", 0o644)
	install("packaging/imdsguard.yaml", "/etc/imdsguard/imdsguard.yaml", 0o644)

	offline := func(wantOK bool, want ...string) string {
		t.Helper()
		r := e.Run(testbed.Cmd{Name: "imdsguard check --offline", Path: e.Bin("imdsguard"), Args: []string{"check", "--offline", "--root", root}, NS: ns})
		t.Logf("imdsguard check --offline:\n%s%s", r.Stdout, r.Stderr)
		if (r.Err == nil) != wantOK {
			t.Errorf("check --offline: %v, want success %v", r.Err, wantOK)
		}
		wantLines(t, "check --offline", r.Stdout, want...)
		return r.Stdout
	}
	sysctl := func(args ...string) string {
		t.Helper()
		r := e.Run(testbed.Cmd{Name: "systemctl", Path: systemctl, Args: append([]string{"--root=" + root}, args...)})
		return strings.TrimSpace(r.Stdout)
	}

	offline(false, "PASS  the imdsguard binary runs", "PASS  the configuration file loads and validates", "/etc/imdsguard/imdsguard.yaml loads and validates",
		"FAIL  imdsguard.service is installed and enabled", "/lib/systemd/system/imdsguard.service; not enabled",
		"fix: systemctl --root="+root+" enable imdsguard.service", "FAIL  imdsguard.socket is installed and enabled",
		"PASS  state for the first boot", "/usr/lib/tmpfiles.d/imdsguard.conf: present")
	if got := sysctl("is-enabled", "imdsguard.service"); got != "disabled" {
		t.Errorf("systemctl is-enabled before enable: %q, want disabled", got)
	}

	if r := e.Run(testbed.Cmd{Name: "systemctl enable", Path: systemctl, Args: []string{"--root=" + root, "enable", "imdsguard.socket", "imdsguard.service"}}); r.Err != nil {
		t.Fatalf("systemctl --root enable: %v", r)
	}
	offline(true, "PASS  imdsguard.service is installed and enabled", "enabled: /etc/systemd/system/multi-user.target.wants/imdsguard.service",
		"PASS  imdsguard.socket is installed and enabled", "enabled: /etc/systemd/system/sockets.target.wants/imdsguard.socket",
		"the image is ready")
	for _, u := range []string{"imdsguard.service", "imdsguard.socket"} {
		if got := sysctl("is-enabled", u); got != "enabled" {
			t.Errorf("systemctl is-enabled %s after enable: %q, want enabled", u, got)
		}
	}

	key := filepath.Join(root, "/var/lib/imdsguard/token.key")
	if err := os.MkdirAll(filepath.Dir(key), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, []byte("a key baked into the image"), 0o600); err != nil {
		t.Fatal(err)
	}
	offline(true, "WARN  state for the first boot", "would share one token key", "fix: rm /var/lib/imdsguard/token.key")

	if r := e.Run(testbed.Cmd{Name: "systemctl mask", Path: systemctl, Args: []string{"--root=" + root, "mask", "imdsguard.service"}}); r.Err != nil {
		t.Fatalf("systemctl --root mask: %v", r)
	}
	offline(false, "FAIL  imdsguard.service is installed and enabled", "imdsguard.service is masked")
	if got := sysctl("is-enabled", "imdsguard.service"); got != "masked" {
		t.Errorf("systemctl is-enabled after mask: %q, want masked", got)
	}
}
