// Package termtext makes text from strangers safe to print on an operator's terminal. Keys,
// messages and errors can hold anything an uploader typed: an escape sequence (ESC ] 52 writes
// the terminal's clipboard on common terminals, others move the cursor or rewrite lines), a
// carriage return that overprints a line, or a bidi override that reverses what follows.
// Visible prints such a string quoted, its invisible characters as escapes; every human-facing
// output of the CLI goes through it (machine output, JSON and CSV, stays exact). The table
// renderer is tablewriter's; this package only decides what reaches it.
package termtext

import (
	"io"
	"strconv"
	"strings"
	"unicode"

	"github.com/olekukonko/tablewriter"
)

// Visible returns s as it is when every character of it is printable (letters, marks, numbers,
// punctuation, symbols, spaces), and otherwise s quoted as Go does it, with each other character
// (control, escape, format, invalid UTF-8) written as an escape.
func Visible(s string) string {
	if strings.IndexFunc(s, hidden) < 0 {
		return s
	}
	return strconv.QuoteToGraphic(s)
}

// hidden: a character a terminal does not simply show (a replacement character is what invalid
// UTF-8 decodes to).
func hidden(r rune) bool {
	return r == unicode.ReplacementChar || !unicode.IsGraphic(r) || (unicode.IsSpace(r) && r != ' ')
}

// Table renders a table with every header and cell made Visible.
func Table(w io.Writer, header []string, rows [][]string) error {
	t := tablewriter.NewWriter(w)
	h := make([]any, len(header))
	for i, v := range header {
		h[i] = Visible(v)
	}
	t.Header(h...)
	safe := make([][]string, len(rows))
	for i, row := range rows {
		safe[i] = make([]string, len(row))
		for j, cell := range row {
			safe[i][j] = Visible(cell)
		}
	}
	if err := t.Bulk(safe); err != nil {
		return err
	}
	return t.Render()
}
