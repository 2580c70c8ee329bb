package ifname

import (
	"strings"
	"testing"
)

func TestParseAccepts(t *testing.T) {
	for _, tc := range []struct {
		in       string
		wildcard bool
	}{
		{"docker0", false},
		{"br-1a2b3c4d5e6f", false},
		{"br-+", true},
		{"cni0", false},
		{"cni+", true},
		{"veth1234abc", false},
		{"veth+", true},
		{"eni1a2b3c4d5e6", false},
		{"eni+", true},
		{"cali0123456789a", false},
		{"lxc_health", false},
		{"lxc+", true},
		{"cilium_host", false},
		{"enp0s3", false},
		{"podman0", false},
		{"flannel.1", false},
		{"eth0.100", false},
		{"Docker0", false},
		{"-x", false},
		{"+", true},
		{".+", true},               // the prefix ".": ".a" is a valid name
		{"abcdefghijklmno", false}, // 15 bytes, the longest name
		{"abcdefghijklmn+", true},  // 15 bytes with the "+"
		{"0123456789_.-AZ", false}, // the whole alphabet
	} {
		p, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q) = %v, want it accepted", tc.in, err)
			continue
		}
		if got := p.String(); got != tc.in {
			t.Errorf("Parse(%q).String() = %q, want it as written", tc.in, got)
		}
		if got := p.IsWildcard(); got != tc.wildcard {
			t.Errorf("Parse(%q).IsWildcard() = %v, want %v", tc.in, got, tc.wildcard)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	for _, tc := range []struct {
		in  string
		why string // a fragment of the error after `"in" is not an interface name: `
	}{
		{"", "empty"},
		{"abcdefghijklmnop", "16 bytes; a pattern has 1 to 15 (IFNAMSIZ-1)"},
		{"abcdefghijklmn++", "16 bytes; a pattern has 1 to 15"},
		{"abcdefghijklmno+", `16 bytes; a pattern has 1 to 15 (IFNAMSIZ-1), a trailing "+" included; write abcdefghijklmno: no longer`},
		{".", `"." and ".."`},
		{"..", `"." and ".."`},
		{"!eth0", "negation is not supported"},
		{"!", "negation is not supported"},
		{"!+", "negation is not supported"},
		{"ve+th", `only a trailing "+"`},
		{"++", `only a trailing "+"`},
		{"veth*", `"*" is no wildcard here: write veth+`},
		{"veth1@if3", `"@" is not part of a name`},
		{"eth/0", `'/' is not allowed`},
		{"x:y", `':' is not allowed`},
		{"a b", `' ' is not allowed`},
		{"a\tb", `'\t' is not allowed`},
		{"a\nb", `'\n' is not allowed`},
		{`a"b`, `'"' is not allowed`},
		{"a'b", `'\'' is not allowed`},
		{`a\b`, `'\\' is not allowed`},
		{"a!b", `'!' is not allowed`},
		{"a$b", `'$' is not allowed`},
		{"a#b", `'#' is not allowed`},
		{"a\x7fb", `'\x7f' is not allowed`},
		{"a\x00b", `'\x00' is not allowed`},
		{"ıam", `'\u0131' is not allowed`},
		{"a\xffb", `'\ufffd' is not allowed`},
	} {
		_, err := Parse(tc.in)
		if err == nil {
			t.Errorf("Parse(%q) accepted it, want: ...%s...", tc.in, tc.why)
			continue
		}
		msg := err.Error()
		head, why, _ := strings.Cut(msg, " is not an interface name: ")
		if head == msg || !strings.Contains(why, tc.why) {
			t.Errorf("Parse(%q) = %q, want: <quoted> is not an interface name: ...%s...", tc.in, msg, tc.why)
		}
	}
}

// Only a valid name of 15 bytes with a "+" gets the hint to drop the "+".
func TestTooLongHint(t *testing.T) {
	const long = `16 bytes; a pattern has 1 to 15 (IFNAMSIZ-1), a trailing "+" included`
	for in, want := range map[string]string{
		"abcdefghijklmno+": long + "; write abcdefghijklmno: no longer name can start with it",
		"abcdefghijklmn++": long,
		"abcdefghijklm!o+": long,
		"abcdefghijklmnop": long,
	} {
		_, err := Parse(in)
		if want = `"` + in + `" is not an interface name: ` + want; err == nil || err.Error() != want {
			t.Errorf("Parse(%q) = %v\nwant %s", in, err, want)
		}
	}
}

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, name string
		want          bool
	}{
		{"docker0", "docker0", true},
		{"docker0", "docker01", false},
		{"docker0", "docker", false},
		{"docker0", "Docker0", false},
		{"veth+", "veth1234", true},
		{"veth+", "veth", true},
		{"veth+", "vet", false},
		{"veth+", "xveth1", false},
		{"br-+", "br-0123abcd", true},
		{"br-+", "br0", false},
		{"+", "eth0", true},
		{"+", "lo", true},
		{"+", "", false},
		{"veth+", "", false},
		{"abcdefghijklmno", "abcdefghijklmno", true},
		{"abcdefghijklmn+", "abcdefghijklmno", true},
		{"abcdefghijklmn+", "abcdefghijklmn", true},
		{"abcdefghijklmn+", "abcdefghijklmx", false},
	} {
		p, err := Parse(tc.pattern)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Match(tc.name); got != tc.want {
			t.Errorf("%q.Match(%q) = %v, want %v", tc.pattern, tc.name, got, tc.want)
		}
	}
	if (Pattern{}).Match("eth0") || (Pattern{}).Match("") {
		t.Error("the zero Pattern matches something")
	}
}

func TestMatchAllocatesNothing(t *testing.T) {
	p, _ := Parse("veth+")
	if n := testing.AllocsPerRun(100, func() { p.Match("veth1234") }); n != 0 {
		t.Errorf("Match allocates %v times", n)
	}
}
