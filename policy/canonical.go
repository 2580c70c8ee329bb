package policy

// lower folds an ASCII upper-case letter; IMDS paths are ASCII only, and
// folding nothing else keeps "K" (Kelvin sign) and friends out of the game.
func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
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
