package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/internal/netnstest"
	"github.com/imdsguard/imdsguard/internal/testenv"
	"github.com/imdsguard/imdsguard/tools/testbed"
)

// TestRPMBoot: the .rpm's scriptlets under a real systemd (252, as on
// Amazon Linux 2023), run by rpm itself (Debian's rpm 4.18, --nodeps: the
// boot has no glibc or iptables-nft package) in the systemd boot of
// TestUnitBoot (its own namespaces over an overlay of this machine's root,
// imdsguard.service started from the same units, kept away from IMDS by
// its configuration): rpm -i enables both units and keeps the existing
// configuration; rpm -U to a newer version restarts the running daemon
// while a client refused nothing; rpm -e stops and disables both, removes
// the rules, and systemd forgets the units.
func TestRPMBoot(t *testing.T) {
	netnstest.RequireRoot(t)
	testbed.RequireTools(t, "rpm", "unshare", "nsenter", "setpriv", "curl", "iptables-save")
	if _, err := os.Stat("/lib/systemd/systemd"); err != nil {
		testenv.Skipf(t, "no /lib/systemd/systemd: apt-get install systemd")
	}
	e := testbed.New(t)
	before := testbed.HostRules(t)
	pkg, _ := buildRPM(t, e)
	next, _ := rpmNextVersion(t, e)
	tmpfiles, err := os.ReadFile(filepath.Join(e.Root, "systemd", "imdsguard.tmpfiles"))
	if err != nil {
		t.Fatal(err)
	}
	b := e.StartBoot(map[string]string{
		"root/imdsguard.rpm":                       readFile(t, pkg),
		"root/imdsguard-next.rpm":                  readFile(t, next),
		"usr/lib/systemd/system/imdsguard.service": readUnit(t, e),
		"usr/lib/systemd/system/imdsguard.socket":  readSocketUnit(t, e),
		"usr/lib/tmpfiles.d/imdsguard.conf":        string(tmpfiles),
		"etc/imdsguard/imdsguard.yaml":             bootConfig,
	})
	for _, c := range []struct {
		name  string
		check func(*testing.T, *testbed.Boot)
	}{
		{"rpm -i enables", rpmBootInstall},
		{"rpm -U restarts, refusing nothing", rpmBootUpgrade},
		{"rpm -e stops, disables, removes the rules", rpmBootErase},
	} {
		t.Run(c.name, func(st *testing.T) {
			b.T = st
			defer func() { b.T = t }()
			c.check(st, b)
		})
	}
	if after := testbed.HostRules(t); after != before {
		t.Errorf("this machine's rules changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// rpmInBoot runs rpm ARGS in the boot, with the database where RPM
// distributions keep it.
func rpmInBoot(b *testbed.Boot, args ...string) string {
	b.T.Helper()
	return b.MustIn(append([]string{"rpm", "--dbpath", "/var/lib/rpm"}, args...)...)
}

func rpmBootInstall(t *testing.T, b *testbed.Boot) {
	for _, u := range []string{"imdsguard.service", "imdsguard.socket"} {
		if st := b.Show(u, "UnitFileState"); st != "disabled" {
			t.Fatalf("%s before rpm -i: %q, want disabled (the boot only starts it)", u, st)
		}
	}
	out := rpmInBoot(b, "-i", "--nodeps", "/root/imdsguard.rpm")
	t.Logf("rpm -i: %s", strings.TrimSpace(out))
	for _, u := range []string{"imdsguard.service", "imdsguard.socket"} {
		if st := b.Show(u, "UnitFileState"); st != "enabled" {
			t.Errorf("%s after rpm -i: %q, want enabled", u, st)
		}
		// systemd loads the file rpm wrote (Debian's systemd names it by
		// /lib, a symlink to usr/lib here).
		if p := b.Show(u, "FragmentPath"); strings.TrimSpace(b.MustIn("readlink", "-f", p)) != "/usr/lib/systemd/system/"+u {
			t.Errorf("%s loaded from %q", u, p)
		}
	}
	// The configuration that was there stays (the daemon's, away from
	// IMDS); the package's default lands beside it.
	if got := b.MustIn("cat", rpmConfig); got != bootConfig {
		t.Errorf("rpm -i replaced the existing %s: %q", rpmConfig, got)
	}
	b.MustIn("test", "-f", rpmConfig+".rpmnew")
}

func rpmBootUpgrade(t *testing.T, b *testbed.Boot) {
	b.MustIn("systemctl", "start", "imdsguard.socket", "imdsguard.service")
	pid := b.DaemonPid()
	loop := make(chan testbed.Output, 1)
	go func() { loop <- b.In("sh", "-c", bootLoop) }()
	time.Sleep(1500 * time.Millisecond)
	rpmInBoot(b, "-U", "--nodeps", "/root/imdsguard-next.rpm")
	out := <-loop
	ok, failed, errs := parseLoop(out.Out)
	t.Logf("rpm -U while a client read in a loop: %d token PUTs answered 200, %d failed %v", ok, failed, errs)
	if out.Err != nil || ok == 0 || failed != 0 {
		t.Errorf("rpm -U: %d failed requests: %v", failed, out)
	}
	if v := rpmInBoot(b, "-q", "--qf", "%{VERSION}", "imdsguard"); v != "9999.0.0" {
		t.Errorf("installed version after rpm -U: %q", v)
	}
	if now := b.DaemonPid(); now == pid {
		t.Errorf("rpm -U did not restart the daemon (pid %s before and after)", pid)
	}
	if st := b.Show("imdsguard.service", "UnitFileState"); st != "enabled" {
		t.Errorf("imdsguard.service after rpm -U: %q, want enabled", st)
	}
}

func rpmBootErase(t *testing.T, b *testbed.Boot) {
	if rules := b.MustIn("iptables-save"); !strings.Contains(rules, "IMDSGUARD") {
		t.Fatalf("no IMDSGUARD rules before rpm -e:\n%s", rules)
	}
	rpmInBoot(b, "-e", "--nodeps", "imdsguard")
	for _, u := range []string{"imdsguard.service", "imdsguard.socket"} {
		if st := b.Show(u, "ActiveState") + " " + b.Show(u, "LoadState"); st != "inactive not-found" {
			t.Errorf("%s after rpm -e: %s, want inactive not-found", u, st)
		}
	}
	if rules := b.MustIn("iptables-save"); strings.Contains(rules, "IMDSGUARD") {
		t.Errorf("IMDSGUARD rules left after rpm -e:\n%s", rules)
	}
	for _, p := range []string{enableLink, socketLink, "/usr/sbin/imdsguard", "/var/lib/imdsguard"} {
		if r := b.In("test", "-e", p); r.Err == nil {
			t.Errorf("%s still there after rpm -e", p)
		}
	}
	b.MustIn("test", "-f", rpmConfig+".rpmsave")
}
