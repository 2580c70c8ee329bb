package admin

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/internal/audit"
	"github.com/imdsguard/imdsguard/internal/identity"
	"github.com/imdsguard/imdsguard/internal/testenv"
	"github.com/imdsguard/imdsguard/internal/usage"
)

func serveAdmin(t *testing.T, base string) (string, *usage.Table) {
	t.Helper()
	path := filepath.Join(base, "run", "admin.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	tab := usage.New()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, tab, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("socket left behind: %v", err)
		}
	})
	return path, tab
}

func TestUsageOverTheSocket(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Skipf(t, "needs root: the admin socket serves uid 0 only; CI runs it as root (sudo make test)")
	}
	path, tab := serveAdmin(t, t.TempDir())
	tab.Record(&audit.Event{Caller: &identity.Caller{UIDKnown: true, UID: 1000, Comm: "boto", Remote: netip.MustParseAddrPort("127.0.0.1:1")}, Method: "GET", Version: audit.V1})
	snap, err := Usage(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Callers) != 1 || snap.Callers[0].Comm != "boto" || snap.Callers[0].V1 != 1 {
		t.Fatalf("snapshot %+v", snap)
	}
	for p, mode := range map[string]os.FileMode{path: 0o600, filepath.Dir(path): 0o700} {
		st, err := os.Stat(p)
		if err != nil || st.Mode().Perm() != mode {
			t.Errorf("%s: mode %v (%v), want %v", p, st.Mode().Perm(), err, mode)
		}
	}
}

// Even with the file mode opened up, a process that is not root is refused
// (SO_PEERCRED), and a non-root client sees why.
func TestNonRootRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Skipf(t, "needs root to run a client as another user; CI runs it as root (sudo make test)")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		testenv.Skipf(t, "needs setpriv (util-linux)")
	}
	base, err := os.MkdirTemp("", "igadm") // t.TempDir's parents are closed to other users
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chmod(base, 0o755)
	path, _ := serveAdmin(t, base)
	os.Chmod(filepath.Dir(path), 0o755)
	os.Chmod(path, 0o666)
	out, err := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
		"/usr/bin/python3", "-c", `import socket,sys
s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
try:
    s.sendall(b"GET /v1/usage HTTP/1.0\r\n\r\n"); print("answer:", repr(s.recv(100)))
except OSError as e:
    print("closed:", e)`, path).CombinedOutput()
	if err != nil {
		t.Fatalf("client: %v: %s", err, out)
	}
	if got := string(out); !strings.HasPrefix(got, "closed:") && !strings.HasPrefix(got, "answer: b''") {
		t.Fatalf("a non-root peer got an answer: %s", out)
	}
}

func TestNoDaemon(t *testing.T) {
	_, err := Usage(context.Background(), filepath.Join(t.TempDir(), "none.sock"))
	if err == nil || !strings.Contains(err.Error(), "is imdsguard running") {
		t.Fatalf("err = %v", err)
	}
}

// The role sessions are served as the daemon lists them.
func TestRolesOverTheSocket(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Skipf(t, "needs root: the admin socket serves uid 0 only; CI runs it as root (sudo make test)")
	}
	path := filepath.Join(t.TempDir(), "run", "admin.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	exp := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	go func() {
		done <- ServeRoles(ctx, ln, usage.New(), func() []RoleSession {
			return []RoleSession{{Role: "arn:aws:iam::123456789012:role/a", Session: "payments.api-1", Expiration: exp, Containers: []string{"c1"}}}
		}, slog.New(slog.DiscardHandler))
	}()
	defer func() { cancel(); <-done }()
	list, err := Roles(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Session != "payments.api-1" || !list[0].Expiration.Equal(exp) || list[0].Containers[0] != "c1" {
		t.Errorf("roles %+v", list)
	}
}
