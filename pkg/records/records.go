// Package records is the records kind: a CSV (with a header row) or JSONL file read as a
// stream, each row validated against the recipe's JSON Schema (github.com/santhosh-tekuri/
// jsonschema), the valid rows written as JSONL (optionally gzipped), the invalid ones listed
// with their line, byte offset, field path and reason. Memory is bounded by the longest row,
// whatever the file's size. Faults of the file as a whole (not text, another encoding, a wrong
// header, a row over the limit, more bad rows than the recipe allows) are permanent errors
// (pkg/failure) naming what is wrong; a bad row is not one.
//
// The output is a function of the input bytes and the recipe alone: keys in the header's (or
// the line's) order, numbers as written, gzip without a timestamp.
package records

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/sluice-dev/sluice/pkg/failure"
	"github.com/sluice-dev/sluice/pkg/recipe"
	"github.com/sluice-dev/sluice/pkg/workgroup"
)

// Plan is a compiled records recipe.
type Plan struct {
	spec    recipe.Records
	schema  *jsonschema.Schema
	types   map[string][]string // top-level property → the JSON types its schema allows (CSV coercion)
	columns []parquetColumn     // Parquet output's
	// validators is how many goroutines validate rows (0: one per CPU, GOMAXPROCS); the output
	// does not depend on it. Benchmarks set it.
	validators int
}

// Compile compiles the recipe's schema. A schema may not load other documents: a $ref to a
// file or URL is an error, never a read.
func Compile(spec recipe.Records) (*Plan, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(spec.Schema))
	if err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.UseLoader(jsonschema.SchemeURLLoader{})
	const url = "recipe:///schema.json"
	if err := c.AddResource(url, doc); err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	sch, err := c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	p := &Plan{spec: spec, schema: sch, types: propertyTypes(doc)}
	if spec.Output.Format == recipe.OutputParquet {
		if p.columns, err = parquetColumns(doc); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Checkpoints reports whether a run can stop at a checkpoint and resume (not a Parquet one).
func (p *Plan) Checkpoints() bool { return p.spec.Output.Format != recipe.OutputParquet }

// propertyTypes reads the JSON types the schema's top-level properties declare.
func propertyTypes(doc any) map[string][]string {
	out := map[string][]string{}
	root, _ := doc.(map[string]any)
	props, _ := root["properties"].(map[string]any)
	for name, p := range props {
		switch t := p.(map[string]any)["type"].(type) {
		case string:
			out[name] = []string{t}
		case []any:
			for _, v := range t {
				if s, ok := v.(string); ok {
					out[name] = append(out[name], s)
				}
			}
		}
	}
	return out
}

// Summary counts a file's rows: RowsIn = Valid + Invalid.
type Summary struct {
	RowsIn  int64 `json:"rows_in"`
	Valid   int64 `json:"valid"`
	Invalid int64 `json:"invalid"`
}

// Rejected is one line of the rejected-rows file: where the bad row is (its first line, from 1,
// and the byte offset of its start in the file) and why (the field's JSON pointer, "" for the
// row as a whole, and the reason).
type Rejected struct {
	Line   int64  `json:"line"`
	Offset int64  `json:"offset"`
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// Position is where a run stands in its input, at a row boundary: all that resuming there
// needs besides the outputs written so far.
type Position struct {
	Offset int64    `json:"offset"`           // bytes of the file consumed: the next row starts here
	Line   int64    `json:"line"`             // lines consumed
	Header []string `json:"header,omitempty"` // a CSV file's header, read at its start
	Sum    Summary  `json:"summary"`          // the rows judged so far
}

// Checkpoint receives each checkpoint's position, once every row before it has been written
// (and a gzipped output's member ended); an error stops the run and is returned.
type Checkpoint func(Position) error

// Run reads in from its start and writes each valid row to out (gzipped if the recipe says so)
// and each invalid one to rejected, as JSONL. It returns the counts, or a permanent error for a
// fault of the file as a whole; a write error comes back as it is.
func (p *Plan) Run(in io.Reader, out, rejected io.Writer) (Summary, error) {
	return p.Resume(in, Position{}, out, rejected, nil)
}

// Resume is Run from position at, in being the file from at.Offset on; cp, if set, is called at
// every checkpoint. The outputs continue exactly as one run would have written them: a run
// stopped at a checkpoint and resumed there, any number of times, writes the same bytes.
func (p *Plan) Resume(in io.Reader, at Position, out, rejected io.Writer, cp Checkpoint) (Summary, error) {
	if at.Offset > 0 && !p.Checkpoints() {
		return at.Sum, errNoCheckpoints
	}
	s := &sink{plan: p, out: p.newRowsOut(out), rejected: rejected, sum: at.Sum, last: at.Offset, cp: cp}
	s.start()
	defer s.stop()
	var err error
	if p.spec.Input.Format == recipe.InputCSV {
		err = p.readCSV(newGuard(in, at.Offset, p.maxRow(), true), s, at)
	} else {
		err = p.readJSONL(newGuard(in, at.Offset, 0, false), s, at)
	}
	if err == nil {
		err = s.flush()
	}
	if err == nil {
		err = s.out.close()
	}
	if err != nil {
		return s.sum, err
	}
	return s.sum, p.gate(s.sum)
}

func (p *Plan) maxRow() int {
	if p.spec.Input.MaxRowBytes > 0 {
		return p.spec.Input.MaxRowBytes
	}
	return recipe.DefaultMaxRowBytes
}

func (p *Plan) every() int64 {
	if p.spec.CheckpointBytes > 0 {
		return p.spec.CheckpointBytes
	}
	return recipe.DefaultCheckpointBytes
}

// gate checks the counts: every row read was written to one side, and no more were invalid
// than the recipe allows.
func (p *Plan) gate(s Summary) error {
	if s.RowsIn != s.Valid+s.Invalid {
		return fmt.Errorf("rows in %d != valid %d + invalid %d", s.RowsIn, s.Valid, s.Invalid)
	}
	if s.Invalid > 0 && float64(s.Invalid) > p.spec.MaxBadRows*float64(s.RowsIn) {
		return failure.Permanent(failure.TooManyBadRows, "%d of %d rows are invalid (%.2f%%), more than max_bad_rows %g allows",
			s.Invalid, s.RowsIn, 100*float64(s.Invalid)/float64(s.RowsIn), p.spec.MaxBadRows)
	}
	return nil
}

// sink receives the rows as the readers read them: it validates them on every CPU (a batch at
// a time, by validators) and writes them in order. Before a checkpoint, and at the end, every
// row before it is written: where checkpoints fall, and what is written, do not depend on the
// number of CPUs.
type sink struct {
	plan     *Plan
	out      rowsOut
	rejected io.Writer
	sum      Summary
	json     jsonWriter // a CSV row's JSON
	last     int64      // the offset of the last checkpoint
	cp       Checkpoint
	batch    *batch   // being filled
	queue    []*batch // handed to the validators, in order
	todo     chan *batch
}

// A batch is rows read in order, validated together.
type batch struct {
	rows  []item
	bytes int
	done  chan struct{}
	panic *workgroup.Panic // the validator's, raised again by the writer
}

// item is one row: as read, then as judged.
type item struct {
	line, offset int64
	v            any
	encoded      []byte
	path, reason string // why it is invalid ("" when valid); set by the reader for an unreadable row
	invalid      bool
}

// Batches close at batchRows rows or batchBytes of JSON; at most two per validator are in flight,
// which bounds what is held whatever the rows' sizes.
const (
	batchRows  = 256
	batchBytes = 256 << 10
)

// start starts the validators; stop ends them.
func (s *sink) start() {
	n := s.plan.validators
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	s.todo = make(chan *batch, n)
	for range n {
		go s.validate()
	}
}

func (s *sink) stop() { close(s.todo) }

// validate judges the rows of each batch it is given against the schema.
func (s *sink) validate() {
	p := message.NewPrinter(language.English) // a Printer is not safe for concurrent use
	for b := range s.todo {
		b.panic = workgroup.Catch(func() {
			for i := range b.rows {
				it := &b.rows[i]
				if it.invalid {
					continue
				}
				if err := s.plan.schema.Validate(it.v); err != nil {
					it.invalid = true
					it.path, it.reason = explain(err, p)
				}
			}
		})
		close(b.done)
	}
}

// row takes one decoded row (its value, and its JSON form, which it copies).
func (s *sink) row(line, offset int64, v any, encoded []byte) error {
	return s.add(item{line: line, offset: offset, v: v, encoded: append([]byte(nil), encoded...)})
}

// unreadable takes a row that could not be read as a row (a CSV quoting error, a JSONL line
// that is not JSON): it is rejected.
func (s *sink) unreadable(line, offset int64, reason string) error {
	return s.add(item{line: line, offset: offset, reason: reason, invalid: true})
}

// add puts a row in the batch being filled, handing it over when full.
func (s *sink) add(it item) error {
	if s.batch == nil {
		s.batch = &batch{done: make(chan struct{})}
	}
	s.batch.rows = append(s.batch.rows, it)
	s.batch.bytes += len(it.encoded)
	if len(s.batch.rows) < batchRows && s.batch.bytes < batchBytes {
		return nil
	}
	return s.handOver()
}

// handOver gives the batch being filled to the validators, first writing the oldest handed
// over while too many are in flight.
func (s *sink) handOver() error {
	if s.batch == nil {
		return nil
	}
	b := s.batch
	s.batch = nil
	for len(s.queue) >= 2*cap(s.todo) {
		if err := s.writeOldest(); err != nil {
			return err
		}
	}
	s.queue = append(s.queue, b)
	s.todo <- b
	return nil
}

// flush writes every row taken so far, in order.
func (s *sink) flush() error {
	if err := s.handOver(); err != nil {
		return err
	}
	for len(s.queue) > 0 {
		if err := s.writeOldest(); err != nil {
			return err
		}
	}
	return nil
}

// writeOldest waits for the oldest batch's validation and writes its rows to their sides.
func (s *sink) writeOldest() error {
	b := s.queue[0]
	s.queue = s.queue[1:]
	<-b.done
	if b.panic != nil {
		panic(b.panic)
	}
	for _, it := range b.rows {
		if err := s.write(it); err != nil {
			return err
		}
	}
	return nil
}

// write counts one judged row and writes it to its side.
func (s *sink) write(it item) error {
	s.sum.RowsIn++
	if it.invalid {
		return s.reject(it.line, it.offset, it.path, it.reason)
	}
	if err := s.out.write(it.v, it.encoded); err != nil {
		var uf *unfitError
		if errors.As(err, &uf) {
			return s.reject(it.line, it.offset, uf.path, uf.reason)
		}
		return err
	}
	s.sum.Valid++
	return nil
}

// boundary is called after each row with the position after it: past a checkpoint's worth of
// input since the last one, every row before it is written, a gzipped output ends its member
// and the checkpoint is taken. Where they fall is a function of the input alone, so a resumed
// run meets the same ones.
func (s *sink) boundary(offset int64, at func() Position) error {
	if offset-s.last < s.plan.every() {
		return nil
	}
	s.last = offset
	if err := s.flush(); err != nil {
		return err
	}
	switch err := s.out.checkpoint(); {
	case errors.Is(err, errNoCheckpoints):
		return nil
	case err != nil:
		return err
	case s.cp == nil:
		return nil
	}
	return s.cp(at())
}

// reject writes one invalid row's entry.
func (s *sink) reject(line, offset int64, path, reason string) error {
	s.sum.Invalid++
	b, err := json.Marshal(Rejected{Line: line, Offset: offset, Path: path, Reason: reason})
	if err != nil {
		return err
	}
	_, err = s.rejected.Write(append(b, '\n'))
	return err
}

// explain turns a validation error into the first failing field's JSON pointer and reason (the
// leaves in pointer order, so the choice is stable), noting how many more there are; p renders
// the validator's messages.
func explain(err error, p *message.Printer) (path, reason string) {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return "", err.Error()
	}
	var leaves []*jsonschema.ValidationError
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			leaves = append(leaves, e)
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	slices.SortStableFunc(leaves, func(a, b *jsonschema.ValidationError) int {
		return strings.Compare(pointer(a.InstanceLocation), pointer(b.InstanceLocation))
	})
	first := leaves[0]
	reason = first.ErrorKind.LocalizedString(p)
	if n := len(leaves) - 1; n > 0 {
		reason += fmt.Sprintf(" (and %d more)", n)
	}
	return pointer(first.InstanceLocation), reason
}

// pointer is a JSON pointer (RFC 6901) to the instance location.
func pointer(loc []string) string {
	var b strings.Builder
	for _, s := range loc {
		b.WriteByte('/')
		b.WriteString(pointerEscape.Replace(s))
	}
	return b.String()
}

var pointerEscape = strings.NewReplacer("~", "~0", "/", "~1")
