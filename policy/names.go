package policy

import (
	"fmt"
	"os/user"
	"strconv"
)

// Names resolves the user and group names of `match` entries. Compile asks it
// once per name; Decide never does.
type Names interface {
	LookupUser(name string) (uint32, error)
	LookupGroup(name string) (uint32, error)
}

// SystemNames resolves names with os/user (the passwd and group databases).
type SystemNames struct{}

// LookupUser returns the uid of the user name.
func (SystemNames) LookupUser(name string) (uint32, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return 0, err
	}
	return parseID("user", name, u.Uid)
}

// LookupGroup returns the gid of the group name.
func (SystemNames) LookupGroup(name string) (uint32, error) {
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, err
	}
	return parseID("group", name, g.Gid)
}

func parseID(kind, name, id string) (uint32, error) {
	n, err := strconv.ParseUint(id, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%s %s: id %q is not a number: %w", kind, name, id, err)
	}
	return uint32(n), nil
}
