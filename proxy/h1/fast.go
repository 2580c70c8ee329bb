package h1

import (
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
)

// parseCommon parses a request head of the one shape metadata clients send
// (an SDK's GET, HEAD or token PUT) into m, the request http.ReadRequest
// would return for it, field for field, and returns m's request, or nil
// for anything else, which http.ReadRequest then parses. m is the
// connection's: whatever it held before (its last request, done with) is
// overwritten; the request's strings are cut from a copy of head of their
// own, so they outlive m's next use. A head the same as the connection's
// last one, byte for byte (a keep-alive client reading one path with one
// token), is cut from the last one's copy: strings never change, and the
// cached read allocates nothing. It exists because ReadRequest, with
// its line reader and ten allocations, was a tenth of the daemon's work per
// cached read; it is not a second parser with rules of its own: it accepts
// a strict subset of what ReadRequest accepts, on which the two agree
// (FuzzCommonSameAsReadRequest), and the request goes through the same
// checks afterwards (check).
//
// The subset: head is whole, with CRLF line ends; the request line is
// "GET", "HEAD" or "PUT", one space, an origin-form target of path
// characters only (no query, no fragment, no space), one space,
// "HTTP/1.1"; each header line is a token, a colon, and a value of
// visible ASCII, spaces and tabs, with no continuation lines; at most one
// Host, and none of the headers that change how the request is framed or
// whether the connection stays open (Content-Length, Transfer-Encoding,
// Connection, Expect, Trailer, TE, Upgrade, Pragma, which ReadRequest
// would act on).
func parseCommon(head []byte, m *common) *http.Request {
	if len(head) < 4 || string(head[len(head)-4:]) != "\r\n\r\n" {
		return nil
	}
	s := m.head // every string of the request is a part of this one
	if raw := head[:len(head)-2]; string(raw) != s {
		s = string(raw)
	}
	line, rest, _ := strings.Cut(s, "\r\n")
	method, rest1, ok := strings.Cut(line, " ")
	if !ok || method != http.MethodGet && method != http.MethodHead && method != http.MethodPut {
		return nil
	}
	target, proto, ok := strings.Cut(rest1, " ")
	if !ok || proto != "HTTP/1.1" || !pathTarget(target) {
		return nil
	}
	h := m.header
	if h == nil {
		h = make(http.Header, len(m.strs))
	} else {
		clear(h)
	}
	*m = common{header: h, head: s}
	if plainPath(target) {
		m.url.Path = target // what url.ParseRequestURI makes of it: nothing to unescape
	} else {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return nil
		}
		m.url = *u
	}
	n := strings.Count(rest, "\r\n")
	strs := m.strs[:] // one value a key, cut from one slice, as net/textproto does
	if n > len(strs) {
		strs = make([]string, n)
	}
	host, hosts := "", 0
	for rest != "" {
		var kv string
		kv, rest, _ = strings.Cut(rest, "\r\n")
		k, v, ok := strings.Cut(kv, ":")
		if !ok || !token(k) || !plainValue(v) {
			return nil
		}
		v = strings.Trim(v, " \t")
		key := canonicalKey(k)
		switch key {
		case "Content-Length", "Transfer-Encoding", "Connection", "Expect", "Trailer", "Te", "Upgrade", "Pragma":
			return nil
		case "Host":
			if hosts++; hosts > 1 {
				return nil
			}
			host = v
			continue // ReadRequest takes it out of the header
		}
		if vv, ok := h[key]; ok {
			h[key] = append(vv, v)
		} else {
			vv, strs = strs[:1:1], strs[1:]
			vv[0] = v
			h[key] = vv
		}
	}
	m.req = http.Request{
		Method:     method,
		URL:        &m.url,
		Proto:      proto,
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		Body:       http.NoBody,
		Host:       host,
		RequestURI: target,
	}
	return &m.req
}

// common is a request parseCommon makes and what it points to: its URL,
// its header map, the values of up to eight header lines (an SDK sends
// three to six) and the copy of the head they are cut from. A connection
// keeps one for its requests, one at a time: making them anew for each
// request cost 1 to 3 µs of a cached read's 21 to 29 µs of CPU, with the
// collections the garbage made (wrk -c16 and -c256, beside the binary
// before).
type common struct {
	req    http.Request
	url    url.URL
	header http.Header
	strs   [8]string
	head   string // the last head parsed, without its final CRLF
}

// plainPath reports whether an origin-form target is made of unreserved
// characters and "/" only: url.ParseRequestURI would return it as the
// URL's Path, with no RawPath, since nothing in it is escaped or would be.
func plainPath(t string) bool { return alnumOr(t, "/-._~") }

// knownKeys are the canonical forms of header names clients send in other
// cases ("X-aws-ec2-metadata-token" in the SDKs' own docs and in curl
// examples): canonicalKey returns these strings instead of making a new
// one each request.
var knownKeys = [...]string{
	"X-Aws-Ec2-Metadata-Token",
	"X-Aws-Ec2-Metadata-Token-Ttl-Seconds",
	"Amz-Sdk-Invocation-Id",
	"Amz-Sdk-Request",
	"User-Agent",
	"Accept",
	"Accept-Encoding",
}

// canonicalKey is textproto.CanonicalMIMEHeaderKey of a token k. A token
// is ASCII, where case folding is plain: a name equal to one of knownKeys
// but for case has that one as its canonical form (TestCanonicalKeyAsTextproto).
func canonicalKey(k string) string {
	for _, c := range knownKeys {
		if len(c) == len(k) && strings.EqualFold(c, k) {
			return c
		}
	}
	return textproto.CanonicalMIMEHeaderKey(k)
}

// pathTarget reports whether t is an origin-form target of RFC 3986 path
// characters: "/" and pchar (unreserved, percent signs, sub-delims, ":" and
// "@"), so no query, fragment, space or control.
func pathTarget(t string) bool {
	return t != "" && t[0] == '/' && alnumOr(t, "/-._~%!$&'()*+,;=:@")
}

// token reports whether k is a non-empty RFC 9110 token (a header name).
func token(k string) bool { return k != "" && alnumOr(k, "!#$%&'*+-.^_`|~") }

// alnumOr reports whether every byte of s is an ASCII letter or digit, or
// one of extra.
func alnumOr(s, extra string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(extra, c) >= 0) {
			return false
		}
	}
	return true
}

// plainValue reports whether v holds only visible ASCII, spaces and tabs.
func plainValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c > '~' {
			return false
		}
	}
	return true
}
