package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/internal/netnstest"
	"github.com/imdsguard/imdsguard/tools/testbed"
)

// The systemd unit (systemd/imdsguard.service), checked three ways:
// systemd-analyze verify and security on the file (offline, in a scratch
// root), and a boot: systemd 252 as PID 1 of fresh pid/mount/net/cgroup
// namespaces over an overlay of this machine's root, starting the unit for
// real. The boot's rules live in its own network namespace and its
// upstream is a closed loopback port: nothing reaches this host's rules or
// the metadata addresses.

// unitCaps are the capabilities the unit keeps, and why (the unit's
// comments say more; TestUnitBoot shows the daemon runs with exactly these).
var unitCaps = map[string]string{
	"CAP_NET_ADMIN":       "iptables (nf_tables netlink, legacy setsockopt); SO_MARK",
	"CAP_NET_RAW":         "iptables-legacy's raw socket (without it detection falls back to nft beside legacy rules)",
	"CAP_SYS_ADMIN":       "setns(CLONE_NEWNET) into container network namespaces",
	"CAP_SYS_PTRACE":      "readlink /proc/PID/{fd/N,exe,ns/net} of other users' processes",
	"CAP_DAC_READ_SEARCH": "listing /proc/PID/fd of other users' processes (0500)",
}

// capBits are the capability numbers of unitCaps (linux/capability.h).
var capBits = map[string]uint{
	"CAP_DAC_READ_SEARCH": 2, "CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13,
	"CAP_SYS_PTRACE": 19, "CAP_SYS_ADMIN": 21,
}

// cmdResult is how a short command ended.
type cmdResult struct {
	out string // stdout and stderr, interleaved
	err error
}

func (r cmdResult) String() string { return fmt.Sprintf("err=%v\n%s", r.err, r.out) }

// runCmd runs name to completion (killed and reaped at its deadline).
func runCmd(timeout time.Duration, env []string, name string, args ...string) cmdResult {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = time.Second
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s: killed after %v: %w", name, timeout, err)
	}
	return cmdResult{out: out.String(), err: err}
}

// mustRun runs name and fails t unless it exits 0.
func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	r := runCmd(2*time.Minute, nil, name, args...)
	if r.err != nil {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), r)
	}
	return r.out
}

func requireTools(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Skipf("%s not found: apt-get install systemd util-linux curl (it is part of those)", n)
		}
	}
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, mode); err != nil {
		t.Fatal(err)
	}
}

// analyzeRoot is a scratch root for systemd-analyze --root: this machine's
// system units, the unit under test, an executable at its ExecStart path
// and kill for ExecReload, plus extra files (path -> contents).
func analyzeRoot(t *testing.T, e *testbed.Env, unit string, extra map[string]string) string {
	t.Helper()
	root := t.TempDir()
	mustRun(t, "mkdir", "-p", root+"/usr/lib/systemd", root+"/etc/systemd/system")
	mustRun(t, "cp", "-a", "/usr/lib/systemd/system", root+"/usr/lib/systemd/")
	copyFile(t, e.Bin("imdsguard"), root+"/usr/sbin/imdsguard", 0o755)
	copyFile(t, "/bin/kill", root+"/bin/kill", 0o755)
	if err := os.WriteFile(root+"/usr/lib/systemd/system/imdsguard.service", []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	for p, data := range extra {
		if err := os.WriteFile(filepath.Join(root, p), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func readUnit(t *testing.T, e *testbed.Env) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(e.Root, "systemd", "imdsguard.service"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// Stubs with the ordering of cloud-init 22.4 and ifupdown (Debian 12 cloud
// images): cloud-init.service runs Before=sysinit.target but after the
// network, which is After=network-pre.target.
const (
	cloudInitStub = `[Unit]
DefaultDependencies=no
Wants=cloud-init-local.service sshd-keygen.service sshd.service
After=cloud-init-local.service systemd-networkd-wait-online.service networking.service
Before=network-online.target sshd-keygen.service sshd.service sysinit.target systemd-user-sessions.service
[Service]
Type=oneshot
ExecStart=/bin/kill -0 1
`
	networkingStub = `[Unit]
DefaultDependencies=no
Wants=network.target
After=local-fs.target network-pre.target systemd-sysctl.service systemd-modules-load.service
Before=network.target shutdown.target network-online.target
[Service]
Type=oneshot
ExecStart=/bin/kill -0 1
`
	cloudBootTarget = "[Unit]\nWants=imdsguard.service cloud-init.service networking.service\n"
)

// TestUnitVerify: systemd-analyze verify accepts the unit with no word of
// warning (it exits 0 even for unknown keys, so its output must be empty),
// and orders it into a cloud image's boot without a cycle. The last case is
// the control: with default dependencies the same boot has a cycle, which
// systemd would break by dropping cloud-init.
func TestUnitVerify(t *testing.T) {
	requireTools(t, "systemd-analyze")
	e := testbed.New(t)
	e.RequireBins("imdsguard")
	unit := readUnit(t, e)
	cloud := map[string]string{
		"etc/systemd/system/cloud-init.service": cloudInitStub,
		"etc/systemd/system/networking.service": networkingStub,
		"etc/systemd/system/boot-test.target":   cloudBootTarget,
	}
	withDefaults := strings.Replace(unit, "\nDefaultDependencies=no\n", "\nDefaultDependencies=yes\n", 1)
	cases := []struct {
		name, unit, verify string
		extra              map[string]string
		want               string // "" = no output at all
	}{
		{"unit as shipped", unit, "imdsguard.service", nil, ""},
		{"cloud image boot", unit, "boot-test.target", cloud, ""},
		{"control: default dependencies cycle", withDefaults, "boot-test.target", cloud, "Found ordering cycle"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := analyzeRoot(t, e, c.unit, c.extra)
			r := runCmd(time.Minute, []string{"SYSTEMD_LOG_COLOR=0"}, "systemd-analyze", "verify", "--root="+root, c.verify)
			out := strings.TrimSpace(r.out)
			switch {
			case c.want == "" && (r.err != nil || out != ""):
				t.Fatalf("verify %s: want silence, got %v", c.verify, r)
			case c.want != "" && !strings.Contains(out, c.want):
				t.Fatalf("verify %s: want %q, got %v", c.verify, c.want, r)
			}
		})
	}
}

// maxExposure is the `systemd-analyze security` score the unit must keep
// (3.3 when written; 0 is best, 10 worst). What keeps it from lower: root,
// the five capabilities, the host network, the full /proc.
const maxExposure = 3.5

// TestUnitSecurity: systemd-analyze security --offline scores the unit at
// or below maxExposure, and the checks that matter most pass.
func TestUnitSecurity(t *testing.T) {
	requireTools(t, "systemd-analyze")
	e := testbed.New(t)
	e.RequireBins("imdsguard")
	root := analyzeRoot(t, e, readUnit(t, e), nil)
	r := runCmd(time.Minute, []string{"SYSTEMD_COLORS=0"}, "systemd-analyze", "security", "--offline=yes", "--no-pager", "--root="+root, "imdsguard.service")
	m := regexp.MustCompile(`Overall exposure level for imdsguard.service: ([0-9.]+)`).FindStringSubmatch(r.out)
	if r.err != nil || m == nil {
		t.Fatalf("systemd-analyze security: %v", r)
	}
	score, _ := strconv.ParseFloat(m[1], 64)
	t.Logf("exposure %.1f (at most %.1f)", score, maxExposure)
	if score > maxExposure {
		t.Errorf("exposure %.1f > %.1f:\n%s", score, maxExposure, r.out)
	}
	for _, ok := range []string{
		"✓ NoNewPrivileges=", "✓ SystemCallFilter=~@privileged", "✓ SystemCallFilter=~@mount",
		"✓ SystemCallFilter=~@debug", "✓ CapabilityBoundingSet=~CAP_SYS_MODULE",
		"✓ CapabilityBoundingSet=~CAP_(CHOWN|FSETID|SETFCAP)", "✓ RestrictNamespaces=~mnt",
		"✓ RestrictNamespaces=~user", "✓ MemoryDenyWriteExecute=", "✓ ProtectKernelModules=",
		"✓ ProtectKernelTunables=", "✓ PrivateDevices=", "✓ RestrictAddressFamilies=~AF_PACKET",
	} {
		if !strings.Contains(r.out, ok) {
			t.Errorf("security report lacks %q", ok)
		}
	}
}

// TestUnitCapabilities: the bounding set is exactly unitCaps.
func TestUnitCapabilities(t *testing.T) {
	e := testbed.New(t)
	var got []string
	for _, l := range strings.Split(readUnit(t, e), "\n") {
		if v, ok := strings.CutPrefix(l, "CapabilityBoundingSet="); ok {
			got = append(got, strings.Fields(v)...)
		}
	}
	var want []string
	for c := range unitCaps {
		want = append(want, c)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("CapabilityBoundingSet = %v, want %v", got, want)
	}
}

// sigRTMin is SIGRTMIN as the kernel numbers it (glibc reserves 32 and 33).
const sigRTMin = syscall.Signal(34)

// boot is systemd running as PID 1 in namespaces of its own.
type boot struct {
	t    *testing.T
	pid1 string // host pid of the namespaces' PID 1
	cmd  *exec.Cmd
	done chan error
	cg   string // the cgroup it runs in
}

// bootStage2 runs as PID 1 of the new namespaces: it puts an overlay (on a
// tmpfs) over this machine's root, copies the test's files in, mounts the
// API file systems and execs systemd. $1 = work dir, $2 = files to copy.
const bootStage2 = `set -eu
W=$1 SRC=$2
mount -t tmpfs -o mode=0700 tmpfs "$W"
mkdir "$W/upper" "$W/work" "$W/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$W/upper,workdir=$W/work" "$W/root" || exit 77
R=$W/root
cp -a "$SRC/." "$R/"
mount -t proc proc "$R/proc"
mount -t tmpfs -o mode=0755,nosuid tmpfs "$R/dev"
for n in null zero full random urandom tty; do touch "$R/dev/$n"; mount --bind "/dev/$n" "$R/dev/$n"; done
touch "$R/dev/console"; mount --bind /dev/null "$R/dev/console"
mkdir "$R/dev/pts" "$R/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666 devpts "$R/dev/pts"
ln -s pts/ptmx "$R/dev/ptmx"
mount -t sysfs -o ro sysfs "$R/sys"
mount -t cgroup2 cgroup2 "$R/sys/fs/cgroup" || exit 77
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs "$R/run"
mount -t tmpfs -o nosuid,nodev tmpfs "$R/tmp"
cd "$R"
mkdir -p oldroot
pivot_root . oldroot
umount -l /oldroot
rmdir /oldroot
exec env -i container=imdsguard-test /lib/systemd/systemd --unit=imdsguard-test.target --log-target=journal --show-status=0
`

// bootTarget is what the boot starts: the journal, tmpfiles (for the
// xtables lock entry), imdsguard.
const bootTarget = `[Unit]
Description=imdsguard boot test
Wants=systemd-journald.socket systemd-journald.service systemd-tmpfiles-setup.service imdsguard.service
`

// bootConfig keeps the daemon away from IMDS: its upstream is a closed port.
const bootConfig = "version: 1\nupstream:\n  url: http://127.0.0.1:9\n"

// cgroup2Parent is where the boot's cgroup goes: this process's own cgroup
// in the cgroup2 hierarchy.
func cgroup2Parent(t *testing.T) string {
	t.Helper()
	mnt := ""
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for sc := bufio.NewScanner(f); sc.Scan(); {
		fields := strings.Fields(sc.Text())
		if i := slices.Index(fields, "-"); i > 0 && i+1 < len(fields) && fields[i+1] == "cgroup2" {
			mnt = fields[4]
			break
		}
	}
	data, _ := os.ReadFile("/proc/self/cgroup")
	for _, l := range strings.Split(string(data), "\n") {
		if p, ok := strings.CutPrefix(l, "0::"); ok && mnt != "" {
			return filepath.Join(mnt, p)
		}
	}
	t.Skip("no cgroup2 hierarchy mounted: the boot test needs one for systemd")
	return ""
}

// startBoot boots systemd with files (path -> contents, mode 0644; the
// binary is copied from bin/imdsguard) and waits until imdsguard.service
// has left "activating".
func startBoot(t *testing.T, e *testbed.Env, files map[string]string) *boot {
	t.Helper()
	src := t.TempDir()
	for p, data := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(src, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, p), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(t, e.Bin("imdsguard"), filepath.Join(src, "usr/sbin/imdsguard"), 0o755)
	work := t.TempDir()
	stage2 := filepath.Join(work, "stage2.sh")
	if err := os.WriteFile(stage2, []byte(bootStage2), 0o755); err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(work, "mnt")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	b := &boot{t: t, cg: filepath.Join(cgroup2Parent(t), fmt.Sprintf("imdsguard-boot-%d", os.Getpid())), done: make(chan error, 1)}
	if err := os.Mkdir(b.cg, 0o755); err != nil {
		t.Fatalf("make the boot's cgroup: %v", err)
	}
	var log strings.Builder
	b.cmd = exec.Command("sh", "-c", `echo $$ > "$0/cgroup.procs" && exec unshare --mount --pid --fork --kill-child --net --uts --ipc --cgroup --propagation private sh "$1" "$2" "$3"`,
		b.cg, stage2, mnt, src)
	b.cmd.Stdout, b.cmd.Stderr = &log, &log
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { b.done <- b.cmd.Wait() }()
	t.Cleanup(b.stop)
	b.pid1 = b.waitPID1(&log)
	b.waitSettled()
	return b
}

// waitPID1 finds unshare's child, the namespaces' PID 1, once it is systemd.
func (b *boot) waitPID1(log *strings.Builder) string {
	pid := strconv.Itoa(b.cmd.Process.Pid)
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		select {
		case err := <-b.done:
			b.done <- err
			var ee *exec.ExitError
			if errors.As(err, &ee) && ee.ExitCode() == 77 {
				b.t.Skipf("cannot build the boot's root here (overlay or cgroup2 mount refused): %s", log.String())
			}
			b.t.Fatalf("boot ended early: %v\n%s", err, log.String())
		default:
		}
		kids, _ := os.ReadFile("/proc/" + pid + "/task/" + pid + "/children")
		if f := strings.Fields(string(kids)); len(f) == 1 {
			if exe, _ := os.Readlink("/proc/" + f[0] + "/exe"); strings.HasSuffix(exe, "/systemd") {
				return f[0]
			}
		}
	}
	b.t.Fatalf("systemd did not start in the boot:\n%s", log.String())
	return ""
}

// in runs a command inside every namespace of the boot.
func (b *boot) in(args ...string) cmdResult {
	return runCmd(time.Minute, nil, "nsenter", append([]string{"-t", b.pid1, "-a"}, args...)...)
}

func (b *boot) mustIn(args ...string) string {
	b.t.Helper()
	r := b.in(args...)
	if r.err != nil {
		b.t.Fatalf("in the boot: %s: %v\njournal:\n%s", strings.Join(args, " "), r, b.journal("imdsguard.service"))
	}
	return r.out
}

// show is a unit property, "" while systemd cannot say (still booting).
func (b *boot) show(unit, prop string) string {
	r := b.in("systemctl", "show", "-p", prop, "--value", unit)
	if r.err != nil {
		return ""
	}
	return strings.TrimSpace(r.out)
}

func (b *boot) journal(unit string) string {
	return b.in("journalctl", "-u", unit, "-o", "cat", "--no-pager").out
}

// waitSettled waits until imdsguard.service is active or failed.
func (b *boot) waitSettled() {
	for deadline := time.Now().Add(45 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if s := b.show("imdsguard.service", "ActiveState"); s == "active" || s == "failed" {
			return
		}
	}
	b.t.Fatalf("imdsguard.service still starting:\n%s", b.journal("imdsguard.service"))
}

// daemonPid is the host pid of the service's main process.
func (b *boot) daemonPid() string {
	b.t.Helper()
	inner := []string{b.show("imdsguard.service", "MainPID")}
	if inner[0] == "" || inner[0] == "0" {
		b.t.Fatalf("imdsguard.service has no main process:\n%s", b.journal("imdsguard.service"))
	}
	// The boot's pids are translated through NSpid in /proc/PID/status.
	ents, _ := os.ReadDir("/proc")
	for _, d := range ents {
		st, err := os.ReadFile("/proc/" + d.Name() + "/status")
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(st), "\n") {
			if f := strings.Fields(l); len(f) == 3 && f[0] == "NSpid:" && f[2] == inner[0] {
				if ns, _ := os.Readlink("/proc/" + d.Name() + "/ns/pid"); ns != "" {
					if own, _ := os.Readlink("/proc/" + b.pid1 + "/ns/pid"); own == ns {
						return d.Name()
					}
				}
			}
		}
	}
	b.t.Fatalf("no host pid for the daemon (pid %s in the boot)", inner[0])
	return ""
}

// stop powers the boot off (SIGRTMIN+4), kills what is left, and removes
// its cgroup.
func (b *boot) stop() {
	if pid, err := strconv.Atoi(b.pid1); err == nil {
		syscall.Kill(pid, sigRTMin+4) // systemd: poweroff
	}
	select {
	case <-b.done:
	case <-time.After(30 * time.Second):
		b.cmd.Process.Kill() // unshare --kill-child takes PID 1, and so the namespace, along
		<-b.done
	}
	if b.cg == "" {
		return
	}
	var dirs []string
	filepath.WalkDir(b.cg, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	slices.Reverse(dirs)
	for _, d := range dirs {
		if err := os.Remove(d); err != nil {
			b.t.Logf("remove cgroup %s: %v", d, err)
		}
	}
}

var counters = regexp.MustCompile(`\[\d+:\d+\]`)

// hostRules is this machine's own rule set (without comments and
// counters), which the boot must not touch.
func hostRules(t *testing.T) string {
	t.Helper()
	var all strings.Builder
	for _, tool := range []string{"iptables-save", "ip6tables-save"} {
		if _, err := exec.LookPath(tool); err != nil {
			continue
		}
		for _, l := range strings.Split(mustRun(t, tool), "\n") {
			if !strings.HasPrefix(l, "#") {
				all.WriteString(counters.ReplaceAllString(l, "") + "\n")
			}
		}
	}
	return all.String()
}

// TestUnitBoot starts the unit under a real systemd (252 here) and checks
// what only a real start shows: READY=1 reached (Type=notify), exactly the
// five capabilities, no new privileges, a seccomp filter, the mount view,
// the directories, the rules, caller identity of another user's process
// under the sandbox, reload, restart, fail-closed stop, the sandbox's
// setns rules, and the watchdog.
func TestUnitBoot(t *testing.T) {
	netnstest.RequireRoot(t)
	requireTools(t, "unshare", "nsenter", "setpriv", "curl", "iptables-save")
	if _, err := os.Stat("/lib/systemd/systemd"); err != nil {
		t.Skip("no /lib/systemd/systemd: apt-get install systemd")
	}
	e := testbed.New(t)
	e.RequireBins("imdsguard")
	before := hostRules(t)
	tmpfiles, err := os.ReadFile(filepath.Join(e.Root, "systemd", "imdsguard.tmpfiles"))
	if err != nil {
		t.Fatal(err)
	}
	b := startBoot(t, e, map[string]string{
		"usr/lib/systemd/system/imdsguard.service": readUnit(t, e),
		"usr/lib/tmpfiles.d/imdsguard.conf":        string(tmpfiles),
		"etc/systemd/system/imdsguard-test.target": bootTarget,
		"etc/imdsguard/imdsguard.yaml":             bootConfig,
	})
	unit := readUnit(t, e)
	for _, c := range []struct {
		name  string
		check func(*testing.T, *boot)
	}{
		{"ready", bootReady},
		{"privileges", bootPrivileges},
		{"mounts", bootMounts},
		{"files", bootFiles},
		{"caller identity", bootIdentity},
		{"reload", bootReload},
		{"restart after kill", bootRestart},
		{"stop keeps rules", bootStopKeepsRules},
		{"setns sandbox", func(t *testing.T, b *boot) { bootSetns(t, b, unit) }},
		{"watchdog", bootWatchdog},
	} {
		t.Run(c.name, func(st *testing.T) {
			b.t = st // the boot's helpers fail the subtest that runs them
			defer func() { b.t = t }()
			c.check(st, b)
		})
	}
	if after := hostRules(t); after != before {
		t.Errorf("this machine's rules changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func bootReady(t *testing.T, b *boot) {
	for prop, want := range map[string]string{"ActiveState": "active", "SubState": "running", "Type": "notify", "NotifyAccess": "main", "WatchdogUSec": "30s"} {
		if got := b.show("imdsguard.service", prop); got != want {
			t.Errorf("%s = %q, want %q\n%s", prop, got, want, b.journal("imdsguard.service"))
		}
	}
	if st := b.show("imdsguard.service", "StatusText"); !strings.HasPrefix(st, "serving on") {
		t.Errorf("StatusText = %q, want the daemon's READY status", st)
	}
	if rules := b.mustIn("iptables-save"); !strings.Contains(rules, "IMDSGUARD-OUT") {
		t.Errorf("no IMDSGUARD rules in the boot's namespace:\n%s", rules)
	}
}

func bootPrivileges(t *testing.T, b *boot) {
	st, err := os.ReadFile("/proc/" + b.daemonPid() + "/status")
	if err != nil {
		t.Fatal(err)
	}
	var want uint64
	for c := range unitCaps {
		want |= 1 << capBits[c]
	}
	fields := map[string]string{}
	for _, l := range strings.Split(string(st), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			fields[k] = strings.TrimSpace(v)
		}
	}
	cases := []struct{ field, want string }{
		{"CapEff", fmt.Sprintf("%016x", want)},
		{"CapPrm", fmt.Sprintf("%016x", want)},
		{"CapBnd", fmt.Sprintf("%016x", want)},
		{"CapAmb", "0000000000000000"},
		{"NoNewPrivs", "1"},
		{"Seccomp", "2"},
	}
	for _, c := range cases {
		if fields[c.field] != c.want {
			t.Errorf("%s = %s, want %s", c.field, fields[c.field], c.want)
		}
	}
}

// bootMounts reads the daemon's mount table: what it may write.
func bootMounts(t *testing.T, b *boot) {
	data, err := os.ReadFile("/proc/" + b.daemonPid() + "/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	opts := map[string]string{} // mount point -> options (the last mount wins)
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) > 5 {
			opts[f[4]] = f[5]
		}
	}
	ro := func(p string) bool {
		for ; ; p = filepath.Dir(p) {
			if o, ok := opts[p]; ok {
				return slices.Contains(strings.Split(o, ","), "ro")
			}
			if p == "/" {
				return false
			}
		}
	}
	for path, wantRO := range map[string]bool{
		"/": true, "/usr/sbin": true, "/etc": true, "/etc/imdsguard": true, "/run": true, "/var/lib": true,
		"/proc/sys": true, "/sys": true, "/sys/fs/cgroup": true,
		"/var/lib/imdsguard": false, "/run/imdsguard": false, "/tmp": false,
	} {
		if got := ro(path); got != wantRO {
			t.Errorf("%s read-only = %v, want %v", path, got, wantRO)
		}
	}
}

func bootFiles(t *testing.T, b *boot) {
	for _, c := range []struct{ path, want string }{
		{"/var/lib/imdsguard", "700 root"},
		{"/var/lib/imdsguard/token.key", "600 root"},
		{"/run/imdsguard", "700 root"},
		{"/run/imdsguard/admin.sock", "600 root"},
		{"/run/xtables.lock", "600 root"}, // from imdsguard.tmpfiles
	} {
		if got := strings.TrimSpace(b.mustIn("stat", "-c", "%a %U", c.path)); got != c.want {
			t.Errorf("%s: %s, want %s", c.path, got, c.want)
		}
	}
}

// bootIdentity: a token request by another user's curl is attributed to its
// uid, pid, comm and exe, which takes CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH
// through the sandbox.
func bootIdentity(t *testing.T, b *boot) {
	r := b.in("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
		"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT",
		"-H", "X-aws-ec2-metadata-token-ttl-seconds: 60", "http://127.0.0.1:8989/latest/api/token")
	if r.err != nil || r.out != "200" {
		t.Fatalf("token PUT as nobody: %v", r)
	}
	want := regexp.MustCompile(`"caller":\{"class":"host","source":"127.0.0.1","uid":65534,"user":"nobody","pid":\d+,"comm":"curl","exe":"/usr/bin/curl"\}`)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if want.MatchString(b.journal("imdsguard.service")) {
			return
		}
	}
	t.Fatalf("no audit event naming nobody's curl:\n%s", b.journal("imdsguard.service"))
}

// bootReload: reload validates first, so a broken file fails the reload
// visibly and the daemon serves on.
func bootReload(t *testing.T, b *boot) {
	b.mustIn("systemctl", "reload", "imdsguard.service")
	b.mustIn("sh", "-c", "cp /etc/imdsguard/imdsguard.yaml /tmp/good.yaml && echo 'bogus: 1' >> /etc/imdsguard/imdsguard.yaml")
	defer b.mustIn("cp", "/tmp/good.yaml", "/etc/imdsguard/imdsguard.yaml")
	if r := b.in("systemctl", "reload", "imdsguard.service"); r.err == nil {
		t.Errorf("reload of an invalid file succeeded: %v", r)
	}
	if !strings.Contains(b.journal("imdsguard.service"), `unknown field "bogus"`) {
		t.Errorf("the reload's error is not in the journal")
	}
	if s := b.show("imdsguard.service", "ActiveState"); s != "active" {
		t.Errorf("after a refused reload: %s", s)
	}
}

func bootRestart(t *testing.T, b *boot) {
	n := b.show("imdsguard.service", "NRestarts")
	b.mustIn("systemctl", "kill", "-s", "KILL", "imdsguard.service")
	waitFor(t, b, 15*time.Second, "a restart after SIGKILL", func() bool {
		return b.show("imdsguard.service", "NRestarts") != n && b.show("imdsguard.service", "SubState") == "running"
	})
}

// bootStopKeepsRules: stopped, the daemon leaves its rules (fail closed):
// the proxy port refuses.
func bootStopKeepsRules(t *testing.T, b *boot) {
	b.mustIn("systemctl", "stop", "imdsguard.service")
	if rules := b.mustIn("iptables-save"); !strings.Contains(rules, "IMDSGUARD-OUT") {
		t.Errorf("rules gone after stop:\n%s", rules)
	}
	if r := b.in("curl", "-s", "-m", "2", "http://127.0.0.1:8989/"); r.err == nil {
		t.Errorf("the proxy port answered with the daemon stopped: %v", r)
	}
	b.mustIn("systemctl", "start", "imdsguard.service")
}

// bootSetns runs nsenter as a oneshot unit with the unit's sandbox lines:
// entering a network namespace works (the container lookups need it), not
// without CAP_SYS_ADMIN, and no other namespace type.
func bootSetns(t *testing.T, b *boot, unit string) {
	b.mustIn("ip", "netns", "add", "ctr")
	sandbox := sandboxLines(unit)
	cases := []struct {
		name, exec string
		drop       string // a capability taken out of the bounding set
		wantOK     bool
	}{
		{"net namespace", "/usr/bin/nsenter --net=/run/netns/ctr /usr/bin/true", "", true},
		{"net namespace without CAP_SYS_ADMIN", "/usr/bin/nsenter --net=/run/netns/ctr /usr/bin/true", "CAP_SYS_ADMIN", false},
		{"uts namespace", "/usr/bin/nsenter --uts=/proc/1/ns/uts /usr/bin/true", "", false},
		{"write /usr", "/usr/bin/touch /usr/sbin/imdsguard-probe", "", false},
	}
	for i, c := range cases {
		lines := sandbox
		if c.drop != "" {
			lines = strings.ReplaceAll(sandbox, " "+c.drop, "")
		}
		name := fmt.Sprintf("probe%d.service", i)
		b.mustIn("sh", "-c", fmt.Sprintf("cat > /etc/systemd/system/%s", name)+" <<'EOF'\n[Service]\nType=oneshot\nExecStart="+c.exec+"\n"+lines+"EOF\n")
		b.mustIn("systemctl", "daemon-reload")
		r := b.in("systemctl", "start", name)
		if (r.err == nil) != c.wantOK {
			t.Errorf("%s: want ok=%v, got %v\n%s", c.name, c.wantOK, r, b.journal(name))
		}
	}
}

// sandboxLines are the unit's [Service] lines that shape the sandbox.
func sandboxLines(unit string) string {
	re := regexp.MustCompile(`^(CapabilityBoundingSet|NoNewPrivileges|Protect\w+|Private\w+|DevicePolicy|ProcSubset|ReadOnlyPaths|RestrictAddressFamilies|RestrictNamespaces|SystemCall\w+|MemoryDenyWriteExecute|LockPersonality|RestrictRealtime|RestrictSUIDSGID|KeyringMode|UMask)=`)
	var out strings.Builder
	for _, l := range strings.Split(unit, "\n") {
		if re.MatchString(l) {
			out.WriteString(l + "\n")
		}
	}
	return out.String()
}

// bootWatchdog: a daemon that stops answering (SIGSTOP) is killed by the
// watchdog and restarted.
func bootWatchdog(t *testing.T, b *boot) {
	if testing.Short() {
		t.Skip("-short: the watchdog takes 30 s to fire")
	}
	n := b.show("imdsguard.service", "NRestarts")
	b.mustIn("systemctl", "kill", "-s", "STOP", "--kill-who=main", "imdsguard.service")
	waitFor(t, b, 60*time.Second, "the watchdog", func() bool {
		return b.show("imdsguard.service", "NRestarts") != n && b.show("imdsguard.service", "SubState") == "running"
	})
	if !strings.Contains(b.journal("imdsguard.service"), "Watchdog timeout") {
		t.Errorf("restarted, but not by the watchdog:\n%s", b.journal("imdsguard.service"))
	}
}

func waitFor(t *testing.T, b *boot, d time.Duration, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatalf("no %s within %v:\n%s", what, d, b.journal("imdsguard.service"))
}
