package identity

import (
	"slices"
	"testing"
)

// statusSample is the head of a real /proc/PID/status (Debian 12, kernel 6.x).
const statusSample = `Name:	curl
Umask:	0022
State:	S (sleeping)
Tgid:	4242
Ngid:	0
Pid:	4242
PPid:	4100
TracerPid:	0
Uid:	1000	1001	1002	1003
Gid:	100	101	102	103
FDSize:	64
Groups:	4 24 27 100 1000 
NStgid:	4242
VmPeak:	   10000 kB
`

func TestParseStatus(t *testing.T) {
	st, err := parseStatus([]byte(statusSample))
	if err != nil {
		t.Fatal(err)
	}
	if st.UID != [4]uint32{1000, 1001, 1002, 1003} || st.GID != [4]uint32{100, 101, 102, 103} {
		t.Errorf("uid %v gid %v", st.UID, st.GID)
	}
	if !slices.Equal(st.Groups, []uint32{4, 24, 27, 100, 1000}) {
		t.Errorf("groups %v", st.Groups)
	}
}

func TestParseStatusCases(t *testing.T) {
	cases := []struct {
		name   string
		in     string
		ok     bool
		groups []uint32
	}{
		{"no supplementary groups", "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t\n", true, []uint32{}},
		{"Groups line missing", "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n", false, nil},
		{"three uids", "Uid:\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t\n", false, nil},
		{"not a number", "Uid:\t0\t0\t0\tx\nGid:\t0\t0\t0\t0\nGroups:\t\n", false, nil},
		{"uid beyond 32 bits", "Uid:\t4294967296\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t\n", false, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, err := parseStatus([]byte(c.in))
			if c.ok != (err == nil) {
				t.Fatalf("parseStatus err = %v, want ok=%v", err, c.ok)
			}
			if c.ok && !slices.Equal(st.Groups, c.groups) {
				t.Fatalf("groups %v, want %v", st.Groups, c.groups)
			}
		})
	}
}

func TestSocketLink(t *testing.T) {
	want := socketLink(123456)
	cases := []struct {
		link string
		ok   bool
	}{
		{"socket:[123456]", true},
		{"socket:[1234567]", false},
		{"socket:[12345]", false},
		{"socket:[123456", false},
		{"pipe:[123456]", false},
		{"/usr/lib/x86_64-linux-gnu/libc.so.6", false},
	}
	for _, c := range cases {
		if got := isSocketLink([]byte(c.link), want); got != c.ok {
			t.Errorf("isSocketLink(%q) = %v, want %v", c.link, got, c.ok)
		}
	}
}
