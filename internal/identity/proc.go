package identity

import (
	"bytes"
	"fmt"
	"strconv"
)

// procStatus is what identity reads from /proc/PID/status.
type procStatus struct {
	UID    [4]uint32 // real, effective, saved, filesystem
	GID    [4]uint32
	Groups []uint32 // supplementary groups
}

// parseStatus reads the Uid, Gid and Groups lines of /proc/PID/status.
func parseStatus(b []byte) (procStatus, error) {
	var st procStatus
	var seen int
	for line := range bytes.Lines(b) {
		key, val, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		var err error
		switch string(key) {
		case "Uid":
			err = parseIDs(val, st.UID[:])
			seen++
		case "Gid":
			err = parseIDs(val, st.GID[:])
			seen++
		case "Groups":
			st.Groups, err = parseIDList(val)
			seen++
		}
		if err != nil {
			return procStatus{}, fmt.Errorf("parse status line %q: %w", bytes.TrimSpace(line), err)
		}
	}
	if seen != 3 {
		return procStatus{}, fmt.Errorf("parse status: Uid, Gid or Groups line missing")
	}
	return st, nil
}

// parseIDs reads exactly len(dst) ids.
func parseIDs(val []byte, dst []uint32) error {
	ids, err := parseIDList(val)
	if err != nil {
		return err
	}
	if len(ids) != len(dst) {
		return fmt.Errorf("%d ids, want %d", len(ids), len(dst))
	}
	copy(dst, ids)
	return nil
}

func parseIDList(val []byte) ([]uint32, error) {
	fields := bytes.Fields(val)
	ids := make([]uint32, 0, len(fields))
	for _, f := range fields {
		n, err := strconv.ParseUint(string(f), 10, 32)
		if err != nil {
			return nil, err
		}
		ids = append(ids, uint32(n))
	}
	return ids, nil
}

// socketLink is what readlink(/proc/PID/fd/N) says for socket inode ino.
func socketLink(ino uint32) []byte {
	return strconv.AppendUint([]byte("socket:["), uint64(ino), 10)
}

// socketInode returns N of a "socket:[N]" link.
func socketInode(link []byte) (uint32, bool) {
	rest, ok := bytes.CutPrefix(link, []byte("socket:["))
	if !ok || len(rest) < 2 || rest[len(rest)-1] != ']' {
		return 0, false
	}
	n, err := strconv.ParseUint(string(rest[:len(rest)-1]), 10, 32)
	if err != nil {
		return 0, false
	}
	return uint32(n), true
}

// isSocketLink reports whether link, a readlink of an fd, equals want+"]".
func isSocketLink(link, want []byte) bool {
	return len(link) == len(want)+1 && link[len(want)] == ']' && bytes.Equal(link[:len(want)], want)
}
