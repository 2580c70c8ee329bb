package check

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// image lays out an image root as the package installs it: both units in
// /lib/systemd/system, enabled when enable is set, the tmpfiles.d entry.
func image(t *testing.T, enable bool) string {
	t.Helper()
	root := t.TempDir()
	write := func(p, body string) {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("/lib/systemd/system/imdsguard.service", "[Unit]\nDescription=x\n[Install]\nWantedBy=multi-user.target\n")
	write("/lib/systemd/system/imdsguard.socket", "[Socket]\nListenStream=127.0.0.1:8989\n[Install]\nWantedBy=sockets.target\n")
	write("/usr/lib/tmpfiles.d/imdsguard.conf", "f /run/xtables.lock 0600 root root -\n")
	if enable {
		link(t, root, "/etc/systemd/system/multi-user.target.wants/imdsguard.service", "/lib/systemd/system/imdsguard.service")
		link(t, root, "/etc/systemd/system/sockets.target.wants/imdsguard.socket", "/lib/systemd/system/imdsguard.socket")
	}
	return root
}

func link(t *testing.T, root, p, dst string) {
	t.Helper()
	full := filepath.Join(root, p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(dst, full); err != nil {
		t.Fatal(err)
	}
}

func TestOffline(t *testing.T) {
	off := func(root string) Offline {
		return Offline{Root: root, Version: "1.2.3", Config: "/etc/imdsguard/imdsguard.yaml", ConfigDefault: true, KeyFile: "/var/lib/imdsguard/token.key"}
	}
	for _, c := range []struct {
		name   string
		setup  func(t *testing.T) Offline
		ok     bool
		want   []string
		unwant []string
	}{
		{"enabled", func(t *testing.T) Offline { return off(image(t, true)) }, true, []string{
			"PASS  the imdsguard binary runs\n      imdsguard 1.2.3",
			"PASS  the configuration file loads and validates\n      no file at /etc/imdsguard/imdsguard.yaml: the built-in defaults apply",
			"PASS  imdsguard.service is installed and enabled\n      /lib/systemd/system/imdsguard.service; enabled: /etc/systemd/system/multi-user.target.wants/imdsguard.service",
			"PASS  imdsguard.socket is installed and enabled", "sockets.target.wants/imdsguard.socket",
			"/var/lib/imdsguard: absent; systemd creates it", "/usr/lib/tmpfiles.d/imdsguard.conf: present"}, []string{"WARN", "FAIL"}},
		{"not enabled", func(t *testing.T) Offline { return off(image(t, false)) }, false, []string{
			"FAIL  imdsguard.service is installed and enabled", "not enabled (read from the enablement symlinks): /etc/systemd/system/multi-user.target.wants/imdsguard.service: absent",
			"fix: systemctl --root=", "enable imdsguard.service", "FAIL  imdsguard.socket"}, nil},
		{"not installed", func(t *testing.T) Offline { return off(t.TempDir()) }, false, []string{
			"imdsguard.service is in none of /etc/systemd/system, /usr/lib/systemd/system, /lib/systemd/system",
			"WARN  state for the first boot", "imdsguard.conf: in none of"}, nil},
		{"masked", func(t *testing.T) Offline {
			root := image(t, true)
			link(t, root, "/etc/systemd/system/imdsguard.service", "/dev/null")
			return off(root)
		}, false, []string{"imdsguard.service is masked", "unmask imdsguard.service"}, nil},
		{"dangling link", func(t *testing.T) Offline {
			root := image(t, false)
			link(t, root, "/etc/systemd/system/multi-user.target.wants/imdsguard.service", "/usr/lib/systemd/system/imdsguard.service")
			link(t, root, "/etc/systemd/system/sockets.target.wants/imdsguard.socket", "../../../../lib/systemd/system/imdsguard.socket")
			return off(root)
		}, false, []string{"FAIL  imdsguard.service", "PASS  imdsguard.socket"}, nil},
		{"bad configuration", func(t *testing.T) Offline {
			o := off(image(t, true))
			o.ConfigDefault, o.ConfigErr = false, errors.New("imdsguard.yaml:3: policy.mode: \"x\"")
			return o
		}, false, []string{"FAIL  the configuration file loads and validates", "policy.mode", "imdsguard policy check /etc/imdsguard/imdsguard.yaml"}, nil},
		{"token key in the image", func(t *testing.T) Offline {
			root := image(t, true)
			if err := os.MkdirAll(filepath.Join(root, "/var/lib/imdsguard"), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, "/var/lib/imdsguard/token.key"), []byte("k"), 0o600); err != nil {
				t.Fatal(err)
			}
			return off(root)
		}, true, []string{"WARN  state for the first boot", "/var/lib/imdsguard: present, mode 0700", "would share one token key", "fix: rm /var/lib/imdsguard/token.key"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := c.setup(t).Run()
			out := r.String()
			if r.OK() != c.ok || len(r) != 5 {
				t.Errorf("OK() = %v with %d checks, want %v:\n%s", r.OK(), len(r), c.ok, out)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("lacks %q:\n%s", w, out)
				}
			}
			for _, u := range c.unwant {
				if strings.Contains(out, u) {
					t.Errorf("has %q:\n%s", u, out)
				}
			}
		})
	}
}

func TestOfflineSystemctl(t *testing.T) {
	for root, want := range map[string]string{"/": "systemctl", "": "systemctl", "/mnt/img/": "systemctl --root=/mnt/img/"} {
		if got := (Offline{Root: root}).systemctl(); got != want {
			t.Errorf("root %q: %q, want %q", root, got, want)
		}
	}
}
