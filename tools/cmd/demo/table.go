package main

import (
	"strings"
	"unicode/utf8"
)

// table prints rows under header in aligned columns, indented; color (nil:
// none) may paint a row's cells.
func (p *printer) table(header []string, rows [][]string, color func(col int, cell string) string) {
	widths := make([]int, len(header))
	for _, r := range append([][]string{header}, rows...) {
		for i, cell := range r {
			widths[i] = max(widths[i], utf8.RuneCountInString(cell))
		}
	}
	p.line(p.paint(dim, p.cells(header, widths, nil)))
	for _, r := range rows {
		p.line(p.cells(r, widths, color))
	}
}

// cells joins a row, each cell padded to its column's width (the last one
// not), painted by color when it is not nil.
func (p *printer) cells(r []string, widths []int, color func(col int, cell string) string) string {
	var b strings.Builder
	b.WriteString("    ")
	for i, cell := range r {
		pad := ""
		if i < len(r)-1 {
			pad = strings.Repeat(" ", widths[i]-utf8.RuneCountInString(cell)+2)
		}
		if color != nil {
			cell = color(i, cell)
		}
		b.WriteString(cell + pad)
	}
	return b.String()
}
