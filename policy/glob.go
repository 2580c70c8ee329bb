package policy

import (
	"errors"
	"fmt"
	"strings"

	"github.com/imdsguard/imdsguard/internal/canon"
)

// A pattern is a compiled allow or deny entry: "/meta-data/**",
// "/meta-data/iam/security-credentials/team-*", "/user-data".
//
// Segments are separated by "/"; "**" as a whole segment matches zero or more
// segments; "*" inside a segment matches any run of characters but "/" (so "*"
// alone is exactly one segment). A trailing "/" is ignored. Matching is ASCII
// case-insensitive, so "IAM" cannot dodge a deny written "iam".
type pattern struct {
	raw    string    // as written in the configuration
	segs   []segment // "/" alone has none
	reason string    // the Decision.Reason when this pattern decides
}

type segKind uint8

const (
	segLiteral segKind = iota // "meta-data": equal, folding case
	segGlob                   // "team-*", "*": one segment, "*" any run
	segAny                    // "**": zero or more segments
)

type segment struct {
	kind segKind
	text string // lower-cased
}

// patternHelp lists what a pattern may contain, for error messages.
const patternHelp = `patterns use letters, digits and + - = . , _ : @ ~ in segments, "/" between segments, "*" inside a segment and "**" as a whole segment`

// parsePattern checks and compiles one pattern. Its errors say what is wrong
// and show an example of what to write.
func parsePattern(raw string) (pattern, error) {
	p := pattern{raw: raw}
	switch {
	case raw == "":
		return p, errors.New(`empty pattern: write a path such as "/meta-data/placement/**"`)
	case raw[0] != '/':
		return p, fmt.Errorf(`pattern %q must start with "/" (write %q)`, raw, "/"+raw)
	}
	if err := checkVersionPrefix(raw); err != nil {
		return p, err
	}
	body := strings.TrimSuffix(raw, "/")
	for rest := body; rest != ""; {
		text, next := nextSegment(rest)
		seg, err := parseSegment(raw, text)
		if err != nil {
			return p, err
		}
		p.segs = append(p.segs, seg)
		rest = next
	}
	return p, nil
}

// parseSegment checks and compiles one segment of pattern raw.
func parseSegment(raw, text string) (segment, error) {
	switch text {
	case "":
		return segment{}, fmt.Errorf(`pattern %q has an empty segment ("//"): write e.g. "/meta-data/iam/**"`, raw)
	case ".", "..":
		return segment{}, fmt.Errorf(`pattern %q has a %q segment: paths are matched after canonicalization, so write the path it stands for, e.g. "/meta-data/iam/**"`, raw, text)
	case "**":
		return segment{kind: segAny, text: text}, nil
	}
	if strings.Contains(text, "**") {
		return segment{}, fmt.Errorf(`pattern %q: "**" must be a whole segment ("/meta-data/**"); inside a segment write "*" ("/meta-data/iam/security-credentials/team-*")`, raw)
	}
	for i := 0; i < len(text); i++ {
		if c := text[i]; c != '*' && !canon.InAlphabet(c) {
			return segment{}, fmt.Errorf("pattern %q: character %q is not allowed: %s", raw, c, patternHelp)
		}
	}
	kind := segLiteral
	if strings.Contains(text, "*") {
		kind = segGlob
	}
	return segment{kind: kind, text: strings.ToLower(text)}, nil
}

// checkVersionPrefix refuses a pattern that starts with a version ("/latest",
// "/2009-04-04", "/1.0"): patterns are relative to the version prefix.
func checkVersionPrefix(raw string) error {
	first, rest := nextSegment(raw)
	if !versionSegment(first) {
		return nil
	}
	if rest == "" || rest == "/" {
		rest = "/**"
	}
	return fmt.Errorf(`pattern %q starts with the version prefix "/%s": patterns are relative to it, drop the prefix (write %q)`, raw, first, rest)
}

// versionSegment reports whether s names an IMDS version: "latest", "1.0",
// or a date such as "2009-04-04".
func versionSegment(s string) bool {
	if foldEqual("latest", s) || s == "1.0" {
		return true
	}
	if len(s) != len("2009-04-04") {
		return false
	}
	for i := 0; i < len(s); i++ {
		digit := '0' <= s[i] && s[i] <= '9'
		if (i == 4 || i == 7) != (s[i] == '-') || (i != 4 && i != 7 && !digit) {
			return false
		}
	}
	return true
}
