package policy

// match reports whether the canonical path matches p. It does not allocate.
//
// Segments are matched left to right; on a mismatch the last "**" seen takes
// one more path segment and matching resumes after it (the classic wildcard
// algorithm, with segments for characters). Going back to an earlier "**" is
// never needed: the later one can absorb whatever the earlier one would have.
func (p *pattern) match(path string) bool {
	rest := path // "" at the end, else "/segment..."
	if rest == "/" {
		rest = ""
	}
	si := 0
	starSi, starRest := -1, ""
	for {
		if si < len(p.segs) && p.segs[si].kind == segAny {
			starSi, starRest = si, rest
			si++
			continue
		}
		if rest == "" && si == len(p.segs) {
			return true
		}
		if rest != "" && si < len(p.segs) {
			seg, next := nextSegment(rest)
			if p.segs[si].match(seg) {
				si, rest = si+1, next
				continue
			}
		}
		if starSi < 0 || starRest == "" {
			return false
		}
		_, starRest = nextSegment(starRest)
		si, rest = starSi+1, starRest
	}
}

// match reports whether one path segment s matches the pattern segment.
func (g segment) match(s string) bool {
	switch g.kind {
	case segLiteral:
		return foldEqual(g.text, s)
	case segGlob:
		return globMatch(g.text, s)
	}
	return false // segAny is handled by pattern.match
}

// foldEqual reports whether s equals the lower-case pat, folding ASCII case.
func foldEqual(pat, s string) bool {
	if len(pat) != len(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if lower(s[i]) != pat[i] {
			return false
		}
	}
	return true
}

// globMatch matches s against the lower-case pat, where "*" is any run of
// characters, folding ASCII case.
func globMatch(pat, s string) bool { return starMatch(pat, s, true) }

// starMatch matches s against pat, where "*" is any run of bytes and every
// other byte matches itself (s's folded to lower case when fold; pat is
// then lower-case already). It backtracks to the last star only (at worst
// len(pat)*len(s) steps), and it does not allocate.
func starMatch(pat, s string, fold bool) bool {
	px, sx := 0, 0
	starPx, starSx := -1, 0
	for px < len(pat) || sx < len(s) {
		if px < len(pat) {
			if pat[px] == '*' {
				starPx, starSx = px, sx
				px++
				continue
			}
			if sx < len(s) {
				c := s[sx]
				if fold {
					c = lower(c)
				}
				if c == pat[px] {
					px, sx = px+1, sx+1
					continue
				}
			}
		}
		if starPx < 0 || starSx >= len(s) {
			return false
		}
		starSx++
		px, sx = starPx+1, starSx
	}
	return true
}
