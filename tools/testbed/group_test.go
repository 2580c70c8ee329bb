package testbed

import (
	"strings"
	"syscall"
	"testing"
)

func TestCredGroupsArgv(t *testing.T) {
	c := Cmd{Path: "/bin/true", NS: "ns1", Cred: &syscall.Credential{Uid: 5, Gid: 6}}
	_, args := c.argv()
	if got := strings.Join(args, " "); got != "netns exec ns1 setpriv --reuid=5 --regid=6 --clear-groups /bin/true" {
		t.Errorf("no groups: %s", got)
	}
	c = WithGroups(c, Group{Name: "a", GID: 7}, Group{Name: "b", GID: 8})
	_, args = c.argv()
	if got := strings.Join(args, " "); got != "netns exec ns1 setpriv --reuid=5 --regid=6 --groups=7,8 /bin/true" {
		t.Errorf("groups: %s", got)
	}
	if plain := WithGroups(Cmd{Path: "/bin/true"}, Group{GID: 7}); plain.Cred != nil {
		t.Errorf("WithGroups gave a root Cmd a credential: %+v", plain.Cred)
	}
}
