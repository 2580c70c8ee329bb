package config

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/imdsguard/imdsguard/internal/config/field"
)

// Error is one problem in a configuration file.
type Error struct {
	File         string
	Line, Column int    // 0 when the position is unknown
	Field        string // "tokens.hop_limit.host"; "" when not about one field
	Msg          string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one file.
type Errors struct {
	File string
	List []*Error
}

func (e *Errors) Error() string {
	lines := make([]string, len(e.List))
	for i, x := range e.List {
		lines[i] = x.Error()
	}
	return strings.Join(lines, "\n")
}

// positioned gives every field error in err the line and column of its field.
func positioned(name string, data []byte, err error) *Errors {
	f, perr := parser.ParseBytes(data, 0)
	out := &Errors{File: name}
	for _, e := range field.Split(err) {
		x := &Error{File: name, Msg: e.Error()}
		var fe *field.Error
		if errors.As(e, &fe) {
			x.Field, x.Msg = fe.Path, fe.Msg
		}
		if perr == nil && x.Field != "" {
			x.Line, x.Column = locate(f, x.Field)
		}
		out.List = append(out.List, x)
	}
	return out
}

// locate returns the position of the field at path, or of its nearest
// ancestor that the file has (a missing field is reported where its parent
// is), or 1:1.
func locate(f *ast.File, path string) (int, int) {
	for p := path; p != ""; p = parent(p) {
		yp, err := yaml.PathString("$." + p)
		if err != nil {
			continue
		}
		if n, err := yp.FilterFile(f); err == nil && n != nil {
			pos := n.GetToken().Position
			return pos.Line, pos.Column
		}
	}
	return 1, 1
}

// parent strips the last element of a field path: "a.b[2]" -> "a.b" -> "a".
func parent(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

var goType = regexp.MustCompile(` into Go (struct field|value of type) \S+( of type (\S+))?`)

// decodeError turns a YAML syntax or type error into an Error naming the
// field (found by position) and saying what was expected.
func decodeError(name string, data []byte, err error) *Error {
	var ye yaml.Error
	if !errors.As(err, &ye) || ye.GetToken() == nil {
		return &Error{File: name, Msg: err.Error()}
	}
	pos := ye.GetToken().Position
	x := &Error{File: name, Line: pos.Line, Column: pos.Column, Msg: ye.GetMessage()}
	x.Msg = goType.ReplaceAllString(x.Msg, " (want $3)")
	x.Msg = strings.Replace(x.Msg, " (want )", "", 1)
	if f, perr := parser.ParseBytes(data, 0); perr == nil {
		x.Field = fieldAt(f, pos.Line, pos.Column)
	}
	return x
}

// fieldAt returns the path of the node that starts at line:col, "" if none.
func fieldAt(f *ast.File, line, col int) string {
	var found string
	for _, doc := range f.Docs {
		ast.Walk(visitFunc(func(n ast.Node) bool {
			if tk := n.GetToken(); found == "" && tk != nil && tk.Position.Line == line && tk.Position.Column == col {
				found = strings.TrimPrefix(strings.TrimPrefix(n.GetPath(), "$"), ".")
			}
			return found == ""
		}), doc)
	}
	return found
}

type visitFunc func(ast.Node) bool

func (v visitFunc) Visit(n ast.Node) ast.Visitor {
	if v(n) {
		return v
	}
	return nil
}

func splitWarning(w string) (path, msg string) {
	if p, m, ok := strings.Cut(w, ": "); ok && !strings.Contains(p, " ") {
		return p, m
	}
	return "", w
}

func joinSection(section, path string) string {
	if path == "" {
		return section
	}
	return field.Join(section, path)
}
