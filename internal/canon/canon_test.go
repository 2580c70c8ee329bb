package canon

import (
	"errors"
	"net/url"
	"path"
	"strings"
	"testing"
)

// The rows of ../shared/bypass-cases.tsv that are about paths, and more.
// want is the upstream path, or "400"/"404" for a refusal.
var cases = []struct {
	id, target, want, rel string
}{
	{"c01", "/latest/meta-data/iam/security-credentials/", "/latest/meta-data/iam/security-credentials/", "/meta-data/iam/security-credentials"},
	{"c02", "/latest/meta-data/iam/security-credentials/baskinc-role", "/latest/meta-data/iam/security-credentials/baskinc-role", "/meta-data/iam/security-credentials/baskinc-role"},
	{"c03", "/latest/meta-data/iam/security-credentials", "/latest/meta-data/iam/security-credentials", "/meta-data/iam/security-credentials"},
	{"c04", "//latest/meta-data/iam/security-credentials/", "/latest/meta-data/iam/security-credentials/", "/meta-data/iam/security-credentials"},
	{"c05", "/latest//meta-data//iam/security-credentials/", "/latest/meta-data/iam/security-credentials/", "/meta-data/iam/security-credentials"},
	{"c06", "/latest/meta-data/./iam/security-credentials/", "/latest/meta-data/iam/security-credentials/", "/meta-data/iam/security-credentials"},
	{"c07", "/latest/meta-data/placement/../iam/security-credentials/", "/latest/meta-data/iam/security-credentials/", "/meta-data/iam/security-credentials"},
	{"c08", "/latest/meta-data/%69am/security-credentials/", "/latest/meta-data/iam/security-credentials/", "/meta-data/iam/security-credentials"},
	{"c09", "/latest/meta-data/iam%2fsecurity-credentials/", "/latest/meta-data/iam/security-credentials/", "/meta-data/iam/security-credentials"},
	{"c10", "/latest/meta-data/placement/%2e%2e/iam/security-credentials/", "/latest/meta-data/iam/security-credentials/", "/meta-data/iam/security-credentials"},
	{"c11", "/latest/meta-data/placement/%2E%2E/iam/security-credentials/", "/latest/meta-data/iam/security-credentials/", "/meta-data/iam/security-credentials"},
	{"c12", "/latest/meta-data/placement/..%2fiam/security-credentials/", "/latest/meta-data/iam/security-credentials/", "/meta-data/iam/security-credentials"},
	{"c13", "/latest/meta-data/placement/%252e%252e/iam/security-credentials/", "400", ""},
	{"c14", "/latest/meta-data/iam;x/security-credentials/", "400", ""},
	{"c15", "/latest/meta-data/iam/security-credentials/?x=1", "400", ""},
	{"c16", `/latest/meta-data\iam\security-credentials\`, "400", ""},
	{"c17", "/latest/meta-data/%5ciam/security-credentials/", "400", ""},
	{"c18", "http://169.254.169.254/latest/meta-data/iam/security-credentials/", "/latest/meta-data/iam/security-credentials/", "/meta-data/iam/security-credentials"},
	{"c19", "/2009-04-04/meta-data/iam/security-credentials/", "/2009-04-04/meta-data/iam/security-credentials/", "/meta-data/iam/security-credentials"},
	{"c20", "/latest/meta-data/identity-credentials/ec2/security-credentials/ec2-instance", "/latest/meta-data/identity-credentials/ec2/security-credentials/ec2-instance", "/meta-data/identity-credentials/ec2/security-credentials/ec2-instance"},
	{"c21", "/latest/user-data", "/latest/user-data", "/user-data"},
	{"c22", "/latest/dynamic/instance-identity/signature", "/latest/dynamic/instance-identity/signature", "/dynamic/instance-identity/signature"},
	{"c23", "/latest/meta-data/iam/info", "/latest/meta-data/iam/info", "/meta-data/iam/info"},
	{"c24", "/latest/meta-data/%00/../iam/security-credentials/", "400", ""},
	{"c25", "/latest/meta-data/%c0%ae%c0%ae/iam/security-credentials/", "400", ""},
	{"c26", "/latest/meta-data/iam/./security-credentials/", "/latest/meta-data/iam/security-credentials/", "/meta-data/iam/security-credentials"},

	// Roots and versions.
	{"root", "/", "/", "/"},
	{"root//", "//", "/", "/"},
	{"latest", "/latest", "/latest", "/"},
	{"latest/", "/latest/", "/latest/", "/"},
	{"1.0", "/1.0/meta-data/instance-id", "/1.0/meta-data/instance-id", "/meta-data/instance-id"},
	{"unknown version", "/foo/meta-data/iam/info", "404", ""},
	{"version case", "/LATEST/meta-data/iam/info", "404", ""},
	{"bad date", "/2009-4-04/meta-data/", "404", ""},
	{"dotdot to version", "/latest/..", "/", "/"},
	{"dotdot above root", "/latest/../..", "400", ""},
	{"dotdot to other version", "/latest/meta-data/../../2009-04-04/meta-data/iam/", "/2009-04-04/meta-data/iam/", "/meta-data/iam"},
	{"trailing dot", "/latest/meta-data/iam/.", "/latest/meta-data/iam/", "/meta-data/iam"},
	{"trailing dotdot", "/latest/meta-data/iam/info/..", "/latest/meta-data/iam/", "/meta-data/iam"},
	{"encoded slash at root", "%2flatest/meta-data/", "400", ""},

	// Characters IMDS paths use.
	{"mac", "/latest/meta-data/network/interfaces/macs/02:29:96:8f:6a:2d/subnet-id", "/latest/meta-data/network/interfaces/macs/02:29:96:8f:6a:2d/subnet-id", "/meta-data/network/interfaces/macs/02:29:96:8f:6a:2d/subnet-id"},
	{"tag key", "/latest/meta-data/tags/instance/Team+Cost=1,a_b:c@d~e", "/latest/meta-data/tags/instance/Team+Cost=1,a_b:c@d~e", "/meta-data/tags/instance/Team+Cost=1,a_b:c@d~e"},
	{"encoded tag key", "/latest/meta-data/tags/instance/a%3Ab", "/latest/meta-data/tags/instance/a:b", "/meta-data/tags/instance/a:b"},
	{"case kept", "/latest/meta-data/IAM/info", "/latest/meta-data/IAM/info", "/meta-data/IAM/info"},

	// Refusals.
	{"empty query", "/latest/meta-data/?", "400", ""},
	{"fragment", "/latest/meta-data/#x", "400", ""},
	{"space", "/latest/meta-data/iam info", "400", ""},
	{"encoded space", "/latest/meta-data/iam%20info", "400", ""},
	{"raw non-ascii", "/latest/meta-data/\xc0\xae", "400", ""},
	{"bad escape", "/latest/meta-data/%zz", "400", ""},
	{"short escape", "/latest/meta-data/%2", "400", ""},
	{"encoded percent", "/latest/meta-data/%25", "400", ""},
	{"encoded backslash", "/latest/meta-data/%5C", "400", ""},
	{"encoded semicolon", "/latest/meta-data/iam%3bx", "400", ""},
	{"encoded nul", "/latest/%00", "400", ""},
	{"encoded question", "/latest/meta-data/%3f", "400", ""},
	{"asterisk-form", "*", "400", ""},
	{"authority-form", "169.254.169.254:80", "400", ""},
	{"other host", "http://example.com/latest/meta-data/", "400", ""},
	{"https", "https://169.254.169.254/latest/meta-data/", "400", ""},
	{"userinfo", "http://u@169.254.169.254/latest/meta-data/", "400", ""},
	{"host with path trick", "http://169.254.169.254@example.com/latest/", "400", ""},
	{"scheme case", "HTTP://169.254.169.254/latest/meta-data/iam/", "/latest/meta-data/iam/", "/meta-data/iam"},
	{"v6 host", "http://[fd00:ec2::254]/latest/meta-data/iam/", "/latest/meta-data/iam/", "/meta-data/iam"},
	{"v6 host port", "http://[fd00:ec2::254]:80/latest", "/latest", "/"},
	{"host only", "http://169.254.169.254", "/", "/"},
	{"too long", "/latest/" + strings.Repeat("a", MaxTarget), "400", ""},
	{"too deep", "/latest" + strings.Repeat("/a", maxSegments+1), "400", ""},
}

func TestParse(t *testing.T) {
	for _, c := range cases {
		t.Run(c.id, func(t *testing.T) {
			p, err := Parse(c.target)
			if c.want == "400" || c.want == "404" {
				var ce *Error
				if !errors.As(err, &ce) {
					t.Fatalf("Parse(%q) = %q, %v; want refusal %s", c.target, p, err, c.want)
				}
				if got := itoa(ce.Status); got != c.want {
					t.Fatalf("Parse(%q) status %s (%s), want %s", c.target, got, ce.Reason, c.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v, want %q", c.target, err, c.want)
			}
			if p.String() != c.want || p.Rel != c.rel {
				t.Fatalf("Parse(%q) = %q rel %q, want %q rel %q", c.target, p, p.Rel, c.want, c.rel)
			}
			checkCanonical(t, c.target, p)
		})
	}
}

func itoa(n int) string {
	return string(rune('0'+n/100)) + string(rune('0'+n/10%10)) + string(rune('0'+n%10))
}

// checkCanonical states what "forward exactly the decided path" means: the
// upstream path is a fixed point of Parse, no other URL parser reads it
// differently, and it has nothing left to normalize.
func checkCanonical(t *testing.T, target string, p Path) {
	t.Helper()
	s := p.String()
	again, err := Parse(s)
	if err != nil || again != p {
		t.Fatalf("Parse(%q) = %+v; Parse of its upstream path %q = %+v, %v: not a fixed point", target, p, s, again, err)
	}
	u, err := url.ParseRequestURI(s)
	if err != nil || u.Path != s || u.EscapedPath() != s || u.RequestURI() != s {
		t.Fatalf("upstream path %q reads differently in net/url: %+v %v", s, u, err)
	}
	clean := path.Clean(s)
	if p.Dir && s != "/" {
		clean += "/"
	}
	if clean != s {
		t.Fatalf("upstream path %q is not clean (%q)", s, clean)
	}
	for i := 0; i < len(s); i++ {
		if s[i] != '/' && !InAlphabet(s[i]) {
			t.Fatalf("upstream path %q has byte %q outside the alphabet", s, s[i])
		}
	}
	if !IsRel(p.Rel) {
		t.Fatalf("policy path %q is not of the form the policy decides on", p.Rel)
	}
}

// FuzzParse: for any target, Parse refuses it, or the path it returns is
// canonical (see checkCanonical), so what is forwarded is what was decided.
func FuzzParse(f *testing.F) {
	for _, c := range cases {
		f.Add(c.target)
	}
	f.Fuzz(func(t *testing.T, target string) {
		p, err := Parse(target)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || (ce.Status != 400 && ce.Status != 404) {
				t.Fatalf("Parse(%q): error %v is not a 400/404 *Error", target, err)
			}
			return
		}
		checkCanonical(t, target, p)
	})
}

func BenchmarkParse(b *testing.B) {
	for _, target := range []string{"/latest/meta-data/placement/availability-zone", "/latest/meta-data/%69am/./info/"} {
		b.Run(target, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(target); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestIsRel(t *testing.T) {
	good := []string{"/", "/a", "/meta-data/iam/info", "/meta-data/tags/instance/Name", "/x+y=z,w_v:u@t~s", "/...", "/.a"}
	bad := []string{"", "a", "/a/", "//", "//a", "/a//b", "/.", "/a/..", "/a/./b", "/a?x", "/a%2f", `/a\b`, "/a b", "/\x00", "/ı"}
	for _, p := range good {
		if !IsRel(p) {
			t.Errorf("IsRel(%q) = false, want true", p)
		}
	}
	for _, p := range bad {
		if IsRel(p) {
			t.Errorf("IsRel(%q) = true, want false", p)
		}
	}
}
