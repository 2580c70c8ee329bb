package e2e

import (
	"errors"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/internal/config"
	"github.com/imdsguard/imdsguard/internal/netnstest"
	"github.com/imdsguard/imdsguard/internal/testenv"
	"github.com/imdsguard/imdsguard/tools/testbed"
)

// The Debian package (scripts/build-deb.sh, packaging/), the AMI bake
// script (scripts/bake-ami.sh) and the shell scripts' lint.
//
// TestDebPackage installs the package on this machine and purges it again.
// Its maintainer scripts only enable the unit: with no systemd as PID 1
// they start nothing, and with one they still start nothing on a first
// install. The test checks no imdsguard process appeared and this
// machine's rules are the same before and after.

// packageFiles are the files of the package (dpkg-deb -c), with their modes.
var packageFiles = map[string]string{
	"./etc/imdsguard/imdsguard.yaml":         "-rw-r--r--",
	"./lib/systemd/system/imdsguard.service": "-rw-r--r--",
	"./lib/systemd/system/imdsguard.socket":  "-rw-r--r--",
	"./usr/lib/tmpfiles.d/imdsguard.conf":    "-rw-r--r--",
	"./usr/sbin/imdsguard":                   "-rwxr-xr-x",
	"./usr/share/doc/imdsguard/README.md":    "-rw-r--r--",
	// The README's links into docs/ that an operator follows.
	"./usr/share/doc/imdsguard/docs/configuration.md": "-rw-r--r--",
	"./usr/share/doc/imdsguard/docs/policy.md":        "-rw-r--r--",
	"./usr/share/doc/imdsguard/docs/containers.md":    "-rw-r--r--",
	"./usr/share/doc/imdsguard/docs/operations.md":    "-rw-r--r--",
	"./usr/share/doc/imdsguard/docs/roles.md":         "-rw-r--r--",
	"./usr/share/doc/imdsguard/docs/CACHE.md":         "-rw-r--r--",
}

// enableLink is what enabling the unit makes (WantedBy=multi-user.target),
// socketLink what enabling the socket unit makes (WantedBy=sockets.target).
const (
	enableLink = "/etc/systemd/system/multi-user.target.wants/imdsguard.service"
	socketLink = "/etc/systemd/system/sockets.target.wants/imdsguard.socket"
)

// TestPackageDefaultConfig: the shipped configuration reads as exactly the
// built-in defaults, every field spelled out; the whole file shown in
// docs/configuration.md too, but for the rules' imds_v1 it leaves to its
// default; and `imdsguard policy check` accepts the shipped file.
func TestPackageDefaultConfig(t *testing.T) {
	e := testbed.New(t)
	shipped := filepath.Join(e.Root, "packaging", "imdsguard.yaml")
	page, err := os.ReadFile(filepath.Join(e.Root, "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	const heading = "## The whole file, with its defaults"
	block := regexp.MustCompile("(?s)" + regexp.QuoteMeta(heading) + "\n.*?```yaml\n(.*?)```").FindSubmatch(page)
	if block == nil {
		t.Fatalf("docs/configuration.md has no yaml block under %q", heading)
	}
	want := config.Default()
	for name, load := range map[string]func() (*config.Config, error){
		"packaging/imdsguard.yaml": func() (*config.Config, error) { return config.Load(shipped, false) },
		"docs/configuration.md": func() (*config.Config, error) {
			c, err := config.Read(strings.NewReader(string(block[1])), "docs/configuration.md")
			for i := range c.Policy.Rules {
				if c.Policy.Rules[i].IMDSv1 == "" {
					c.Policy.Rules[i].IMDSv1 = "upgrade"
				}
			}
			return c, err
		},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := load()
			if err != nil {
				t.Fatal(err)
			}
			got.File = ""
			// The source text of durations ("6h"); the durations are compared.
			got.Upstream.TokenTTL.Text = ""
			got.Audit.SummaryInterval.Text = ""
			got.Cache.StaleGrace.Text = ""
			got.Roles.SessionDuration.Text = ""
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("not the defaults:\n got %+v\nwant %+v", *got, want)
			}
		})
	}
	t.Run("policy check", func(t *testing.T) {
		e.RequireBins("imdsguard")
		if r := testbed.RunCombined(time.Minute, nil, e.Bin("imdsguard"), "policy", "check", shipped); r.Err != nil {
			t.Fatalf("policy check: %v", r)
		}
	})
}

// TestShellcheck lints every script in scripts/ and the maintainer scripts,
// from another directory than the repository root.
func TestShellcheck(t *testing.T) {
	if _, err := exec.LookPath("shellcheck"); err != nil {
		testenv.Skipf(t, "shellcheck not found: apt-get install shellcheck (scripts/install-test-deps.sh does)")
	}
	e := testbed.New(t)
	scripts, _ := filepath.Glob(filepath.Join(e.Root, "scripts", "*.sh"))
	maint, _ := filepath.Glob(filepath.Join(e.Root, "packaging", "scripts", "*"))
	if len(scripts) == 0 || len(maint) != 3 {
		t.Fatalf("scripts %v, maintainer scripts %v", scripts, maint)
	}
	for _, s := range append(scripts, maint...) {
		t.Run(strings.TrimPrefix(s, e.Root+"/"), func(t *testing.T) {
			if r := testbed.RunCombined(time.Minute, nil, "shellcheck", "-x", s); r.Err != nil {
				t.Errorf("shellcheck: %v", r)
			}
		})
	}
}

// TestBakeAMIDryRun: what bake-ami.sh would run, for each way of calling it.
// A dry run touches nothing and asks IMDS nothing (values it would ask for
// show as <placeholders>).
func TestBakeAMIDryRun(t *testing.T) {
	e := testbed.New(t)
	script := filepath.Join(e.Root, "scripts", "bake-ami.sh")
	deb := e.WriteFile("imdsguard_1.2.3_amd64.deb", "") // only its name is used
	rpm := e.WriteFile("imdsguard-1.2.3-1.x86_64.rpm", "")
	bin := e.WriteFile("imdsguard", "")
	// A yum (and no dnf) on PATH: what an older RPM distribution has.
	yum := e.WriteFile("yum/yum", "#!/bin/sh\nexit 1\n")
	if err := os.Chmod(yum, 0o755); err != nil {
		t.Fatal(err)
	}
	yumOnly := []string{"PATH=" + filepath.Dir(yum) + ":" + os.Getenv("PATH")}
	aptInstall := "env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends " + deb
	enable := "systemctl enable imdsguard.socket imdsguard.service"
	cases := []struct {
		name     string
		args     []string
		env      []string
		wantCode int
		want     []string // lines, in this order, among stdout's
		not      []string // substrings of stdout that must not appear
	}{
		{"install and enable", []string{deb}, nil, 0,
			[]string{aptInstall, enable}, []string{"systemctl start", "aws ", "dnf", "yum"}},
		{"rpm: dnf", []string{rpm}, nil, 0,
			[]string{"dnf install -y " + rpm, enable}, []string{"apt-get", "yum", "systemctl start", "aws "}},
		{"rpm: yum without dnf", []string{rpm}, yumOnly, 0,
			[]string{"yum install -y " + rpm, enable}, []string{"apt-get", "dnf"}},
		{"rpm: require IMDSv2 and start", []string{"--start", "--require-imdsv2", "--instance-id", "i-1", "--region", "us-east-1", rpm}, nil, 0,
			[]string{"dnf install -y " + rpm, enable, "systemctl start imdsguard.socket imdsguard.service",
				"aws ec2 modify-instance-metadata-options --region us-east-1 --instance-id i-1 --http-tokens required --http-put-response-hop-limit 1 --http-endpoint enabled"}, []string{"apt-get"}},
		{"require IMDSv2, ids from IMDS", []string{"--require-imdsv2", deb}, nil, 0,
			[]string{aptInstall, enable, "aws ec2 modify-instance-metadata-options --region <region> --instance-id <instance-id> --http-tokens required --http-put-response-hop-limit 1 --http-endpoint enabled"}, nil},
		{"require IMDSv2, ids given", []string{"--require-imdsv2", "--instance-id", "i-0123456789abcdef0", "--region", "eu-west-1", deb}, nil, 0,
			[]string{aptInstall, enable, "aws ec2 modify-instance-metadata-options --region eu-west-1 --instance-id i-0123456789abcdef0 --http-tokens required --http-put-response-hop-limit 1 --http-endpoint enabled"}, nil},
		{"lightsail", []string{"--lightsail", "web-1", "--region", "us-east-1", deb}, nil, 0,
			[]string{aptInstall, enable, "aws lightsail update-instance-metadata-options --region us-east-1 --instance-name web-1 --http-tokens required"}, []string{"aws ec2"}},
		{"image attribute", []string{"--require-imdsv2", "--instance-id", "i-1", "--region", "us-east-1", "--ami-id", "ami-0abc", deb}, nil, 0,
			[]string{"aws ec2 modify-instance-metadata-options --region us-east-1 --instance-id i-1 --http-tokens required --http-put-response-hop-limit 1 --http-endpoint enabled",
				"aws ec2 modify-image-attribute --region us-east-1 --image-id ami-0abc --imds-support v2.0"}, nil},
		{"binary and start", []string{"--binary", bin, "--start"}, nil, 0,
			[]string{"install -D -m 0755 " + bin + " /usr/sbin/imdsguard",
				"install -D -m 0644 " + e.Root + "/systemd/imdsguard.service /etc/systemd/system/imdsguard.service",
				"install -D -m 0644 " + e.Root + "/systemd/imdsguard.socket /etc/systemd/system/imdsguard.socket",
				"install -D -m 0644 " + e.Root + "/systemd/imdsguard.tmpfiles /etc/tmpfiles.d/imdsguard.conf",
				enable, "systemctl start imdsguard.socket imdsguard.service"}, []string{"apt-get"}},
		{"missing package", []string{filepath.Join(e.Dir, "nope.deb")}, nil, 1, nil, nil},
		{"missing rpm", []string{filepath.Join(e.Dir, "nope.rpm")}, nil, 1, nil, nil},
		{"not a package", []string{bin}, nil, 1, nil, nil},
		{"rpm and binary", []string{"--binary", bin, rpm}, nil, 1, nil, nil},
		{"package and binary", []string{"--binary", bin, deb}, nil, 1, nil, nil},
		{"unknown option", []string{"--bogus"}, nil, 2, nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := testbed.RunCombined(time.Minute, c.env, script, append([]string{"--dry-run"}, c.args...)...)
			code := 0
			var ee *exec.ExitError
			if errors.As(r.Err, &ee) {
				code = ee.ExitCode()
			} else if r.Err != nil {
				t.Fatal(r)
			}
			if code != c.wantCode {
				t.Fatalf("exit %d, want %d: %v", code, c.wantCode, r)
			}
			lines := strings.Split(r.Out, "\n")
			at := 0
			for _, w := range c.want {
				i := slices.Index(lines[at:], w)
				if i < 0 {
					t.Fatalf("no line %q (in order) in:\n%s", w, r.Out)
				}
				at += i + 1
			}
			for _, n := range append(c.not, "curl", "169.254.169.254") {
				if strings.Contains(r.Out, n) {
					t.Errorf("output has %q:\n%s", n, r.Out)
				}
			}
		})
	}
	t.Run("help", func(t *testing.T) {
		r := testbed.RunCombined(time.Minute, nil, script, "--help")
		if r.Err != nil || !strings.Contains(r.Out, "--require-imdsv2") || !strings.Contains(r.Out, "--dry-run") ||
			!strings.Contains(r.Out, "PACKAGE.rpm") || !strings.Contains(r.Out, "dnf") {
			t.Fatalf("--help: %v", r)
		}
	})
}

// buildDeb runs scripts/build-deb.sh into a temporary directory.
func buildDeb(t *testing.T, e *testbed.Env) (deb, version string) {
	t.Helper()
	out := t.TempDir()
	r := testbed.RunCombined(10*time.Minute, nil, filepath.Join(e.Root, "scripts", "build-deb.sh"), "--out", out)
	if r.Err != nil {
		t.Fatalf("build-deb.sh: %v", r)
	}
	lines := strings.Split(strings.TrimSpace(r.Out), "\n")
	deb = lines[len(lines)-1]
	m := regexp.MustCompile(`/imdsguard_([0-9][A-Za-z0-9.+~]*)_(amd64|arm64)\.deb$`).FindStringSubmatch(deb)
	if m == nil {
		t.Fatalf("package name %q is not imdsguard_<debian version>_<arch>.deb", deb)
	}
	return deb, m[1]
}

// requireClean skips when installing and purging the package here could
// disturb something: imdsguard already installed, its state, or rules
// (the package's prerm runs `imdsguard rules remove`).
func requireClean(t *testing.T) {
	t.Helper()
	if r := testbed.RunCombined(time.Minute, nil, "dpkg-query", "-W", "-f=${Status}", "imdsguard"); strings.Contains(r.Out, "installed") || strings.Contains(r.Out, "config-files") {
		testenv.Skipf(t, "imdsguard is installed on this machine (%s): the test would replace it", r.Out)
	}
	for _, p := range []string{"/var/lib/imdsguard", "/etc/imdsguard", "/usr/sbin/imdsguard", enableLink} {
		if _, err := os.Lstat(p); err == nil {
			testenv.Skipf(t, "%s exists on this machine: the test would remove it", p)
		}
	}
	if strings.Contains(testbed.HostRules(t), "IMDSGUARD") {
		testenv.Skipf(t, "IMDSGUARD rules are installed on this machine: the package's prerm would remove them")
	}
}

// TestDebPackage builds the package, checks its contents and metadata,
// installs it with dpkg, checks the installed files, removes it, purges it.
func TestDebPackage(t *testing.T) {
	netnstest.RequireRoot(t)
	testbed.RequireTools(t, "dpkg", "dpkg-deb", "dpkg-query", "iptables-save")
	requireClean(t)
	e := testbed.New(t)
	rulesBefore := testbed.HostRules(t)
	deb, version := buildDeb(t, e)
	t.Logf("package %s", deb)
	t.Run("contents", func(t *testing.T) { debContents(t, deb) })
	t.Run("control", func(t *testing.T) { debControl(t, e, deb, version) })

	t.Cleanup(func() { testbed.RunCombined(5*time.Minute, nil, "dpkg", "--purge", "imdsguard") })
	if r := testbed.RunCombined(5*time.Minute, []string{"DEBIAN_FRONTEND=noninteractive"}, "dpkg", "-i", deb); r.Err != nil {
		t.Fatalf("dpkg -i: %v", r)
	}
	t.Run("installed", func(t *testing.T) { debInstalled(t, version) })
	t.Run("remove", debRemove)
	t.Run("purge", debPurge)
	if p := imdsguardProcesses(t); len(p) > 0 {
		t.Errorf("imdsguard processes appeared on this machine: %v", p)
	}
	if after := testbed.HostRules(t); after != rulesBefore {
		t.Errorf("this machine's rules changed:\nbefore:\n%s\nafter:\n%s", rulesBefore, after)
	}
}

// debContents: exactly the expected files, root-owned, with their modes;
// every directory is a parent of one of them.
func debContents(t *testing.T, deb string) {
	out := testbed.MustRun(t, "dpkg-deb", "-c", deb)
	files := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) < 6 {
			t.Fatalf("dpkg-deb -c line %q", l)
		}
		mode, owner, path := f[0], f[1], f[5]
		if owner != "root/root" {
			t.Errorf("%s owned by %s", path, owner)
		}
		if strings.HasPrefix(mode, "d") {
			if !slices.ContainsFunc(slices.Collect(maps.Keys(packageFiles)), func(p string) bool { return strings.HasPrefix(p, path) }) {
				t.Errorf("directory %s holds none of the package's files", path)
			}
			continue
		}
		files[path] = mode
	}
	if !reflect.DeepEqual(files, packageFiles) {
		t.Errorf("files %v, want %v", files, packageFiles)
	}
}

// debControl: the control fields, the conffile, and a libc6 dependency no
// older than the newest glibc symbol version the binary needs.
func debControl(t *testing.T, e *testbed.Env, deb, version string) {
	for field, want := range map[string]string{"Package": "imdsguard", "Version": version, "Architecture": "amd64"} {
		if got := strings.TrimSpace(testbed.MustRun(t, "dpkg-deb", "-f", deb, field)); got != want {
			t.Errorf("%s = %q, want %q", field, got, want)
		}
	}
	depends := testbed.MustRun(t, "dpkg-deb", "-f", deb, "Depends")
	if !regexp.MustCompile(`(^|, )iptables(,|$|\s)`).MatchString(strings.TrimSpace(depends)) {
		t.Errorf("Depends %q lacks iptables", depends)
	}
	ctl := t.TempDir()
	testbed.MustRun(t, "dpkg-deb", "-e", deb, ctl)
	if conf, _ := os.ReadFile(filepath.Join(ctl, "conffiles")); strings.TrimSpace(string(conf)) != "/etc/imdsguard/imdsguard.yaml" {
		t.Errorf("conffiles %q", conf)
	}
	if _, err := exec.LookPath("readelf"); err != nil {
		t.Log("readelf not found (apt-get install binutils): the libc6 version is not checked")
		return
	}
	m := regexp.MustCompile(`libc6 \(>= ([0-9.]+)\)`).FindStringSubmatch(depends)
	syms := regexp.MustCompile(`GLIBC_([0-9.]+)`).FindAllStringSubmatch(testbed.MustRun(t, "readelf", "-V", e.Bin("imdsguard")), -1)
	if len(syms) == 0 {
		return // a static binary needs no libc
	}
	newest := "0"
	for _, s := range syms {
		if testbed.RunCombined(time.Minute, nil, "dpkg", "--compare-versions", s[1], "gt", newest).Err == nil {
			newest = s[1]
		}
	}
	if m == nil || testbed.RunCombined(time.Minute, nil, "dpkg", "--compare-versions", m[1], "ge", newest).Err != nil {
		t.Errorf("the binary needs GLIBC_%s; Depends says %q", newest, depends)
	}
}

// debInstalled: the files in place with their modes, the conffile known to
// dpkg, the binary working, the unit enabled and valid, nothing started.
func debInstalled(t *testing.T, version string) {
	for path, mode := range packageFiles {
		p := strings.TrimPrefix(path, ".")
		st, err := os.Stat(p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if st.Mode().String() != mode {
			t.Errorf("%s: mode %s, want %s", p, st.Mode(), mode)
		}
	}
	if conf := testbed.MustRun(t, "dpkg-query", "-W", "-f=${Conffiles}", "imdsguard"); !strings.Contains(conf, "/etc/imdsguard/imdsguard.yaml ") {
		t.Errorf("dpkg-query Conffiles: %q", conf)
	}
	if out := testbed.MustRun(t, "/usr/sbin/imdsguard", "version"); !strings.HasPrefix(out, "imdsguard "+version+"\n") {
		t.Errorf("imdsguard version: %q, want version %s", out, version)
	}
	testbed.MustRun(t, "/usr/sbin/imdsguard", "policy", "check", "/etc/imdsguard/imdsguard.yaml")
	if dst, err := os.Readlink(enableLink); err != nil || dst != "/lib/systemd/system/imdsguard.service" {
		t.Errorf("not enabled: %s -> %q (%v)", enableLink, dst, err)
	}
	if dst, err := os.Readlink(socketLink); err != nil || dst != "/lib/systemd/system/imdsguard.socket" {
		t.Errorf("socket unit not enabled: %s -> %q (%v)", socketLink, dst, err)
	}
	if _, err := exec.LookPath("systemd-analyze"); err == nil {
		if r := testbed.RunCombined(time.Minute, []string{"SYSTEMD_LOG_COLOR=0"}, "systemd-analyze", "verify", "/lib/systemd/system/imdsguard.service", "/lib/systemd/system/imdsguard.socket"); r.Err != nil || strings.TrimSpace(r.Out) != "" {
			t.Errorf("systemd-analyze verify of the installed unit: %v", r)
		}
	}
	// What a run would leave, for purge to remove.
	if err := os.MkdirAll("/var/lib/imdsguard", 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("/var/lib/imdsguard/token.key", []byte("0123456789abcdef0123456789abcdef"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// debRemove: dpkg -r takes the files and the enablement, keeps the conffile.
func debRemove(t *testing.T) {
	testbed.MustRun(t, "dpkg", "-r", "imdsguard")
	if st := testbed.MustRun(t, "dpkg-query", "-W", "-f=${Status}", "imdsguard"); st != "deinstall ok config-files" {
		t.Errorf("status after remove: %q", st)
	}
	for _, p := range []string{"/usr/sbin/imdsguard", "/lib/systemd/system/imdsguard.service", "/lib/systemd/system/imdsguard.socket", "/usr/lib/tmpfiles.d/imdsguard.conf", enableLink, socketLink} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s still there after remove (%v)", p, err)
		}
	}
	if _, err := os.Stat("/etc/imdsguard/imdsguard.yaml"); err != nil {
		t.Errorf("the conffile went with remove: %v", err)
	}
}

// debPurge: dpkg --purge leaves nothing: conffile, token key, enablement
// state.
func debPurge(t *testing.T) {
	testbed.MustRun(t, "dpkg", "--purge", "imdsguard")
	if r := testbed.RunCombined(time.Minute, nil, "dpkg-query", "-W", "-f=${Status}", "imdsguard"); strings.Contains(r.Out, "installed") || strings.Contains(r.Out, "config-files") {
		t.Errorf("still known to dpkg after purge: %v", r)
	}
	for _, p := range []string{"/etc/imdsguard", "/var/lib/imdsguard", enableLink, socketLink,
		"/var/lib/systemd/deb-systemd-helper-enabled/imdsguard.service.dsh-also",
		"/var/lib/systemd/deb-systemd-helper-enabled/imdsguard.socket.dsh-also",
		"/var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/imdsguard.service",
		"/var/lib/systemd/deb-systemd-helper-enabled/sockets.target.wants/imdsguard.socket"} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s still there after purge (%v)", p, err)
		}
	}
}

// imdsguardProcesses lists processes running the installed binary.
func imdsguardProcesses(t *testing.T) []string {
	t.Helper()
	var found []string
	ents, _ := os.ReadDir("/proc")
	for _, d := range ents {
		if exe, err := os.Readlink("/proc/" + d.Name() + "/exe"); err == nil && strings.HasPrefix(exe, "/usr/sbin/imdsguard") {
			found = append(found, d.Name())
		}
	}
	return found
}
