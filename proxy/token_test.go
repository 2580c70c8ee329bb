package proxy

import (
	"net"
	"path/filepath"
	"testing"

	"github.com/imdsguard/imdsguard/internal/identity"
	"github.com/imdsguard/imdsguard/internal/token"
)

func asUID(uid uint32) envOpt {
	return func(o *Options) { o.Identify = asUIDIdentify(uid) }
}

// asUIDIdentify attests every connection as uid's.
func asUIDIdentify(uid uint32) func(net.Conn) identity.Caller {
	return func(c net.Conn) identity.Caller {
		id := addressesOnly(c)
		id.UIDKnown, id.UID, id.Unknown = true, uid, ""
		return id
	}
}

func withKey(key []byte) envOpt {
	return func(o *Options) { o.Minter = token.NewMinter(key) }
}

// A token is bound to the caller it was minted for, and survives a restart
// of the daemon (same key file).
func TestTokenBoundToCallerAndSurvivesRestart(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "token.key")
	key, err := token.LoadKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	alice := newEnv(t, asUID(1000), withKey(key))
	tok := alice.mint(t)

	key2, err := token.LoadKey(keyFile) // the "restarted" daemon reads the same file
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		e      *env
		status int
	}{
		{"same caller", alice, 200},
		{"same caller after a restart", newEnv(t, asUID(1000), withKey(key2)), 200},
		{"another user replays it", newEnv(t, asUID(1001), withKey(key2)), 401},
		{"an unattested caller replays it", newEnv(t, withKey(key2)), 401},
		{"a daemon with another key", newEnv(t, asUID(1000)), 401},
	} {
		resp := c.e.raw(t, "GET", "/latest/meta-data/instance-id", "X-aws-ec2-metadata-token: "+tok)
		if resp.StatusCode != c.status {
			t.Errorf("%s: %d, want %d", c.name, resp.StatusCode, c.status)
		}
	}
}

// Groups come from the caller's process; when it could not be read (the
// process is gone), GID 0 must not match a group rule.
func TestUnknownGroupsMatchNoGroupRule(t *testing.T) {
	const pol = `rules: [{name: wheel, match: {groups: ["0"]}, allow: ['/**']}]`
	for _, c := range []struct {
		name     string
		gidKnown bool
		status   int
	}{{"groups read from the process", true, 200}, {"process gone, groups unknown", false, 403}} {
		e := newEnv(t, withPolicy(t, pol), func(o *Options) {
			o.Identify = func(conn net.Conn) identity.Caller {
				id := addressesOnly(conn)
				id.UIDKnown, id.UID, id.GID, id.GIDKnown, id.Unknown = true, 1000, 0, c.gidKnown, ""
				return id
			}
		})
		if got := e.raw(t, "GET", "/latest/meta-data/instance-id").StatusCode; got != c.status {
			t.Errorf("%s: %d, want %d", c.name, got, c.status)
		}
	}
}

// A container's uid 0 is not the host's root: under the default policy it
// gets what every other caller gets, not the role credentials.
func TestContainerRootIsNotRoot(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.Identify = func(conn net.Conn) identity.Caller {
			id := addressesOnly(conn)
			id.Class, id.UIDKnown, id.UID, id.GIDKnown, id.Unknown = identity.Container, true, 0, true, ""
			return id
		}
	})
	if got := e.raw(t, "GET", "/latest/meta-data/iam/security-credentials/").StatusCode; got != 403 {
		t.Fatalf("container uid 0 reading credentials: %d, want 403", got)
	}
	if got := e.raw(t, "GET", "/latest/meta-data/instance-id").StatusCode; got != 200 {
		t.Fatalf("container uid 0 reading instance-id: %d, want 200", got)
	}
}
