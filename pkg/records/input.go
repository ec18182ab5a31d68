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
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/encoding/charmap"

	"github.com/sluice-dev/sluice/pkg/failure"
	"github.com/sluice-dev/sluice/pkg/recipe"
)

// guard is the input as the row readers see it (decoded to UTF-8, its byte-order mark
// dropped): it counts the bytes read, refuses a NUL byte (a binary file, not text) and a row
// running past the limit, measured from mark, where the reader says the current row began.
type guard struct {
	r     io.Reader
	n     int64 // bytes read
	mark  int64
	limit int64
	err   error
}

// csvSlack is how far encoding/csv reads ahead of the row it returns (its buffer).
const csvSlack = 64 << 10

// newGuard guards in; limit 0 checks no row length (the JSONL reader checks its lines).
func newGuard(in io.Reader, limit int, latin1 bool) *guard {
	if latin1 {
		in = charmap.ISO8859_1.NewDecoder().Reader(in)
	}
	br := bufio.NewReaderSize(in, 64<<10)
	if bom, _ := br.Peek(3); bytes.Equal(bom, []byte("\xef\xbb\xbf")) {
		_, _ = br.Discard(3)
	}
	g := &guard{r: br, limit: -1}
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
		g.err = failure.Permanent(failure.NotText, "a NUL byte at offset %d: not a text file", g.n+int64(i))
		return 0, g.err
	}
	g.n += int64(n)
	if g.limit >= 0 && g.n-g.mark > g.limit {
		g.err = failure.Permanent(failure.RowTooLong, "the row starting at offset %d is longer than max_row_bytes %d", g.mark, g.limit-csvSlack)
		return 0, g.err
	}
	return n, err
}

// fault returns the guard's error when err is it (the readers wrap or pass on what Read said).
func (g *guard) fault(err error) error {
	if g.err != nil && err != nil {
		return g.err
	}
	return err
}

// readCSV reads the header, checks it, then each record as an object of the header's names.
func (p *Plan) readCSV(g *guard, s *sink) error {
	r := csv.NewReader(g)
	if d := p.spec.Input.Delimiter; d != "" {
		r.Comma, _ = utf8.DecodeRuneInString(d)
	}
	r.LazyQuotes = p.spec.Input.LazyQuotes
	r.ReuseRecord = true
	header, err := r.Read()
	if err != nil {
		return g.fault(headerFault(err))
	}
	header = slices.Clone(header)
	if err := p.checkHeader(header); err != nil {
		return err
	}
	for {
		start := r.InputOffset()
		g.mark = start
		rec, err := r.Read()
		if err == io.EOF {
			return nil
		}
		if err := p.csvRow(r, s, header, start, rec, g.fault(err)); err != nil {
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
	enc := cmpOr(p.spec.Input.Encoding, recipe.EncodingUTF8)
	return failure.Permanent(failure.BadEncoding, "line %d is not %s text (another encoding? the recipe's input.encoding says which)", line, enc)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// csvRow judges one CSV record that Read returned with err.
func (p *Plan) csvRow(r *csv.Reader, s *sink, header []string, start int64, rec []string, err error) error {
	var pe *csv.ParseError
	switch {
	case errors.As(err, &pe) && errors.Is(pe.Err, csv.ErrFieldCount):
		line, _ := r.FieldPos(0)
		return s.unreadable(int64(line), start, fmt.Sprintf("has %d fields; the header has %d", len(rec), len(header)))
	case errors.As(err, &pe):
		return s.unreadable(int64(pe.StartLine), start, pe.Err.Error())
	case err != nil:
		return err
	}
	line, _ := r.FieldPos(0)
	obj, encoded, ok := p.object(header, rec)
	if !ok {
		return p.encodingFault(int64(line))
	}
	return s.row(int64(line), start, obj, encoded)
}

// object makes a CSV record an object: an empty cell is an absent field; a cell whose property
// the schema types as a number, integer or boolean becomes one when it reads as one (else it
// stays a string, and the schema says why it is wrong). encoded is its JSON, in header order.
// ok is false when a cell is not valid UTF-8.
func (p *Plan) object(header, rec []string) (obj map[string]any, encoded []byte, ok bool) {
	obj = make(map[string]any, len(header))
	var b bytes.Buffer
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
		writeJSON(&b, header[i])
		b.WriteByte(':')
		writeJSON(&b, v)
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

// writeJSON writes v's JSON without escaping <, > and & (the output is data, not HTML).
func writeJSON(b *bytes.Buffer, v any) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)       // strings, numbers and booleans always encode
	b.Truncate(b.Len() - 1) // Encode's newline
}

// readJSONL reads one JSON value per line; blank lines are not rows.
func (p *Plan) readJSONL(g *guard, s *sink) error {
	br := bufio.NewReaderSize(g, 64<<10)
	var line, offset int64
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
		text := bytes.TrimRight(raw, "\r\n")
		if len(bytes.TrimSpace(text)) == 0 {
			continue
		}
		if !utf8.Valid(text) {
			return p.encodingFault(line)
		}
		compact.Reset()
		if err := json.Compact(&compact, text); err != nil {
			if err := s.unreadable(line, start, "not JSON: "+err.Error()); err != nil {
				return err
			}
			continue
		}
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(text))
		if err != nil {
			return err // json.Compact accepted it
		}
		if err := s.row(line, start, v, compact.Bytes()); err != nil {
			return err
		}
	}
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
