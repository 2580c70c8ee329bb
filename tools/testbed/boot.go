package testbed

import (
	"bufio"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/imdsguard/imdsguard/internal/testenv"
)

// The systemd boot: systemd 252 as PID 1 of fresh pid, mount, net, uts,
// ipc and cgroup namespaces (unshare), over an overlay of this machine's
// root, starting imdsguard.service for real. systemd-nspawn and a running
// systemd are not needed. The boot's rules live in its own network
// namespace, so nothing reaches this host's rules; a test keeps the daemon
// away from IMDS through its configuration file.

// sigRTMin is SIGRTMIN as the kernel numbers it (glibc reserves 32 and 33).
const sigRTMin = syscall.Signal(34)

// Boot is systemd running as PID 1 in namespaces of its own.
type Boot struct {
	// T is failed (or skipped) by the Boot's helpers; a test running checks
	// as subtests sets it to the subtest for the time of each.
	T    TB
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

// cgroup2Parent is where the boot's cgroup goes: this process's own cgroup
// in the cgroup2 hierarchy.
func cgroup2Parent(t TB) string {
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
	testenv.Skipf(t, "no cgroup2 hierarchy mounted: the boot test needs one for systemd")
	return ""
}

// StartBoot boots systemd as root with files (path -> contents, mode 0644)
// put over this machine's root, and imdsguard-test.target, which starts the
// journal, tmpfiles and imdsguard.service; the binary is copied from
// bin/imdsguard to /usr/sbin/imdsguard. It returns once imdsguard.service
// has left "activating", and powers the boot off when the test ends. It
// skips the test when this machine cannot build the boot's root (no cgroup2
// hierarchy, overlay or cgroup2 mount refused).
func (e *Env) StartBoot(files map[string]string) *Boot {
	t := e.T
	t.Helper()
	src := e.bootFiles(files)
	work := t.TempDir()
	stage2 := filepath.Join(work, "stage2.sh")
	if err := os.WriteFile(stage2, []byte(bootStage2), 0o755); err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(work, "mnt")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	b := &Boot{T: t, cg: filepath.Join(cgroup2Parent(t), fmt.Sprintf("imdsguard-boot-%d", os.Getpid())), done: make(chan error, 1)}
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

// bootFiles writes what the boot's root gets on top of this machine's into
// a temporary directory: files, the target and the binary.
func (e *Env) bootFiles(files map[string]string) string {
	t := e.T
	t.Helper()
	src := t.TempDir()
	all := maps.Clone(files)
	all["etc/systemd/system/imdsguard-test.target"] = bootTarget
	for p, data := range all {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(src, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, p), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	CopyFile(t, e.Bin("imdsguard"), filepath.Join(src, "usr/sbin/imdsguard"), 0o755)
	return src
}

// waitPID1 finds unshare's child, the namespaces' PID 1, once it is systemd.
func (b *Boot) waitPID1(log *strings.Builder) string {
	pid := strconv.Itoa(b.cmd.Process.Pid)
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		select {
		case err := <-b.done:
			b.done <- err
			var ee *exec.ExitError
			if errors.As(err, &ee) && ee.ExitCode() == 77 {
				testenv.Skipf(b.T, "cannot build the boot's root here (overlay or cgroup2 mount refused): %s", log.String())
			}
			b.T.Fatalf("boot ended early: %v\n%s", err, log.String())
		default:
		}
		kids, _ := os.ReadFile("/proc/" + pid + "/task/" + pid + "/children")
		if f := strings.Fields(string(kids)); len(f) == 1 {
			if exe, _ := os.Readlink("/proc/" + f[0] + "/exe"); strings.HasSuffix(exe, "/systemd") {
				return f[0]
			}
		}
	}
	b.T.Fatalf("systemd did not start in the boot:\n%s", log.String())
	return ""
}

// waitSettled waits until imdsguard.service is active or failed.
func (b *Boot) waitSettled() {
	for deadline := time.Now().Add(45 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if s := b.Show("imdsguard.service", "ActiveState"); s == "active" || s == "failed" {
			return
		}
	}
	b.T.Fatalf("imdsguard.service still starting:\n%s", b.Journal("imdsguard.service"))
}

// stop powers the boot off (SIGRTMIN+4), kills what is left, and removes
// its cgroup.
func (b *Boot) stop() {
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
			b.T.Logf("remove cgroup %s: %v", d, err)
		}
	}
}
