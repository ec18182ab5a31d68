package records

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/parquet-go/parquet-go"

	"github.com/sluice-dev/sluice/pkg/recipe"
)

// rowsOut is where the valid rows go: each as its decoded value and its compact JSON.
type rowsOut interface {
	write(v any, encoded []byte) error
	checkpoint() error // the rows so far are out; a resumed run goes on from here
	close() error
}

// jsonlOut writes rows as JSONL, gzipped in members that end at checkpoints when gz is set.
type jsonlOut struct {
	raw, out io.Writer
	gz       *gzip.Writer
	buf      bytes.Buffer
}

func newJSONL(w io.Writer, gzipped bool) *jsonlOut {
	o := &jsonlOut{raw: w, out: w}
	if gzipped {
		o.gz = gzip.NewWriter(w) // no name, no time: the same rows make the same bytes
		o.out = o.gz
	}
	return o
}

func (o *jsonlOut) write(_ any, encoded []byte) error {
	o.buf.Reset()
	o.buf.Write(encoded)
	o.buf.WriteByte('\n')
	_, err := o.out.Write(o.buf.Bytes())
	return err
}

func (o *jsonlOut) checkpoint() error {
	if o.gz == nil {
		return nil
	}
	if err := o.gz.Close(); err != nil {
		return err
	}
	o.gz.Reset(o.raw)
	return nil
}

func (o *jsonlOut) close() error {
	if o.gz == nil {
		return nil
	}
	return o.gz.Close()
}

// parquetOut writes rows as one Parquet file (github.com/parquet-go/parquet-go): a column per
// property the schema declares (sorted by name), typed by the one JSON type it declares
// (integer INT64, number DOUBLE, boolean BOOLEAN, string UTF-8), JSON text for anything else
// (objects, arrays, several types); optional unless required. Properties the schema does not
// declare are not kept. Snappy pages, row groups of parquetRowGroup rows, no timestamps: the same
// rows make the same bytes. A Parquet file ends with its row groups' index, so a run cannot stop
// half-way and resume: there are no checkpoints.
type parquetOut struct {
	w    *parquet.GenericWriter[any]
	cols []parquetColumn
	row  parquet.Row
}

type parquetColumn struct {
	name     string
	kind     string // "integer", "number", "boolean", "string", or "" for JSON text
	optional bool
}

// parquetRowGroup bounds the rows a row group holds in memory before it is written.
const parquetRowGroup = 64 << 10

// parquetColumns reads the columns from the schema document: its top-level properties.
func parquetColumns(doc any) ([]parquetColumn, error) {
	root, _ := doc.(map[string]any)
	props, _ := root["properties"].(map[string]any)
	if root["type"] != "object" || len(props) == 0 {
		return nil, errors.New(`schema: Parquet output needs "type": "object" and the rows' "properties"`)
	}
	required := map[string]bool{}
	if list, ok := root["required"].([]any); ok {
		for _, r := range list {
			if name, ok := r.(string); ok {
				required[name] = true
			}
		}
	}
	var cols []parquetColumn
	for name, p := range props {
		types := declaredTypes(p)
		col := parquetColumn{name: name, optional: !required[name] || slices.Contains(types, "null")}
		if types = slices.DeleteFunc(types, func(t string) bool { return t == "null" }); len(types) == 1 && types[0] != "object" && types[0] != "array" {
			col.kind = types[0]
		}
		cols = append(cols, col)
	}
	slices.SortFunc(cols, func(a, b parquetColumn) int { return cmpString(a.name, b.name) })
	return cols, nil
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// declaredTypes are the JSON types a property's schema declares.
func declaredTypes(p any) []string {
	switch t := p.(map[string]any)["type"].(type) {
	case string:
		return []string{t}
	case []any:
		var out []string
		for _, v := range t {
			if s, ok := v.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func newParquet(w io.Writer, cols []parquetColumn) *parquetOut {
	group := parquet.Group{}
	for _, c := range cols {
		var node parquet.Node
		switch c.kind {
		case "integer":
			node = parquet.Leaf(parquet.Int64Type)
		case "number":
			node = parquet.Leaf(parquet.DoubleType)
		case "boolean":
			node = parquet.Leaf(parquet.BooleanType)
		case "string":
			node = parquet.String()
		default:
			node = parquet.JSON()
		}
		if c.optional {
			node = parquet.Optional(node)
		} else {
			node = parquet.Required(node)
		}
		group[c.name] = node
	}
	schema := parquet.NewSchema("row", group)
	return &parquetOut{cols: cols, w: parquet.NewGenericWriter[any](w, schema,
		parquet.Compression(&parquet.Snappy), parquet.MaxRowsPerRowGroup(parquetRowGroup), parquet.CreatedBy("sluice", "", ""))}
}

func (o *parquetOut) write(v any, _ []byte) error {
	obj, _ := v.(map[string]any)
	o.row = o.row[:0]
	for i, c := range o.cols {
		x, present := obj[c.name]
		if !present || x == nil {
			if !c.optional {
				return fmt.Errorf("row without its required %q", c.name)
			}
			o.row = append(o.row, parquet.NullValue().Level(0, 0, i))
			continue
		}
		val, err := c.value(x)
		if err != nil {
			return &unfitError{path: pointer([]string{c.name}), reason: err.Error()}
		}
		def := 0
		if c.optional {
			def = 1
		}
		o.row = append(o.row, val.Level(0, def, i))
	}
	_, err := o.w.WriteRows([]parquet.Row{o.row})
	return err
}

// value is x (as the schema validated it) as the column's type.
func (c parquetColumn) value(x any) (parquet.Value, error) {
	switch c.kind {
	case "integer":
		n, _ := x.(json.Number)
		if i, err := n.Int64(); err == nil {
			return parquet.Int64Value(i), nil
		}
		f, err := n.Float64() // an integer written as 1e3, or one past int64
		if err != nil || f != float64(int64(f)) {
			return parquet.Value{}, fmt.Errorf("%v does not fit the column's 64-bit integer", x)
		}
		return parquet.Int64Value(int64(f)), nil
	case "number":
		n, _ := x.(json.Number)
		f, err := n.Float64()
		if err != nil {
			return parquet.Value{}, fmt.Errorf("%v does not fit the column's double", x)
		}
		return parquet.DoubleValue(f), nil
	case "boolean":
		b, _ := x.(bool)
		return parquet.BooleanValue(b), nil
	case "string":
		s, _ := x.(string)
		return parquet.ByteArrayValue([]byte(s)), nil
	}
	b, err := json.Marshal(x)
	return parquet.ByteArrayValue(b), err
}

func (o *parquetOut) checkpoint() error { return errNoCheckpoints }

func (o *parquetOut) close() error { return o.w.Close() }

// unfitError is a valid row that the output cannot hold (a number past the Parquet column's
// type): it is rejected with this reason.
type unfitError struct{ path, reason string }

func (e *unfitError) Error() string { return e.path + ": " + e.reason }

// errNoCheckpoints: the output cannot stop half-way (Parquet).
var errNoCheckpoints = errors.New("no checkpoints")

// newRowsOut is the output the recipe asks for.
func (p *Plan) newRowsOut(w io.Writer) rowsOut {
	if p.spec.Output.Format == recipe.OutputParquet {
		return newParquet(w, p.columns)
	}
	return newJSONL(w, p.spec.Output.Gzip)
}
