package testbed

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestParseCases(t *testing.T) {
	const tsv = "# comment\nid\tmethod\ttarget\theaders\texpect\tnote\n" +
		"c01\tGET\t/a\t-\tdeny\tplain\n" +
		"c32\tGET\t/b\tX-Forwarded-For: \t403\tempty value\n" +
		"c34\tPUT\t/t\tA: 1 | B: 2\t403\ttwo\n"
	got, err := ParseCases(strings.NewReader(tsv))
	if err != nil {
		t.Fatal(err)
	}
	want := []Case{
		{Line: 3, ID: "c01", Method: "GET", Target: "/a", Expect: "deny", Note: "plain"},
		{Line: 4, ID: "c32", Method: "GET", Target: "/b", Headers: []string{"X-Forwarded-For: "}, Expect: "403", Note: "empty value"},
		{Line: 5, ID: "c34", Method: "PUT", Target: "/t", Headers: []string{"A: 1", "B: 2"}, Expect: "403", Note: "two"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	if _, err := ParseCases(strings.NewReader("c01\tGET\n")); err == nil {
		t.Fatal("short row accepted")
	}
}

// TestSharedCases parses the real file, when present, and checks the rows
// the e2e tests rely on.
func TestSharedCases(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(CasesPath(root))
	if err != nil {
		t.Fatalf("no bypass cases (tools/testdata holds a snapshot): %v", err)
	}
	defer f.Close()
	cases, err := ParseCases(f)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]Case{}
	for _, c := range cases {
		byID[c.ID] = c
	}
	if c := byID["c32"]; len(c.Headers) != 1 || c.Headers[0] != "X-Forwarded-For: " {
		t.Errorf("c32 headers %q, want the empty value kept", c.Headers)
	}
	if s, ok := byID["c43"].Status(); !ok || s != 200 {
		t.Errorf("c43 status %d %v", s, ok)
	}
	if _, ok := byID["c01"].Status(); ok {
		t.Error("c01 (deny) has an exact status")
	}
}
