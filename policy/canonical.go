package policy

// pathByte reports whether c may appear in a canonical path segment:
// [A-Za-z0-9] and + - = . , _ : @ ~ (the set package proxy/canon emits).
func pathByte(c byte) bool {
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

// lower folds an ASCII upper-case letter; IMDS paths are ASCII only, and
// folding nothing else keeps "K" (Kelvin sign) and friends out of the game.
func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}

// canonical reports whether path has the form Decide expects: "/" or
// "/"-separated non-empty segments, no trailing slash, no "." or ".."
// segment, every byte a pathByte. Decide denies anything else, so that a bug
// in canonicalization fails closed instead of dodging a deny pattern.
func canonical(path string) bool {
	if path == "/" {
		return true
	}
	if path == "" || path[0] != '/' {
		return false
	}
	for rest := path; rest != ""; {
		seg, next := nextSegment(rest)
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
		for i := 0; i < len(seg); i++ {
			if !pathByte(seg[i]) {
				return false
			}
		}
		rest = next
	}
	return true
}

// nextSegment splits rest, which starts with "/", into its first segment and
// what follows it ("" or "/..."). nextSegment("/a/b") is "a", "/b".
func nextSegment(rest string) (seg, next string) {
	for i := 1; i < len(rest); i++ {
		if rest[i] == '/' {
			return rest[1:i], rest[i:]
		}
	}
	return rest[1:], ""
}
