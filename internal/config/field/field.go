// Package field names a configuration field in an error, so that the config
// loader can point at the line and column where that field was written.
//
// Every package that owns a section of the configuration validates it and
// returns *field.Error values whose Path is relative to that section
// ("hop_limit.host", "rules[2].allow[0]"); the loader prefixes the section
// name and looks the path up in the YAML document.
package field

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Error is a problem with the value of one configuration field.
type Error struct {
	Path string // YAML path below the section, e.g. "rules[2].allow[0]"
	Msg  string
}

func (e *Error) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// Errorf returns an *Error for the field at path.
func Errorf(path, format string, args ...any) *Error {
	return &Error{Path: path, Msg: fmt.Sprintf(format, args...)}
}

// Index returns the path of element i of the list at path: Index("allow", 2) is "allow[2]".
func Index(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// Join returns the path of child below parent: Join("tokens", "hop_limit") is "tokens.hop_limit".
func Join(parent, child string) string {
	switch {
	case parent == "":
		return child
	case child == "":
		return parent
	case strings.HasPrefix(child, "["):
		return parent + child
	}
	return parent + "." + child
}

// Prefix moves every *Error inside err (a single error or an errors.Join of
// them) below parent. Errors that are not *Error are kept as they are.
func Prefix(parent string, err error) error {
	if err == nil {
		return nil
	}
	errs := Split(err)
	out := make([]error, 0, len(errs))
	for _, e := range errs {
		var fe *Error
		if errors.As(e, &fe) {
			e = &Error{Path: Join(parent, fe.Path), Msg: fe.Msg}
		}
		out = append(out, e)
	}
	return errors.Join(out...)
}

// Split returns the errors joined in err (by errors.Join), or err itself.
func Split(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, Split(e)...)
		}
		return out
	}
	return []error{err}
}

// Duration is a YAML duration written as Go writes them ("6h", "90s").
// Decoding never fails: a malformed value is kept in Text and reported by
// Check with the field's path, so the error can name its line and column.
type Duration struct {
	time.Duration
	Text string // the value as written, kept when it does not parse
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	d.Text = string(b)
	v, err := time.ParseDuration(d.Text)
	if err != nil {
		d.Duration = -1
		return nil
	}
	d.Duration = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) {
	return []byte(d.Duration.String()), nil
}

// Check reports a malformed value, or one outside [lo, hi], at path.
func (d Duration) Check(path string, lo, hi time.Duration) error {
	if d.Duration < 0 {
		return Errorf(path, "%q is not a duration (write it like 6h, 30m or 90s)", d.Text)
	}
	if d.Duration < lo || d.Duration > hi {
		return Errorf(path, "%s is out of range (%s..%s)", d.Duration, lo, hi)
	}
	return nil
}
