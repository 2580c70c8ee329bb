package e2e

import (
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/internal/netnstest"
	"github.com/imdsguard/imdsguard/tools/testbed"
)

// The RPM (scripts/build-package.sh --packager rpm), built from the same
// packaging/nfpm.yaml as the .deb, checked with Debian's rpm 4.18: its
// queries, an install into a scratch root (no scriptlets: the root has no
// shell), an upgrade over an edited configuration there, and the
// scriptlets run on their own against a fake systemctl. Amazon Linux 2023
// and RHEL cannot run here; these are what stands in for them.

// rpmDirs are the directories the RPM owns, so that rpm -e removes them
// (rpm, unlike dpkg, removes only directories a package lists).
var rpmDirs = map[string]string{
	"/etc/imdsguard":                "drwxr-xr-x",
	"/usr/share/doc/imdsguard":      "drwxr-xr-x",
	"/usr/share/doc/imdsguard/docs": "drwxr-xr-x",
}

// rpmPath is where the RPM has the .deb's file debPath ("./lib/...", as
// dpkg-deb -c shows it): the units in /usr/lib/systemd/system, where RPM
// distributions put them.
func rpmPath(debPath string) string {
	p := strings.TrimPrefix(debPath, ".")
	if rest, ok := strings.CutPrefix(p, "/lib/systemd/"); ok {
		return "/usr/lib/systemd/" + rest
	}
	return p
}

// rpmFiles is packageFiles as the RPM has them.
func rpmFiles() map[string]string {
	m := map[string]string{}
	for p, mode := range packageFiles {
		m[rpmPath(p)] = mode
	}
	return m
}

const rpmConfig = "/etc/imdsguard/imdsguard.yaml"

// buildRPM runs scripts/build-package.sh --packager rpm into a temporary
// directory.
func buildRPM(t *testing.T, e *testbed.Env) (pkg, version string) {
	t.Helper()
	r := testbed.RunCombined(10*time.Minute, nil, filepath.Join(e.Root, "scripts", "build-package.sh"), "--packager", "rpm", "--out", t.TempDir())
	if r.Err != nil {
		t.Fatalf("build-package.sh --packager rpm: %v", r)
	}
	lines := strings.Split(strings.TrimSpace(r.Out), "\n")
	pkg = lines[len(lines)-1]
	m := regexp.MustCompile(`/imdsguard-([0-9][A-Za-z0-9.+~]*)-1\.(x86_64|aarch64)\.rpm$`).FindStringSubmatch(pkg)
	if m == nil {
		t.Fatalf("package name %q is not imdsguard-<version>-1.<arch>.rpm", pkg)
	}
	return pkg, m[1]
}

// rpmQuery runs rpm -qp ARGS PKG.
func rpmQuery(t *testing.T, pkg string, args ...string) string {
	t.Helper()
	return testbed.MustRun(t, "rpm", append(append([]string{"-qp"}, args...), pkg)...)
}

// TestRPMPackage builds the .rpm and the .deb and checks the RPM: the same
// files as the .deb, its header, dependencies, %config(noreplace), its
// scriptlets, an install into a scratch root and an upgrade there.
func TestRPMPackage(t *testing.T) {
	netnstest.RequireRoot(t)
	testbed.RequireTools(t, "rpm", "dpkg-deb", "readelf")
	e := testbed.New(t)
	pkg, version := buildRPM(t, e)
	deb, debVersion := buildDeb(t, e)
	t.Logf("package %s (version-release %s)", pkg, strings.TrimSpace(rpmQuery(t, pkg, "--qf", "%{VERSION}-%{RELEASE}")))
	if version != debVersion {
		t.Errorf("rpm version %s, deb version %s", version, debVersion)
	}
	t.Run("files", func(t *testing.T) { rpmSameFiles(t, pkg, deb) })
	t.Run("header", func(t *testing.T) { rpmHeader(t, pkg, version) })
	t.Run("requires", func(t *testing.T) { rpmRequires(t, e, pkg) })
	t.Run("requires resolve", func(t *testing.T) { rpmResolve(t, e, pkg) })
	t.Run("config", func(t *testing.T) { rpmConfigFile(t, pkg) })
	t.Run("scriptlets", func(t *testing.T) { rpmScriptletText(t, e, pkg) })
	t.Run("scratch root", func(t *testing.T) { rpmScratchInstall(t, pkg, version) })
	t.Run("upgrade keeps the edited config", func(t *testing.T) { rpmUpgradeConfig(t, e, pkg) })
}

// rpmSameFiles: rpm -qpl lists the .deb's files (dpkg-deb -c), units moved
// to /usr/lib/systemd, plus the package's own directories; every one
// root-owned with the .deb's mode.
func rpmSameFiles(t *testing.T, pkg, deb string) {
	debFiles := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(testbed.MustRun(t, "dpkg-deb", "-c", deb)), "\n") {
		if f := strings.Fields(l); len(f) >= 6 && !strings.HasPrefix(f[0], "d") {
			debFiles[rpmPath(f[5])] = f[0]
		}
	}
	files, dirs := map[string]string{}, map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(rpmQuery(t, pkg, "--qf", "[%{FILEMODES:perms} %{FILEUSERNAME}/%{FILEGROUPNAME} %{FILENAMES}\n]")), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 {
			t.Fatalf("rpm -qp --qf line %q", l)
		}
		if f[1] != "root/root" {
			t.Errorf("%s owned by %s", f[2], f[1])
		}
		if strings.HasPrefix(f[0], "d") {
			dirs[f[2]] = f[0]
		} else {
			files[f[2]] = f[0]
		}
	}
	listed := strings.Fields(rpmQuery(t, pkg, "-l"))
	if want := slices.Sorted(maps.Keys(files)); !reflect.DeepEqual(listed, slices.Sorted(slices.Values(append(want, slices.Collect(maps.Keys(dirs))...)))) {
		t.Errorf("rpm -qpl %v, but the header's files are %v and %v", listed, want, dirs)
	}
	if !reflect.DeepEqual(files, debFiles) {
		t.Errorf("rpm files %v\n .deb files %v", files, debFiles)
	}
	if !reflect.DeepEqual(files, rpmFiles()) {
		t.Errorf("rpm files %v, want %v", files, rpmFiles())
	}
	if !reflect.DeepEqual(dirs, rpmDirs) {
		t.Errorf("rpm directories %v, want %v", dirs, rpmDirs)
	}
}

// rpmHeader: name, a valid RPM version (the .deb's, no "-"), release 1,
// the RPM name of the architecture; and rpm orders the versions
// build-package.sh makes as dpkg does ("~" before, "+git" after).
func rpmHeader(t *testing.T, pkg, version string) {
	want := "imdsguard " + version + " 1 x86_64 linux"
	if got := strings.TrimSpace(rpmQuery(t, pkg, "--qf", "%{NAME} %{VERSION} %{RELEASE} %{ARCH} %{OS}")); got != want {
		t.Errorf("header %q, want %q", got, want)
	}
	if strings.Contains(version, "-") {
		t.Errorf("version %q has a '-'", version)
	}
	for _, c := range []struct {
		a, b string
		want string
	}{
		{"1.2.3~rc1", "1.2.3", "-1"},
		{"0.0.0~gitabc1234", "0.0.1", "-1"},
		{"1.2.3+git4.gabc1234", "1.2.3", "1"},
		{"1.2.3+git4.gabc1234", "1.2.4~rc1", "-1"},
	} {
		if got := strings.TrimSpace(testbed.MustRun(t, "rpm", "--eval", "%{lua: print(rpm.vercmp('"+c.a+"', '"+c.b+"'))}")); got != c.want {
			t.Errorf("rpm.vercmp(%s, %s) = %s, want %s", c.a, c.b, got, c.want)
		}
	}
}

// rpmRequires: glibc no older than the newest glibc symbol version the
// binary needs, and iptables-nft or iptables-legacy, as a rich dependency.
func rpmRequires(t *testing.T, e *testbed.Env, pkg string) {
	req := strings.Split(strings.TrimSpace(rpmQuery(t, pkg, "--requires")), "\n")
	t.Logf("rpm -qp --requires: %q", req)
	m := regexp.MustCompile(`^glibc >= ([0-9.]+)$`).FindStringSubmatch(req[0])
	if len(req) != 2 || m == nil || req[1] != "(iptables-nft or iptables-legacy)" {
		t.Fatalf("requires %q, want [glibc >= VERSION, (iptables-nft or iptables-legacy)]", req)
	}
	if newest := newestGLIBC(t, e.Bin("imdsguard")); newest != "" && vercmp(t, m[1], newest) < 0 {
		t.Errorf("the binary needs GLIBC_%s; the package requires glibc >= %s", newest, m[1])
	}
}

// rpmResolve: rpm resolves the dependencies against stand-in packages
// (empty, named and versioned as on AL2023, RHEL 9 and Amazon Linux 2) in
// scratch roots: rpm -i --test accepts the package with glibc 2.34 and
// either iptables-nft or iptables-legacy, and refuses it, naming what is
// missing, with an older glibc or with only a package named iptables.
func rpmResolve(t *testing.T, e *testbed.Env, pkg string) {
	cases := []struct {
		name      string
		installed []string // "NAME VERSION" of stand-ins
		missing   string   // the dependency rpm names, "" if it accepts
	}{
		{"glibc 2.34, iptables-nft (AL2023, RHEL 9)", []string{"glibc 2.34", "iptables-nft 1.8.8"}, ""},
		{"glibc 2.34, iptables-legacy (AL2023)", []string{"glibc 2.34", "iptables-legacy 1.8.8"}, ""},
		{"a package named iptables only", []string{"glibc 2.34", "iptables 1.8.8"}, "(iptables-nft or iptables-legacy)"},
		{"glibc 2.26 (Amazon Linux 2)", []string{"glibc 2.26", "iptables-nft 1.8.4"}, "glibc >= 2.34"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, nv := range c.installed {
				rpmIn(t, dir, "-i", standIn(t, e, nv))
			}
			r := testbed.RunCombined(time.Minute, nil, "rpm", "--root", dir, "--dbpath", "/var/lib/rpm", "-i", "--test", pkg)
			switch {
			case c.missing == "" && r.Err != nil:
				t.Errorf("rpm -i --test refused it: %v", r)
			case c.missing != "" && (r.Err == nil || !strings.Contains(r.Out, "\t"+c.missing+" is needed by imdsguard-")):
				t.Errorf("rpm -i --test: %v, want %q missing", r, c.missing)
			}
		})
	}
}

// standIn packs an empty RPM named and versioned "NAME VERSION" (bin/nfpm).
func standIn(t *testing.T, e *testbed.Env, nv string) string {
	t.Helper()
	name, version, _ := strings.Cut(nv, " ")
	dir := t.TempDir()
	conf := filepath.Join(dir, "nfpm.yaml")
	yaml := "name: " + name + "\nversion: \"" + version + "\"\nversion_schema: none\narch: amd64\nplatform: linux\n" +
		"maintainer: test <test@imdsguard.invalid>\ndescription: a stand-in for the distribution's package\n"
	if err := os.WriteFile(conf, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, name+".rpm")
	testbed.MustRun(t, e.Bin("nfpm"), "package", "--config", conf, "--packager", "rpm", "--target", out)
	return out
}

// newestGLIBC is the newest GLIBC_x symbol version bin needs ("" when it
// needs none).
func newestGLIBC(t *testing.T, bin string) string {
	t.Helper()
	newest := ""
	for _, s := range regexp.MustCompile(`GLIBC_([0-9.]+)`).FindAllStringSubmatch(testbed.MustRun(t, "readelf", "-V", bin), -1) {
		if newest == "" || vercmp(t, s[1], newest) > 0 {
			newest = s[1]
		}
	}
	return newest
}

// vercmp compares two versions as rpm does.
func vercmp(t *testing.T, a, b string) int {
	t.Helper()
	switch out := strings.TrimSpace(testbed.MustRun(t, "rpm", "--eval", "%{lua: print(rpm.vercmp('"+a+"', '"+b+"'))}")); out {
	case "-1":
		return -1
	case "0":
		return 0
	case "1":
		return 1
	default:
		t.Fatalf("rpm.vercmp(%s, %s): %q", a, b, out)
		return 0
	}
}

// rpmConfigFile: the configuration, and only it, is %config(noreplace)
// (file flags "cn").
func rpmConfigFile(t *testing.T, pkg string) {
	if got := strings.TrimSpace(rpmQuery(t, pkg, "--configfiles")); got != rpmConfig {
		t.Errorf("rpm -qp --configfiles: %q, want %s", got, rpmConfig)
	}
	for _, l := range strings.Split(strings.TrimSpace(rpmQuery(t, pkg, "--qf", "[%{FILEFLAGS:fflags} %{FILENAMES}\n]")), "\n") {
		f := strings.Fields(l) // FLAGS NAME, or NAME alone when it has none
		flags, name := "", f[len(f)-1]
		if len(f) == 2 {
			flags = f[0]
		}
		if want := map[bool]string{true: "cn", false: ""}[name == rpmConfig]; flags != want {
			t.Errorf("%s: file flags %q, want %q", name, flags, want)
		}
	}
}

// rpmScriptletText: rpm -qp --scripts shows %post, %preun and %postun,
// nothing else, each run by /bin/sh and each the maintainer script the
// .deb has (packaging/scripts).
func rpmScriptletText(t *testing.T, e *testbed.Env, pkg string) {
	heads := regexp.MustCompile(`(?m)^(\S+) scriptlet \(using ([^)]+)\):$`).FindAllStringSubmatch(rpmQuery(t, pkg, "--scripts"), -1)
	var got []string
	for _, h := range heads {
		got = append(got, h[1]+" "+h[2])
	}
	if want := []string{"postinstall /bin/sh", "preuninstall /bin/sh", "postuninstall /bin/sh"}; !reflect.DeepEqual(got, want) {
		t.Errorf("rpm -qp --scripts: %q, want %q", got, want)
	}
	for tag, file := range map[string]string{"POSTIN": "postinst", "PREUN": "prerm", "POSTUN": "postrm"} {
		src, err := os.ReadFile(filepath.Join(e.Root, "packaging", "scripts", file))
		if err != nil {
			t.Fatal(err)
		}
		if body := rpmQuery(t, pkg, "--qf", "%{"+tag+"}"); strings.TrimSpace(body) != strings.TrimSpace(string(src)) {
			t.Errorf("%%{%s} is not packaging/scripts/%s:\n%s", tag, file, body)
		}
	}
}

// rpmIn runs rpm on the scratch root dir, with the database where RPM
// distributions keep it (Debian's rpm would use ~/.rpmdb).
func rpmIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	return testbed.MustRun(t, "rpm", append([]string{"--root", dir, "--dbpath", "/var/lib/rpm"}, args...)...)
}

// rpmScratchInstall: rpm -i into an empty root puts every file and
// directory at its place, root-owned, with its mode; nothing else but the
// database; rpm -V finds them as packaged; the binary runs.
func rpmScratchInstall(t *testing.T, pkg, version string) {
	dir := t.TempDir()
	rpmIn(t, dir, "-i", "--nodeps", "--noscripts", pkg)
	want := maps.Clone(rpmFiles())
	maps.Copy(want, rpmDirs)
	for p, mode := range want {
		st, err := os.Lstat(filepath.Join(dir, p))
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		sys := st.Sys().(*syscall.Stat_t)
		if st.Mode().String() != mode || sys.Uid != 0 || sys.Gid != 0 {
			t.Errorf("%s: mode %s owner %d:%d, want %s root", p, st.Mode(), sys.Uid, sys.Gid, mode)
		}
	}
	extra := scratchExtra(t, dir, want)
	if len(extra) > 0 {
		t.Errorf("rpm -i put more than the package's files: %v", extra)
	}
	if out := rpmIn(t, dir, "-V", "--nodeps", "imdsguard"); out != "" {
		t.Errorf("rpm -V after install: %s", out)
	}
	if out := testbed.MustRun(t, filepath.Join(dir, "usr/sbin/imdsguard"), "version"); !strings.HasPrefix(out, "imdsguard "+version+"\n") {
		t.Errorf("installed imdsguard version: %q, want %s", out, version)
	}
}

// scratchExtra lists what is in dir but neither one of want, a parent
// directory of one, nor rpm's database.
func scratchExtra(t *testing.T, dir string, want map[string]string) []string {
	t.Helper()
	var extra []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		p := strings.TrimPrefix(path, dir)
		switch {
		case err != nil:
			return err
		case p == "" || strings.HasPrefix(p, "/var/lib/rpm") || strings.HasPrefix("/var/lib/rpm", p+"/"):
			return nil
		case want[p] != "":
			return nil
		case d.IsDir() && slices.ContainsFunc(slices.Collect(maps.Keys(want)), func(w string) bool { return strings.HasPrefix(w, p+"/") }):
			return nil
		}
		extra = append(extra, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return extra
}

// rpmUpgradeConfig: an edited configuration survives rpm -U to a version
// whose default configuration changed (the new default lands beside it as
// .rpmnew), and rpm -e keeps the edit as .rpmsave and takes the rest.
func rpmUpgradeConfig(t *testing.T, e *testbed.Env, pkg string) {
	dir := t.TempDir()
	rpmIn(t, dir, "-i", "--nodeps", "--noscripts", pkg)
	conf := filepath.Join(dir, rpmConfig)
	edited := appendFile(t, conf, "# edited on this host\n")
	next, nextDefault := rpmNextVersion(t, e)
	rpmIn(t, dir, "-U", "--nodeps", "--noscripts", next)
	if got := rpmIn(t, dir, "-q", "--qf", "%{VERSION}", "imdsguard"); got != "9999.0.0" {
		t.Errorf("installed version after rpm -U: %q", got)
	}
	if got, _ := os.ReadFile(conf); string(got) != edited {
		t.Errorf("rpm -U replaced the edited %s", rpmConfig)
	}
	if got, err := os.ReadFile(conf + ".rpmnew"); err != nil || string(got) != nextDefault {
		t.Errorf("%s.rpmnew is not the new default (%v)", rpmConfig, err)
	}
	// Size and digest differ (and maybe the mtime), only for the config.
	verify := testbed.RunCombined(time.Minute, nil, "rpm", "--root", dir, "--dbpath", "/var/lib/rpm", "-V", "--nodeps", "imdsguard")
	if !regexp.MustCompile(`^S\.5[.T]{6}  c ` + regexp.QuoteMeta(rpmConfig) + `\n$`).MatchString(verify.Out) {
		t.Errorf("rpm -V after the upgrade: %v, want only the config changed", verify)
	}
	rpmIn(t, dir, "-e", "--nodeps", "--noscripts", "imdsguard")
	if got, _ := os.ReadFile(conf + ".rpmsave"); string(got) != edited {
		t.Errorf("rpm -e did not keep the edit as %s.rpmsave", rpmConfig)
	}
	// Left: the two configurations, and the directories rpm made for the
	// package's own (a real root has them: /usr/share/doc, ...).
	for _, p := range scratchExtra(t, dir, map[string]string{rpmConfig + ".rpmnew": "x", rpmConfig + ".rpmsave": "x"}) {
		if st, err := os.Lstat(filepath.Join(dir, p)); err != nil || !st.IsDir() || rpmDirs[p] != "" {
			t.Errorf("rpm -e left %s", p)
		}
	}
}

// appendFile appends s to the file at path and returns its new content.
func appendFile(t *testing.T, path, s string) string {
	t.Helper()
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(old, s...), 0o644); err != nil {
		t.Fatal(err)
	}
	return string(old) + s
}

// rpmNextVersion packs version 9999.0.0 from a copy of the packaged files
// whose default configuration has one more line (bin/nfpm, the same
// packaging/nfpm.yaml), and returns it and that configuration.
func rpmNextVersion(t *testing.T, e *testbed.Env) (pkg, conf string) {
	t.Helper()
	stage := t.TempDir()
	for _, p := range []string{"README.md", "docs", "packaging", "systemd", "bin/imdsguard"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(stage, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		testbed.MustRun(t, "cp", "-a", filepath.Join(e.Root, p), filepath.Join(stage, p))
	}
	conf = appendFile(t, filepath.Join(stage, "packaging", "imdsguard.yaml"), "# a new default comment\n")
	pkg = filepath.Join(stage, "imdsguard-9999.0.0-1.x86_64.rpm")
	env := []string{"IMDSGUARD_VERSION=9999.0.0", "IMDSGUARD_ARCH=amd64", "IMDSGUARD_MAINTAINER=test <test@imdsguard.invalid>"}
	r := testbed.RunCombined(2*time.Minute, env, "sh", "-c", `cd "$1" && "$2" package --config packaging/nfpm.yaml --packager rpm --target "$3"`, "sh", stage, e.Bin("nfpm"), pkg)
	if r.Err != nil {
		t.Fatalf("nfpm (version 9999.0.0): %v", r)
	}
	return pkg, conf
}
