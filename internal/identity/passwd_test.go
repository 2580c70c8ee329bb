package identity

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParsePasswd(t *testing.T) {
	in := `root:x:0:0:root:/root:/bin/bash
# a comment
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin

toor:x:0:0:second root:/root:/bin/sh
+nisuser::::::
broken line
bad:x:notanumber:1::/:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
`
	names, err := parsePasswd(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint32]string{0: "root", 1: "daemon", 65534: "nobody"}
	if len(names) != len(want) {
		t.Fatalf("names %v, want %v", names, want)
	}
	for uid, n := range want {
		if names[uid] != n {
			t.Errorf("uid %d: %q, want %q", uid, names[uid], n)
		}
	}
}

func TestPasswdNamesRereads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passwd")
	write := func(s string, mtime time.Time) {
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Now().Add(-time.Hour)
	write("alice:x:1000:1000::/home/alice:/bin/sh\n", t0)
	p := newPasswdNames(path)
	if n, err := p.Name(1000); n != "alice" || err != nil {
		t.Fatalf("Name(1000) = %q, %v", n, err)
	}
	write("bobby:x:1000:1000::/home/bobby:/bin/sh\n", t0) // same size and mtime: not noticed
	if n, _ := p.Name(1000); n != "alice" {
		t.Fatalf("Name(1000) = %q before a visible change", n)
	}
	write("bobby:x:1000:1000::/home/bobby:/bin/sh\ncarol:x:1001:1001::/:/bin/sh\n", t0.Add(time.Second))
	if n, _ := p.Name(1000); n != "bobby" {
		t.Fatalf("Name(1000) = %q after the file changed, want bobby", n)
	}
	if n, _ := p.Name(1001); n != "carol" {
		t.Fatalf("Name(1001) = %q, want carol", n)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if n, err := p.Name(1001); n != "carol" || err == nil {
		t.Fatalf("Name(1001) with the file gone = %q, %v; want the last copy and an error", n, err)
	}
}
