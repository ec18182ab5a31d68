package recipe

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Records is the records kind's recipe: how the input is read, the JSON Schema each row must
// satisfy, what is written, and how many bad rows a file may have before it is quarantined
// as a whole.
type Records struct {
	Input RecordsInput `json:"input"`
	// Schema is a JSON Schema (draft 2020-12 unless it says otherwise) that each row, as a JSON
	// object, must satisfy. It may not refer to other documents.
	Schema json.RawMessage `json:"schema"`
	Output RecordsOutput   `json:"output"`
	// MaxBadRows is the fraction of rows (0 to 1) that may be invalid: above it the file is
	// quarantined (too_many_bad_rows) with the counts; at or below it the valid rows are
	// published and the invalid ones listed in the rejected-rows file.
	MaxBadRows float64 `json:"max_bad_rows"`
	// CheckpointBytes is how much input a checkpoint covers (0: DefaultCheckpointBytes): after
	// the row that crosses it, a gzipped output ends one gzip member and starts the next, and the
	// processor records where it stands, so a stopped attempt resumes there. Member boundaries
	// are part of the output's bytes, so this is part of the recipe.
	CheckpointBytes int64 `json:"checkpoint_bytes,omitempty"`
}

// RecordsInput says how a records file is read.
type RecordsInput struct {
	Format string `json:"format"` // InputCSV or InputJSONL
	// CSV: the field delimiter (one character, "," when empty), lenient quotes (a quote inside
	// an unquoted field), and the header the file must start with (any header when empty).
	Delimiter  string   `json:"delimiter,omitempty"`
	LazyQuotes bool     `json:"lazy_quotes,omitempty"`
	Columns    []string `json:"columns,omitempty"`
	// Encoding of the text: EncodingUTF8 (the default, also when empty) or EncodingLatin1.
	Encoding string `json:"encoding,omitempty"`
	// MaxRowBytes bounds one row (0: DefaultMaxRowBytes); a longer row is a file-level fault.
	MaxRowBytes int `json:"max_row_bytes,omitempty"`
}

// RecordsOutput says what the valid rows become.
type RecordsOutput struct {
	Format string `json:"format"`         // OutputJSONL or OutputParquet
	Gzip   bool   `json:"gzip,omitempty"` // JSONL only (Parquet pages are Snappy-compressed)
}

// Records formats and encodings.
const (
	InputCSV       = "csv"
	InputJSONL     = "jsonl"
	OutputJSONL    = "jsonl"
	OutputParquet  = "parquet"
	EncodingUTF8   = "utf-8"
	EncodingLatin1 = "latin-1"
)

// DefaultMaxRowBytes bounds a row unless the recipe says otherwise.
const DefaultMaxRowBytes = 1 << 20

// DefaultCheckpointBytes is how much input a checkpoint covers unless the recipe says otherwise.
const DefaultCheckpointBytes = 64 << 20

// ParseRecords reads a records recipe; unknown fields are errors, and the schema is kept in its
// compact form (its spacing makes no new version).
func ParseRecords(data []byte) (Records, error) {
	var r Records
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Records{}, err
	}
	if len(r.Schema) > 0 {
		var buf bytes.Buffer
		if err := json.Compact(&buf, r.Schema); err != nil {
			return Records{}, fmt.Errorf("schema: %w", err)
		}
		r.Schema = buf.Bytes()
	}
	if r.Input.Encoding == EncodingUTF8 {
		r.Input.Encoding = "" // the default: one behaviour, one version
	}
	return r, r.Validate()
}

// Validate reports every problem, each naming its field. (The schema itself is compiled, and
// judged, by pkg/records.)
func (r Records) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{field}, args...)...))
	}
	in := r.Input
	switch in.Format {
	case InputCSV:
		if in.Delimiter != "" && (utf8.RuneCountInString(in.Delimiter) != 1 || in.Delimiter == `"` || in.Delimiter == "\n" || in.Delimiter == "\r") {
			bad("input.delimiter", "%q: want one character other than a quote or a line break", in.Delimiter)
		}
		seen := map[string]bool{}
		for i, c := range in.Columns {
			if c == "" || seen[c] {
				bad(fmt.Sprintf("input.columns[%d]", i), "%q: want a name, once", c)
			}
			seen[c] = true
		}
	case InputJSONL:
		if in.Delimiter != "" || in.LazyQuotes || len(in.Columns) > 0 {
			bad("input", "delimiter, lazy_quotes and columns are for csv")
		}
	default:
		bad("input.format", "%q: want csv or jsonl", in.Format)
	}
	if in.Encoding != "" && in.Encoding != EncodingLatin1 {
		bad("input.encoding", "%q: want utf-8 or latin-1", in.Encoding)
	}
	if in.MaxRowBytes < 0 || in.MaxRowBytes > 64<<20 {
		bad("input.max_row_bytes", "%d: want 0 (1 MiB) to 64 MiB", in.MaxRowBytes)
	}
	if len(r.Schema) == 0 {
		bad("schema", "want a JSON Schema for the rows")
	}
	switch {
	case r.Output.Format != OutputJSONL && r.Output.Format != OutputParquet:
		bad("output.format", "%q: want jsonl or parquet", r.Output.Format)
	case r.Output.Format == OutputParquet && r.Output.Gzip:
		bad("output.gzip", "for jsonl: Parquet compresses its own pages")
	}
	if r.CheckpointBytes != 0 && (r.CheckpointBytes < 4096 || r.CheckpointBytes > 1<<40) {
		bad("checkpoint_bytes", "%d: want 0 (64 MiB) or 4096 to 1 TiB", r.CheckpointBytes)
	}
	if r.MaxBadRows < 0 || r.MaxBadRows > 1 {
		bad("max_bad_rows", "%g: want a fraction from 0 to 1", r.MaxBadRows)
	}
	return errors.Join(errs...)
}
