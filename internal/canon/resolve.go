package canon

import "strings"

// maxSegments bounds the work one request target can cause.
const maxSegments = 64

// resolve splits a decoded path into segments, collapsing empty segments and
// resolving "." and "..". dir reports whether the path names a directory
// (it ended with "/", "." or "..").
func resolve(p string) (segs []string, dir bool, err error) {
	segs = make([]string, 0, 8)
	rest, more := p, true
	for more {
		var seg string
		seg, rest, more = strings.Cut(rest, "/")
		dir = seg == "" || seg == "." || seg == ".."
		switch seg {
		case "", ".":
		case "..":
			if len(segs) == 0 {
				return nil, false, bad("'..' above the root")
			}
			segs = segs[:len(segs)-1]
		default:
			if len(segs) == maxSegments {
				return nil, false, bad("too many path segments")
			}
			segs = append(segs, seg)
		}
	}
	return segs, dir, nil
}

// build checks the version segment and assembles the Path.
func build(segs []string, dir bool) (Path, error) {
	if len(segs) == 0 {
		return Path{Rel: "/", Dir: true}, nil
	}
	if !isVersion(segs[0]) {
		return Path{}, notFound("unknown metadata version " + segs[0])
	}
	rel := "/"
	if len(segs) > 1 {
		rel = "/" + strings.Join(segs[1:], "/")
	}
	return Path{Version: segs[0], Rel: rel, Dir: dir}, nil
}

// isVersion reports whether s is "latest", "1.0" or a date YYYY-MM-DD.
func isVersion(s string) bool {
	if s == "latest" || s == "1.0" {
		return true
	}
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if i != 4 && i != 7 && (s[i] < '0' || s[i] > '9') {
			return false
		}
	}
	return true
}

// IsRel reports whether rel has the form of Path.Rel: "/", or "/"-separated
// non-empty segments of the alphabet with no "." or ".." segment and no
// trailing slash. The policy refuses to decide on anything else, so that a
// bug here fails closed instead of dodging a deny pattern.
func IsRel(rel string) bool {
	if rel == "/" {
		return true
	}
	if rel == "" || rel[0] != '/' {
		return false
	}
	start := 1 // of the current segment; it allocates nothing: Decide calls it
	for i := 1; i <= len(rel); i++ {
		if i < len(rel) && rel[i] != '/' {
			if !InAlphabet(rel[i]) {
				return false
			}
			continue
		}
		if seg := rel[start:i]; seg == "" || seg == "." || seg == ".." {
			return false
		}
		start = i + 1
	}
	return true
}
