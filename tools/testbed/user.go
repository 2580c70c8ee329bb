package testbed

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/imdsguard/imdsguard/internal/testenv"
)

// TestUserName is the unprivileged system user the transparent-mode tests
// run clients as. EnsureUser creates it when missing and leaves it in place
// afterwards: a system user without a home or a login shell costs nothing,
// and deleting it could pull it from under another test process running at
// the same time.
const TestUserName = "imdstest-e2e"

// User is a Unix account clients can run as.
type User struct {
	Name     string
	UID, GID uint32
}

// Cred is the credential Cmd.Cred takes to run as u.
func (u User) Cred() *syscall.Credential {
	return &syscall.Credential{Uid: u.UID, Gid: u.GID}
}

var userMu sync.Mutex

// EnsureUser returns the system user name, creating it with
// `useradd --system --no-create-home --shell /usr/sbin/nologin` when it
// does not exist (needs root; the test is skipped otherwise).
func EnsureUser(t TB, name string) User {
	t.Helper()
	u, _ := ensureUser(t, name)
	return u
}

// TempUser is EnsureUser for a program that must leave nothing behind (the
// demo): a user this call created (made) is removed (userdel, which also
// removes its group) when t ends; one that existed before is left alone.
func TempUser(t TB, name string) (u User, made bool) {
	t.Helper()
	u, made = ensureUser(t, name)
	if made {
		t.Cleanup(func() {
			if out, err := exec.Command("userdel", name).CombinedOutput(); err != nil {
				t.Errorf("userdel %s: %v: %s", name, err, out)
			}
		})
	}
	return u, made
}

// ensureUser returns the user name, and whether this call created it.
func ensureUser(t TB, name string) (User, bool) {
	t.Helper()
	userMu.Lock()
	defer userMu.Unlock()
	made := false
	u, err := user.Lookup(name)
	if err != nil {
		if os.Geteuid() != 0 {
			testenv.Skipf(t, "needs root to create user %s", name)
		}
		out, aerr := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name).CombinedOutput()
		made = aerr == nil
		if u, err = user.Lookup(name); err != nil { // another process may have made it meanwhile
			t.Fatalf("useradd %s: %v: %s (lookup: %v)", name, aerr, out, err)
		}
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		t.Fatalf("user %s: uid %q gid %q", name, u.Uid, u.Gid)
	}
	return User{Name: name, UID: uint32(uid), GID: uint32(gid)}, made
}

// userHomes maps an Env and user to the home made for it.
var userHomes sync.Map // key userHomeKey -> string

type userHomeKey struct {
	e   *Env
	uid uint32
}

// UserHome returns a directory owned by u, reachable by u (below
// os.TempDir, not the test's 0700 directory), holding empty AWS config and
// credentials files; removed after the test.
func (e *Env) UserHome(u User) string {
	e.T.Helper()
	key := userHomeKey{e, u.UID}
	if d, ok := userHomes.Load(key); ok {
		return d.(string)
	}
	dir, err := os.MkdirTemp("", "igu")
	if err != nil {
		e.T.Fatalf("user home: %v", err)
	}
	e.T.Cleanup(func() {
		_ = os.RemoveAll(dir)
		userHomes.Delete(key)
	})
	for _, f := range []string{"aws-config", "aws-credentials"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			e.T.Fatalf("user home: %v", err)
		}
	}
	for _, p := range []string{dir, filepath.Join(dir, "aws-config"), filepath.Join(dir, "aws-credentials")} {
		if err := os.Chown(p, int(u.UID), int(u.GID)); err != nil {
			e.T.Fatalf("user home: %v", err)
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		e.T.Fatalf("user home: %v", err)
	}
	userHomes.Store(key, dir)
	return dir
}

// AsUser returns c set to run as u: Cred set, HOME and the AWS files moved
// to u's home, and the executable copied there when u could not reach it
// where it is (a repository checked out below /root, say).
func (e *Env) AsUser(u User, c Cmd) Cmd {
	e.T.Helper()
	home := e.UserHome(u)
	c.Cred = u.Cred()
	env := make([]string, 0, len(c.Env))
	for _, kv := range c.Env {
		switch name, _, _ := strings.Cut(kv, "="); name {
		case "HOME", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE":
			continue
		}
		env = append(env, kv)
	}
	c.Env = append(env, "HOME="+home,
		"AWS_CONFIG_FILE="+filepath.Join(home, "aws-config"),
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(home, "aws-credentials"))
	if !worldExecutable(c.Path) {
		c.Path = e.copyExecutable(c.Path, home)
	}
	return c
}

// worldExecutable reports whether anyone may execute path: every directory
// on the way searchable by others, the file executable by others.
func worldExecutable(path string) bool {
	abs, err := filepath.Abs(path)
	if err != nil {
		return false
	}
	fi, err := os.Stat(abs)
	if err != nil || fi.Mode().Perm()&0o001 == 0 {
		return false
	}
	for d := filepath.Dir(abs); ; d = filepath.Dir(d) {
		di, err := os.Stat(d)
		if err != nil || di.Mode().Perm()&0o001 == 0 {
			return false
		}
		if d == "/" {
			return true
		}
	}
}

// copyExecutable copies path into dir (mode 0755) and returns the copy.
func (e *Env) copyExecutable(path, dir string) string {
	e.T.Helper()
	dst := filepath.Join(dir, filepath.Base(path))
	if _, err := os.Stat(dst); err == nil {
		return dst
	}
	in, err := os.Open(path)
	if err != nil {
		e.T.Fatalf("copy %s for an unprivileged user: %v", path, err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		e.T.Fatalf("copy %s: %v", path, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		e.T.Fatalf("copy %s: %v", path, err)
	}
	if err := out.Close(); err != nil {
		e.T.Fatalf("copy %s: %v", path, err)
	}
	return dst
}

// String is "name (uid N)".
func (u User) String() string { return fmt.Sprintf("%s (uid %d)", u.Name, u.UID) }
