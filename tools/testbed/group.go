package testbed

import (
	"os"
	"os/exec"
	"os/user"
	"slices"
	"strconv"

	"github.com/imdsguard/imdsguard/internal/testenv"
)

// Group is a Unix group clients can run with as a supplementary group.
type Group struct {
	Name string
	GID  uint32
}

// EnsureGroup returns the system group name, creating it with
// `groupadd --system` when it does not exist (needs root; the test is
// skipped otherwise). Like EnsureUser, it leaves the group in place.
func EnsureGroup(t TB, name string) Group {
	t.Helper()
	userMu.Lock()
	defer userMu.Unlock()
	g, err := user.LookupGroup(name)
	if err != nil {
		if os.Geteuid() != 0 {
			testenv.Skipf(t, "needs root to create group %s", name)
		}
		out, aerr := exec.Command("groupadd", "--system", name).CombinedOutput()
		if g, err = user.LookupGroup(name); err != nil { // another process may have made it meanwhile
			t.Fatalf("groupadd %s: %v: %s (lookup: %v)", name, aerr, out, err)
		}
	}
	gid, err := strconv.ParseUint(g.Gid, 10, 32)
	if err != nil {
		t.Fatalf("group %s: gid %q", name, g.Gid)
	}
	return Group{Name: name, GID: uint32(gid)}
}

// EnsureMember makes u a member of g in the group database (`usermod -aG`)
// when it is not one yet, and leaves it so. Membership in /etc/group is
// what a login gives a process; Cmd.Cred sets the supplementary groups
// explicitly (see User.WithGroups), since the daemon judges groups by the
// calling process, not by the database.
func EnsureMember(t TB, u User, g Group) {
	t.Helper()
	userMu.Lock()
	defer userMu.Unlock()
	lu, err := user.Lookup(u.Name)
	if err != nil {
		t.Fatalf("user %s: %v", u.Name, err)
	}
	ids, err := lu.GroupIds()
	if err == nil && slices.Contains(ids, strconv.FormatUint(uint64(g.GID), 10)) {
		return
	}
	if os.Geteuid() != 0 {
		testenv.Skipf(t, "needs root to add %s to group %s", u.Name, g.Name)
	}
	if out, err := exec.Command("usermod", "-a", "-G", g.Name, u.Name).CombinedOutput(); err != nil {
		t.Fatalf("usermod -a -G %s %s: %v: %s", g.Name, u.Name, err, out)
	}
}

// WithGroups returns Cmd c (set to run as some user by AsUser) with these
// supplementary groups: setpriv --groups in a namespace, setgroups(2)
// outside one. Without it a Cmd runs with none (--clear-groups).
func WithGroups(c Cmd, groups ...Group) Cmd {
	if c.Cred == nil {
		return c
	}
	cred := *c.Cred
	cred.Groups = nil
	for _, g := range groups {
		cred.Groups = append(cred.Groups, g.GID)
	}
	c.Cred = &cred
	return c
}
