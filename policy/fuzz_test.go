package policy

import (
	"regexp"
	"strings"
	"testing"

	"github.com/imdsguard/imdsguard/internal/canon"
)

// refMatch is the reference matcher: a regular expression built from the
// pattern, matched against the path with "/" written as "".
func refMatch(t *testing.T, pat, path string) bool {
	var b strings.Builder
	b.WriteString(`(?i)^`)
	for _, seg := range strings.Split(strings.TrimSuffix(pat, "/"), "/")[1:] {
		if seg == "**" {
			b.WriteString(`(?:/[^/]+)*`)
			continue
		}
		parts := strings.Split(seg, "*")
		for i := range parts {
			parts[i] = regexp.QuoteMeta(parts[i])
		}
		b.WriteString("/" + strings.Join(parts, `[^/]*`))
	}
	b.WriteString(`$`)
	re, err := regexp.Compile(b.String())
	if err != nil {
		t.Fatalf("reference regexp %q for %q: %v", b.String(), pat, err)
	}
	if path == "/" {
		path = ""
	}
	return re.MatchString(path)
}

// squeeze maps every byte of s into alphabet, so that random inputs make
// patterns and paths that are valid often and collide often.
func squeeze(s, alphabet string) string {
	b := []byte(s)
	for i, c := range b {
		b[i] = alphabet[int(c)%len(alphabet)]
	}
	return string(b)
}

func FuzzMatch(f *testing.F) {
	seeds := [][2]string{
		{"/**", "/"}, {"/meta-data/**", "/meta-data"}, {"/meta-data/iam/**", "/META-DATA/IAM/info"},
		{"/a/*b*c*", "/a/xbyczz"}, {"/a/**/b/**/c", "/a/b/x/c/b/c"}, {"/**/iam/", "/x/iam"},
		{"/x+y=z,w_v:u@t~s/*", "/X+Y=Z,W_V:U@T~S/q"}, {"/*/*", "/a/b"}, {"/", "/"},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pat, path string) {
		check(t, pat, path)
		check(t, "/"+squeeze(pat, "aAb*/-."), "/"+squeeze(path, "aAbB/-."))
		check(t, "/"+squeeze(pat, "a*/"), "/"+squeeze(path, "aA/"))
		check(t, segments(pat, "**", "*", "a", "A", "b", "a*", "*b", "a*b"), segments(path, "a", "b", "A", "ab", "ba", "bab"))
	})
}

// segments builds a path of segments chosen by the bytes of s, so that
// multi-segment shapes (and "**" backtracking) come up often.
func segments(s string, choices ...string) string {
	if s == "" {
		return "/"
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteString("/" + choices[int(s[i])%len(choices)])
	}
	return b.String()
}

// check compares the matcher with the reference when pat is a valid pattern
// and path a canonical path; other inputs must merely not panic.
func check(t *testing.T, pat, path string) {
	p, err := parsePattern(pat)
	if err != nil || !canon.IsRel(path) {
		if err == nil {
			p.match(path) // must not panic on what Decide would refuse
		}
		return
	}
	if got, want := p.match(path), refMatch(t, pat, path); got != want {
		t.Errorf("pattern %q, path %q: match = %v, reference = %v", pat, path, got, want)
	}
}
