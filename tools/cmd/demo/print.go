package main

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// maxLines is how many lines of a command's output are shown by default.
const maxLines = 12

// ANSI styles; used only when the output is a terminal.
const (
	bold  = "\x1b[1m"
	dim   = "\x1b[2m"
	red   = "\x1b[31m"
	green = "\x1b[32m"
	cyan  = "\x1b[36m"
	reset = "\x1b[0m"
)

// printer writes the demo's story: step headings, commands with their
// output indented below them, notes, audit tables.
type printer struct {
	w     io.Writer
	color bool
	err   error // the first write that failed
}

// newPrinter writes to f, in colour when f is a terminal and NO_COLOR is
// not set.
func newPrinter(f *os.File) *printer {
	fi, err := f.Stat()
	tty := err == nil && fi.Mode()&os.ModeCharDevice != 0
	return &printer{w: f, color: tty && os.Getenv("NO_COLOR") == ""}
}

// paint wraps s in style when printing in colour.
func (p *printer) paint(style, s string) string {
	if !p.color || s == "" {
		return s
	}
	return style + s + reset
}

// line writes s and a newline; the first failure is kept in err.
func (p *printer) line(s string) {
	if _, err := fmt.Fprintln(p.w, s); err != nil && p.err == nil {
		p.err = err
	}
}

// step starts a step: "== N. title ==" (n 0: "== title ==").
func (p *printer) step(n int, title string) {
	if n > 0 {
		title = fmt.Sprintf("%d. %s", n, title)
	}
	p.line("\n" + p.paint(bold, "== "+title+" =="))
}

// say prints an explanation, dimmed.
func (p *printer) say(format string, args ...any) {
	p.line(p.paint(dim, fmt.Sprintf(format, args...)))
}

// command shows a command about to run: "[where, who] $ label   # note".
func (p *printer) command(where, who, label, note string) {
	s := p.paint(cyan, "["+where+", "+who+"]") + " " + p.paint(bold, "$ "+label)
	if note != "" {
		s += p.paint(dim, "   # "+note)
	}
	p.line(s)
}

// output shows a command's output indented, IMDS error pages shortened,
// at most max lines.
func (p *printer) output(text string, max int) {
	lines := shortenXHTML(strings.Split(strings.Trim(text, "\n"), "\n"))
	if len(lines) == 1 && lines[0] == "" {
		return
	}
	for i, l := range lines {
		if i == max {
			p.line(p.paint(dim, fmt.Sprintf("    [... %d more lines]", len(lines)-max)))
			return
		}
		p.line("    " + l)
	}
}

// failed shows how a command failed: "(exit N)", or the error.
func (p *printer) failed(how string) {
	p.line("    " + p.paint(red, "("+how+")"))
}
