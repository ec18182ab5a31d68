package records

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/sluice-dev/sluice/pkg/failure"
	"github.com/sluice-dev/sluice/pkg/recipe"
)

// guard is the file as the row readers see it: it drops a UTF-8 byte-order mark at the file's
// start, refuses a NUL byte (a binary file, not text) and a row running past the limit
// (measured from mark, where the current row began), and turns the reader's offsets into the
// file's. For CSV it holds what was read since mark, so that the lines a row took can be
// counted when the reader has moved past it.
type guard struct {
	r      *bufio.Reader
	origin int64 // the file offset of the first byte read through the guard
	n      int64 // bytes read through the guard
	mark   int64
	held   []byte // CSV: bytes read since mark
	hold   bool
	limit  int64
	err    error
}

// csvSlack is how far encoding/csv reads ahead of the row it returns (its buffer).
const csvSlack = 64 << 10

// newGuard guards in, the file from offset on; limit 0 checks no row length (the JSONL reader
// checks its lines); hold keeps what was read for advance.
func newGuard(in io.Reader, offset int64, limit int, hold bool) *guard {
	br := bufio.NewReaderSize(in, 64<<10)
	g := &guard{r: br, origin: offset, limit: -1, hold: hold}
	if bom, _ := br.Peek(3); offset == 0 && bytes.Equal(bom, []byte("\xef\xbb\xbf")) {
		_, _ = br.Discard(3)
		g.origin = 3
	}
	if limit > 0 {
		g.limit = int64(limit) + csvSlack
	}
	return g
}

func (g *guard) Read(b []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	n, err := g.r.Read(b)
	if i := bytes.IndexByte(b[:n], 0); i >= 0 {
		g.err = failure.Permanent(failure.NotText, "a NUL byte at offset %d: not a text file", g.at(g.n+int64(i)))
		return 0, g.err
	}
	g.n += int64(n)
	if g.hold {
		g.held = append(g.held, b[:n]...)
	}
	if g.limit >= 0 && g.n-g.mark > g.limit {
		g.err = failure.Permanent(failure.RowTooLong, "the row at offset %d is longer than max_row_bytes %d", g.at(g.mark), g.limit-csvSlack)
		return 0, g.err
	}
	return n, err
}

// at is the file offset of the reader's offset off.
func (g *guard) at(off int64) int64 { return g.origin + off }

// advance moves mark to the reader's offset to (the end of the row just read) and tells how
// many lines the bytes before it took.
func (g *guard) advance(to int64) int64 {
	k := to - g.mark
	lines := int64(bytes.Count(g.held[:k], []byte{'\n'}))
	g.held = append(g.held[:0], g.held[k:]...)
	g.mark = to
	return lines
}

// fault returns the guard's error when err is it (the readers wrap or pass on what Read said).
func (g *guard) fault(err error) error {
	if g.err != nil && err != nil {
		return g.err
	}
	return err
}

// readCSV reads the header (at the file's start; a resumed run has it), checks it, then each
// record as an object of the header's names.
func (p *Plan) readCSV(g *guard, s *sink, at Position) error {
	r := csv.NewReader(g)
	if d := p.spec.Input.Delimiter; d != "" {
		r.Comma, _ = utf8.DecodeRuneInString(d)
	}
	r.LazyQuotes = p.spec.Input.LazyQuotes
	r.ReuseRecord = true
	header, lines := at.Header, at.Line
	if header == nil {
		rec, err := r.Read()
		if err != nil {
			return g.fault(headerFault(err))
		}
		header = p.text(slices.Clone(rec))
		if err := p.checkHeader(header); err != nil {
			return err
		}
		lines += g.advance(r.InputOffset())
	}
	r.FieldsPerRecord = len(header)
	base := at.Line // the lines before this reader's first
	for {
		start := r.InputOffset()
		rec, err := r.Read()
		if err == io.EOF {
			return nil
		}
		if err := p.csvRow(r, s, header, base, g.at(start), rec, g.fault(err)); err != nil {
			return err
		}
		end := r.InputOffset()
		lines += g.advance(end)
		if err := s.boundary(g.at(end), func() Position {
			return Position{Offset: g.at(end), Line: lines, Header: header, Sum: s.sum}
		}); err != nil {
			return err
		}
	}
}

// headerFault is the file-level fault of a header that could not be read.
func headerFault(err error) error {
	if errors.Is(err, io.EOF) {
		return failure.Permanent(failure.HeaderMismatch, "the file has no header row")
	}
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return failure.PermanentWrap(failure.HeaderMismatch, err, "the header row cannot be read")
	}
	return err
}

// checkHeader checks the header's names: valid text, none empty or repeated, and the recipe's
// columns in order when it names them.
func (p *Plan) checkHeader(header []string) error {
	seen := map[string]bool{}
	for _, h := range header {
		if !utf8.ValidString(h) {
			return p.encodingFault(1)
		}
		if h == "" || seen[h] {
			return failure.Permanent(failure.HeaderMismatch, "the header %q has an empty or repeated name", header)
		}
		seen[h] = true
	}
	if want := p.spec.Input.Columns; len(want) > 0 && !slices.Equal(header, want) {
		return failure.Permanent(failure.HeaderMismatch, "the header is %q; the recipe wants %q", header, want)
	}
	return nil
}

func (p *Plan) encodingFault(line int64) error {
	enc := p.spec.Input.Encoding
	if enc == "" {
		enc = recipe.EncodingUTF8
	}
	return failure.Permanent(failure.BadEncoding, "line %d is not %s text (another encoding? the recipe's input.encoding says which)", line, enc)
}

// latin1 is whether the file is Latin-1: its bytes are parsed as they are (every structural
// character, quote, delimiter, line break, is ASCII, the same in both) and each field or line
// is decoded to UTF-8 afterwards, so that offsets stay the file's.
func (p *Plan) latin1() bool { return p.spec.Input.Encoding == recipe.EncodingLatin1 }

// text decodes fields read from a Latin-1 file to UTF-8 (in place); UTF-8 fields are left.
func (p *Plan) text(fields []string) []string {
	if p.latin1() {
		for i, f := range fields {
			fields[i] = string(fromLatin1([]byte(f)))
		}
	}
	return fields
}

// fromLatin1 decodes Latin-1 (each byte is the code point of the same number).
func fromLatin1(b []byte) []byte {
	out := make([]byte, 0, len(b)+len(b)/8)
	for _, c := range b {
		out = utf8.AppendRune(out, rune(c))
	}
	return out
}

// csvRow judges one CSV record that Read returned with err; base is the lines before the
// reader's first.
func (p *Plan) csvRow(r *csv.Reader, s *sink, header []string, base, start int64, rec []string, err error) error {
	var pe *csv.ParseError
	switch {
	case errors.As(err, &pe) && errors.Is(pe.Err, csv.ErrFieldCount):
		line, _ := r.FieldPos(0)
		return s.unreadable(base+int64(line), start, fmt.Sprintf("has %d fields; the header has %d", len(rec), len(header)))
	case errors.As(err, &pe):
		return s.unreadable(base+int64(pe.StartLine), start, pe.Err.Error())
	case err != nil:
		return err
	}
	line, _ := r.FieldPos(0)
	obj, encoded, ok := p.object(header, p.text(rec), &s.json)
	if !ok {
		return p.encodingFault(base + int64(line))
	}
	return s.row(base+int64(line), start, obj, encoded)
}

// object makes a CSV record an object: an empty cell is an absent field; a cell whose property
// the schema types as a number, integer or boolean becomes one when it reads as one (else it
// stays a string, and the schema says why it is wrong). encoded is its JSON, in header order,
// written by w (valid until its next use). ok is false when a cell is not valid UTF-8.
func (p *Plan) object(header, rec []string, w *jsonWriter) (obj map[string]any, encoded []byte, ok bool) {
	obj = make(map[string]any, len(header))
	b := w.start()
	b.WriteByte('{')
	for i, cell := range rec {
		if !utf8.ValidString(cell) {
			return nil, nil, false
		}
		if cell == "" {
			continue
		}
		v := coerce(cell, p.types[header[i]])
		obj[header[i]] = v
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		w.value(header[i])
		b.WriteByte(':')
		w.value(v)
	}
	b.WriteByte('}')
	return obj, b.Bytes(), true
}

// coerce reads a cell as the first of the JSON types its property allows that it can be.
func coerce(cell string, types []string) any {
	for _, t := range types {
		switch t {
		case "integer", "number":
			if json.Valid([]byte(cell)) && (cell[0] == '-' || cell[0] >= '0' && cell[0] <= '9') {
				return json.Number(cell)
			}
		case "boolean":
			if b, ok := map[string]bool{"true": true, "false": false}[strings.ToLower(cell)]; ok {
				return b
			}
		}
	}
	return cell
}

// jsonWriter writes JSON values into a buffer it reuses, without escaping <, > and & (the
// output is data, not HTML).
type jsonWriter struct {
	buf bytes.Buffer
	enc *json.Encoder
}

// start empties the buffer for a new document and returns it.
func (w *jsonWriter) start() *bytes.Buffer {
	if w.enc == nil {
		w.enc = json.NewEncoder(&w.buf)
		w.enc.SetEscapeHTML(false)
	}
	w.buf.Reset()
	return &w.buf
}

// value appends v's JSON.
func (w *jsonWriter) value(v any) {
	switch x := v.(type) {
	case json.Number:
		w.buf.WriteString(string(x))
	case bool:
		w.buf.WriteString(strconv.FormatBool(x))
	default:
		_ = w.enc.Encode(v)             // a string always encodes
		w.buf.Truncate(w.buf.Len() - 1) // Encode's newline
	}
}

// readJSONL reads one JSON value per line; blank lines are not rows.
func (p *Plan) readJSONL(g *guard, s *sink, at Position) error {
	br := bufio.NewReaderSize(g, 64<<10)
	line, offset := at.Line, g.origin
	var compact bytes.Buffer
	var raw []byte
	for {
		var err error
		raw, err = readLine(br, raw[:0], p.maxRow())
		if err == io.EOF && len(raw) == 0 {
			return nil
		}
		if err != nil && err != io.EOF {
			return g.fault(lineFault(err, offset))
		}
		line++
		start := offset
		offset += int64(len(raw))
		if err := p.jsonlRow(s, line, start, raw, &compact); err != nil {
			return err
		}
		if err := s.boundary(offset, func() Position { return Position{Offset: offset, Line: line, Sum: s.sum} }); err != nil {
			return err
		}
	}
}

// jsonlRow judges one line.
func (p *Plan) jsonlRow(s *sink, line, start int64, raw []byte, compact *bytes.Buffer) error {
	text := bytes.TrimRight(raw, "\r\n")
	if p.latin1() {
		text = fromLatin1(text)
	}
	if len(bytes.TrimSpace(text)) == 0 {
		return nil
	}
	if !utf8.Valid(text) {
		return p.encodingFault(line)
	}
	compact.Reset()
	if err := json.Compact(compact, text); err != nil {
		return s.unreadable(line, start, "not JSON: "+err.Error())
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(text))
	if err != nil {
		return err // json.Compact accepted it
	}
	return s.row(line, start, v, compact.Bytes())
}

// errLineTooLong: a line longer than the limit.
var errLineTooLong = errors.New("line too long")

// readLine appends to out one line with its newline (without one at the end of the input),
// refusing a line longer than limit.
func readLine(br *bufio.Reader, out []byte, limit int) ([]byte, error) {
	for {
		frag, err := br.ReadSlice('\n')
		out = append(out, frag...)
		if len(out) > limit+2 { // the limit, and a CRLF
			return nil, errLineTooLong
		}
		if err != bufio.ErrBufferFull {
			return out, err
		}
	}
}

// lineFault is the file-level fault of a line that could not be read.
func lineFault(err error, offset int64) error {
	if errors.Is(err, errLineTooLong) {
		return failure.Permanent(failure.RowTooLong, "the line at offset %d is longer than the recipe's max_row_bytes", offset)
	}
	return err
}
