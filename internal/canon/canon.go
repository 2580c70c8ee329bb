// Package canon turns the request target a client sent into the one canonical
// metadata path that the policy decides on and that is sent upstream, byte for
// byte. There is exactly one parser: whatever it cannot map to a single
// unambiguous path it refuses, so no other parser (IMDS's, an SDK's) can read
// the request differently from the way it was decided.
//
// The decisions, each tested in canon_test.go:
//
//   - origin-form ("/latest/...") and absolute-form for the metadata hosts
//     ("http://169.254.169.254/latest/...", "http://[fd00:ec2::254]/..."),
//     any other form or host: refused;
//   - query strings and fragments: refused (IMDS paths have none);
//   - percent-encoding is decoded exactly once: an encoded letter, dot or
//     slash means that letter, dot or slash; a '%' that decodes to '%'
//     (double encoding), an encoded NUL, control, backslash or any byte
//     outside the path alphabet: refused;
//   - the alphabet after decoding is A-Z a-z 0-9 and + - = . , _ : @ ~, the
//     characters IMDS paths (tag keys, MAC addresses, role names) use;
//     backslash, ';' (path parameters), spaces, non-ASCII and so overlong
//     UTF-8: refused;
//   - repeated slashes collapse, "." segments vanish, ".." removes the
//     previous segment ("/.." above the root: refused), and a trailing slash
//     is kept because IMDS answers directories with listings;
//   - case is kept (role names and tag keys are case-sensitive); the policy
//     matches case-insensitively so that "IAM" cannot dodge a deny;
//   - the first segment must be a version: "latest", a date such as
//     "2009-04-04", or "1.0"; anything else is answered 404 locally. The
//     path "/" (the version list) is its own case.
package canon

import (
	"strings"

	"github.com/imdsguard/imdsguard/internal/imds"
)

// Path is a canonical metadata path.
type Path struct {
	// Version is the version segment ("latest", "2009-04-04", "1.0"), or ""
	// for the root listing "/".
	Version string
	// Rel is the path below the version, which policy patterns are matched
	// against: "/" or "/seg/seg", never with a trailing slash.
	Rel string
	// Dir is true when the request ended with a slash (a directory listing).
	Dir bool
}

// String is the exact path sent upstream.
func (p Path) String() string {
	if p.Version == "" {
		return "/"
	}
	s := "/" + p.Version
	if p.Rel != "/" {
		s += p.Rel
	}
	if p.Dir {
		s += "/"
	}
	return s
}

// Error is a request target that has no canonical path.
type Error struct {
	Status int    // 400, or 404 for an unknown version segment
	Reason string // for logs and audit events
}

func (e *Error) Error() string { return e.Reason }

func bad(reason string) *Error      { return &Error{Status: 400, Reason: reason} }
func notFound(reason string) *Error { return &Error{Status: 404, Reason: reason} }

// MaxTarget is the longest request target accepted; longer ones are refused
// (the proxy answers 414) before they are parsed.
const MaxTarget = 2048

// Parse returns the canonical path of a request target as sent on the
// request line, or an *Error.
func Parse(target string) (Path, error) {
	p, err := pathOf(target)
	if err != nil {
		return Path{}, err
	}
	decoded, err := decode(p)
	if err != nil {
		return Path{}, err
	}
	segs, dir, err := resolve(decoded)
	if err != nil {
		return Path{}, err
	}
	return build(segs, dir)
}

// pathOf returns the path of an origin-form or absolute-form target.
func pathOf(target string) (string, error) {
	if len(target) > MaxTarget {
		return "", bad("request target too long")
	}
	if strings.ContainsAny(target, "?#") {
		return "", bad("query strings and fragments are not part of metadata paths")
	}
	if strings.HasPrefix(target, "/") {
		return target, nil
	}
	rest, ok := cutPrefixFold(target, "http://")
	if !ok {
		return "", bad("request target is neither a path nor an http:// URL")
	}
	host, path := rest, "/"
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		host, path = rest[:i], rest[i:]
	}
	if !metadataHost(host) {
		return "", bad("absolute-form target for a host other than the metadata service")
	}
	return path, nil
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return s, false
	}
	return s[len(prefix):], true
}

// metadataHost reports whether an absolute-form authority names IMDS.
func metadataHost(host string) bool {
	switch host {
	case imds.Host, imds.Host + ":80", imds.HostIPv6, imds.HostIPv6 + ":80":
		return true
	}
	return false
}
