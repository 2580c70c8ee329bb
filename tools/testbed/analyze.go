package testbed

import (
	"os"
	"path/filepath"
)

// AnalyzeRoot makes a scratch root for systemd-analyze --root: this
// machine's system units, unit as /usr/lib/systemd/system/imdsguard.service,
// binary (bin/imdsguard) at its ExecStart path /usr/sbin/imdsguard and
// /bin/kill for ExecReload, plus extra files (path relative to the root ->
// contents). verify needs the executables in place. The root is removed
// when t ends.
func AnalyzeRoot(t TB, binary, unit string, extra map[string]string) string {
	t.Helper()
	root := t.TempDir()
	MustRun(t, "mkdir", "-p", root+"/usr/lib/systemd", root+"/etc/systemd/system")
	MustRun(t, "cp", "-a", "/usr/lib/systemd/system", root+"/usr/lib/systemd/")
	CopyFile(t, binary, root+"/usr/sbin/imdsguard", 0o755)
	CopyFile(t, "/bin/kill", root+"/bin/kill", 0o755)
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

// CopyFile copies src to dst with mode, making dst's directory; it fails t
// on any error.
func CopyFile(t TB, src, dst string, mode os.FileMode) {
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
