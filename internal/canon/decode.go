package canon

import "strings"

// InAlphabet reports whether c may appear in a segment of a canonical path:
// A-Z a-z 0-9 and + - = . , _ : @ ~, the characters IMDS paths use.
func InAlphabet(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '+', '-', '=', '.', ',', '_', ':', '@', '~':
		return true
	}
	return false
}

// decode percent-decodes p once. Every byte of the result is '/' or in the
// alphabet; anything else, raw or encoded, is refused, and so is an encoded
// '%' (double encoding).
func decode(p string) (string, error) {
	if strings.IndexByte(p, '%') < 0 {
		return p, checkRaw(p)
	}
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '%' {
			v, ok := unhex2(p, i+1)
			if !ok {
				return "", bad("malformed percent-encoding")
			}
			if v == '%' {
				return "", bad("double percent-encoding")
			}
			if v != '/' && !InAlphabet(v) {
				return "", bad("encoded byte outside the metadata path alphabet")
			}
			b.WriteByte(v)
			i += 2
			continue
		}
		if c != '/' && !InAlphabet(c) {
			return "", bad(rawReason(c))
		}
		b.WriteByte(c)
	}
	return b.String(), nil
}

func checkRaw(p string) error {
	for i := 0; i < len(p); i++ {
		if c := p[i]; c != '/' && !InAlphabet(c) {
			return bad(rawReason(c))
		}
	}
	return nil
}

func rawReason(c byte) string {
	switch c {
	case '\\':
		return "backslash in path"
	case ';':
		return "path parameters (';') are not part of metadata paths"
	}
	return "byte outside the metadata path alphabet"
}

func unhex2(s string, i int) (byte, bool) {
	if i+2 > len(s) {
		return 0, false
	}
	hi, ok1 := unhex(s[i])
	lo, ok2 := unhex(s[i+1])
	return hi<<4 | lo, ok1 && ok2
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
