package records

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/sluice-dev/sluice/pkg/failure"
	"github.com/sluice-dev/sluice/pkg/recipe"
)

const orderSchema = `{"type":"object","required":["id","amount"],"properties":{
	"id":{"type":"integer","minimum":1},"amount":{"type":"number"},"note":{"type":"string","maxLength":10},
	"paid":{"type":"boolean"}},"additionalProperties":false}`

func plan(t testing.TB, mutate func(*recipe.Records)) *Plan {
	t.Helper()
	spec := recipe.Records{
		Input:      recipe.RecordsInput{Format: recipe.InputCSV},
		Schema:     json.RawMessage(orderSchema),
		Output:     recipe.RecordsOutput{Format: recipe.OutputJSONL},
		MaxBadRows: 0.5,
	}
	if mutate != nil {
		mutate(&spec)
	}
	if err := spec.Validate(); err != nil {
		t.Fatal(err)
	}
	p, err := Compile(spec)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func run(t testing.TB, p *Plan, in string) (Summary, string, []Rejected, error) {
	t.Helper()
	var out, rej bytes.Buffer
	sum, err := p.Run(strings.NewReader(in), &out, &rej)
	var rows []Rejected
	dec := json.NewDecoder(&rej)
	for dec.More() {
		var r Rejected
		if err := dec.Decode(&r); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, r)
	}
	return sum, out.String(), rows, err
}

func TestCSVKeepsGoodRowsAndListsBadOnes(t *testing.T) {
	in := "id,amount,note,paid\n" +
		"1,9.50,first,true\n" +
		"2,abc,,false\n" + // amount not a number
		"3,1e3,\"a,\nb\",\n" + // a quoted field over two lines
		"0,1,,\n" + // id below its minimum
		"5,2\n" + // too few fields
		"6,7,<&>,FALSE\n"
	sum, out, rej, err := run(t, plan(t, nil), in)
	if err != nil {
		t.Fatal(err)
	}
	if sum != (Summary{RowsIn: 6, Valid: 3, Invalid: 3}) {
		t.Fatalf("summary %+v", sum)
	}
	want := `{"id":1,"amount":9.50,"note":"first","paid":true}
{"id":3,"amount":1e3,"note":"a,\nb"}
{"id":6,"amount":7,"note":"<&>","paid":false}
`
	if out != want {
		t.Fatalf("output:\n%s\nwant:\n%s", out, want)
	}
	wantRej := []Rejected{
		{Line: 3, Offset: int64(strings.Index(in, "2,abc")), Path: "/amount"},
		{Line: 6, Offset: int64(strings.Index(in, "0,1")), Path: "/id"},
		{Line: 7, Offset: int64(strings.Index(in, "5,2")), Path: ""},
	}
	if len(rej) != len(wantRej) {
		t.Fatalf("rejected %+v", rej)
	}
	for i, w := range wantRej {
		if rej[i].Line != w.Line || rej[i].Offset != w.Offset || rej[i].Path != w.Path || rej[i].Reason == "" {
			t.Errorf("rejected[%d] = %+v, want line %d offset %d path %q", i, rej[i], w.Line, w.Offset, w.Path)
		}
	}
	if !strings.Contains(rej[2].Reason, "2 fields; the header has 4") {
		t.Errorf("field-count reason %q", rej[2].Reason)
	}
}

func TestTooManyBadRowsQuarantinesWithTheCounts(t *testing.T) {
	in := "id,amount\n1,1\nx,1\ny,2\n"
	_, _, _, err := run(t, plan(t, func(r *recipe.Records) { r.MaxBadRows = 0.5 }), in)
	if failure.ReasonOf(err) != failure.TooManyBadRows || !strings.Contains(err.Error(), "2 of 3 rows") {
		t.Fatalf("err %v", err)
	}
	if _, _, _, err := run(t, plan(t, func(r *recipe.Records) { r.MaxBadRows = 0.7 }), in); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
}

func TestFileLevelFaults(t *testing.T) {
	cols := func(r *recipe.Records) { r.Input.Columns = []string{"id", "amount"} }
	for _, c := range []struct {
		name, in string
		mutate   func(*recipe.Records)
		want     failure.Reason
	}{
		{"binary", "id,amount\n1,\x00\n", nil, failure.NotText},
		{"latin-1 read as UTF-8", "id,amount,note\n1,2,caf\xe9\n", nil, failure.BadEncoding},
		{"header other than the recipe's", "id,total\n1,2\n", cols, failure.HeaderMismatch},
		{"repeated name", "id,id\n1,2\n", nil, failure.HeaderMismatch},
		{"no header", "", nil, failure.HeaderMismatch},
		{"row too long", "id,amount,note\n1,2," + strings.Repeat("x", 200<<10) + "\n", func(r *recipe.Records) { r.Input.MaxRowBytes = 1 << 10 }, failure.RowTooLong},
		{"JSONL line too long", `{"id":1,"amount":` + strings.Repeat("1", 5000) + "}\n", func(r *recipe.Records) {
			r.Input = recipe.RecordsInput{Format: recipe.InputJSONL, MaxRowBytes: 1 << 10}
		}, failure.RowTooLong},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, _, err := run(t, plan(t, c.mutate), c.in)
			if got := failure.ReasonOf(err); got != c.want {
				t.Fatalf("reason %q (%v), want %q", got, err, c.want)
			}
		})
	}
}

func TestLatin1AndByteOrderMark(t *testing.T) {
	p := plan(t, func(r *recipe.Records) { r.Input.Encoding = recipe.EncodingLatin1; r.Input.Delimiter = ";" })
	_, out, _, err := run(t, p, "id;amount;note\n1;2;caf\xe9\n")
	if err != nil || out != `{"id":1,"amount":2,"note":"café"}`+"\n" {
		t.Fatalf("latin-1: %q %v", out, err)
	}
	_, out, _, err = run(t, plan(t, nil), "\xef\xbb\xbfid,amount\n1,2\n")
	if err != nil || out != `{"id":1,"amount":2}`+"\n" {
		t.Fatalf("BOM: %q %v", out, err)
	}
}

func TestJSONL(t *testing.T) {
	p := plan(t, func(r *recipe.Records) { r.Input = recipe.RecordsInput{Format: recipe.InputJSONL}; r.MaxBadRows = 1 })
	in := "{\"id\": 1, \"amount\": 2.0}\r\n\n{\"id\":2,\"amount\":\"x\"}\nnot json\n{\"id\":3,\"amount\":1,\"extra\":1}\n{\"id\":4,\"amount\":5}"
	sum, out, rej, err := run(t, p, in)
	if err != nil {
		t.Fatal(err)
	}
	if sum != (Summary{RowsIn: 5, Valid: 2, Invalid: 3}) || out != "{\"id\":1,\"amount\":2.0}\n{\"id\":4,\"amount\":5}\n" {
		t.Fatalf("summary %+v output %q", sum, out)
	}
	if rej[0].Line != 3 || rej[0].Path != "/amount" || rej[1].Line != 4 || !strings.HasPrefix(rej[1].Reason, "not JSON") ||
		rej[2].Offset != int64(strings.Index(in, `{"id":3`)) {
		t.Fatalf("rejected %+v", rej)
	}
}

func TestGzipOutputIsDeterministic(t *testing.T) {
	p := plan(t, func(r *recipe.Records) { r.Output.Gzip = true })
	in := "id,amount\n" + strings.Repeat("1,2\n3,4\n", 1000)
	_, a, _, err := run(t, p, in)
	if err != nil {
		t.Fatal(err)
	}
	_, b, _, _ := run(t, p, in)
	if a != b {
		t.Fatal("two runs made different bytes")
	}
	zr, err := gzip.NewReader(strings.NewReader(a))
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := io.ReadAll(zr)
	if !zr.ModTime.IsZero() || strings.Count(string(plain), "\n") != 2000 {
		t.Fatalf("gzip: time %v, %d rows", zr.ModTime, strings.Count(string(plain), "\n"))
	}
}

func TestSchemaMayNotLoadDocuments(t *testing.T) {
	spec := recipe.Records{Schema: json.RawMessage(`{"$ref":"file:///etc/passwd"}`)}
	if _, err := Compile(spec); err == nil {
		t.Fatal("a schema referring to a file compiled")
	}
}

// FuzzRun: hostile bytes never panic, and every row read is written to one side.
func FuzzRun(f *testing.F) {
	f.Add([]byte("id,amount\n1,2\n\"x\ny\",3\n4\n"), uint8(0))
	f.Add([]byte("{\"id\":1,\"amount\":2}\n[1,2]\n{"), uint8(1))
	f.Add([]byte("\xef\xbb\xbfid,amount\r\n1,\"2\"\"\"\r\n"), uint8(0))
	f.Add([]byte("{\"id\":1e30,\"amount\":1e400}\n{\"id\":2,\"amount\":3,\"note\":\"x\"}\n"), uint8(2))
	plans := []*Plan{
		plan(f, func(r *recipe.Records) { r.MaxBadRows = 1; r.Input.LazyQuotes = true }),
		plan(f, func(r *recipe.Records) { r.MaxBadRows = 1; r.Input = recipe.RecordsInput{Format: recipe.InputJSONL} }),
		plan(f, func(r *recipe.Records) {
			r.MaxBadRows, r.Input, r.Output = 1, recipe.RecordsInput{Format: recipe.InputJSONL}, recipe.RecordsOutput{Format: recipe.OutputParquet}
		}),
	}
	f.Fuzz(func(t *testing.T, in []byte, mode uint8) {
		p := plans[int(mode)%len(plans)]
		var out, rej bytes.Buffer
		sum, err := p.Run(bytes.NewReader(in), &out, &rej)
		if err != nil && failure.Classify(err) != failure.IsPermanent {
			t.Fatalf("not a permanent fault: %v", err)
		}
		if err == nil && p.spec.Output.Format == recipe.OutputJSONL && int64(bytes.Count(out.Bytes(), []byte("\n"))) != sum.Valid ||
			err == nil && int64(bytes.Count(rej.Bytes(), []byte("\n"))) != sum.Invalid {
			t.Fatalf("summary %+v, %d lines out, %d rejected", sum, bytes.Count(out.Bytes(), []byte("\n")), bytes.Count(rej.Bytes(), []byte("\n")))
		}
	})
}

// checkpointed is one uninterrupted run, with what it had written at each checkpoint.
type checkpointed struct {
	out, rej string
	at       []Position
	outLen   []int
	rejLen   []int
}

func runCheckpointed(t testing.TB, p *Plan, in string) checkpointed {
	t.Helper()
	var out, rej bytes.Buffer
	var c checkpointed
	_, err := p.Resume(strings.NewReader(in), Position{}, &out, &rej, func(pos Position) error {
		c.at, c.outLen, c.rejLen = append(c.at, pos), append(c.outLen, out.Len()), append(c.rejLen, rej.Len())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	c.out, c.rej = out.String(), rej.String()
	return c
}

// TestResumedRunsWriteTheSameBytes: a run stopped at any checkpoint and resumed there, from the
// bytes written so far and the position, ends with exactly the bytes of one uninterrupted run:
// the valid rows (gzipped in members that end at the checkpoints), the rejected rows with their
// lines and offsets, and the counts.
func TestResumedRunsWriteTheSameBytes(t *testing.T) {
	var csvIn, jsonlIn strings.Builder
	csvIn.WriteString("\xef\xbb\xbfid,amount,note\n")
	for i := 1; i <= 3000; i++ {
		switch {
		case i%97 == 0:
			fmt.Fprintf(&csvIn, "%d,oops,\n", i)
		case i%89 == 0:
			fmt.Fprintf(&csvIn, "%d,1,\"two\nlines\"\n\n", i)
		default:
			fmt.Fprintf(&csvIn, "%d,%d.5,caf\xe9 %d\n", i, i, i)
		}
		fmt.Fprintf(&jsonlIn, "{\"id\":%d,\"amount\":%d}\n", i, i%50)
		if i%101 == 0 {
			jsonlIn.WriteString("not json\n\n")
		}
	}
	for _, c := range []struct {
		name, in string
		input    recipe.RecordsInput
	}{
		{"csv latin-1", csvIn.String(), recipe.RecordsInput{Format: recipe.InputCSV, Encoding: recipe.EncodingLatin1}},
		{"jsonl", jsonlIn.String(), recipe.RecordsInput{Format: recipe.InputJSONL}},
	} {
		for _, gz := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s gzip %v", c.name, gz), func(t *testing.T) {
				p := plan(t, func(r *recipe.Records) {
					r.Input, r.Output.Gzip, r.CheckpointBytes, r.MaxBadRows = c.input, gz, 4096, 1
				})
				one := runCheckpointed(t, p, c.in)
				if len(one.at) < 10 {
					t.Fatalf("%d checkpoints", len(one.at))
				}
				for k, pos := range one.at {
					out := bytes.NewBufferString(one.out[:one.outLen[k]])
					rej := bytes.NewBufferString(one.rej[:one.rejLen[k]])
					sum, err := p.Resume(strings.NewReader(c.in[pos.Offset:]), pos, out, rej, nil)
					if err != nil {
						t.Fatal(err)
					}
					if out.String() != one.out || rej.String() != one.rej {
						t.Fatalf("resumed at checkpoint %d (%+v): output differs", k, pos)
					}
					if k == len(one.at)-1 && sum.RowsIn != sum.Valid+sum.Invalid {
						t.Fatalf("summary %+v", sum)
					}
				}
			})
		}
	}
}

// TestParquetOutput: the valid rows become a Parquet file with a typed column per declared
// property (optional unless required), the same bytes on every run; the rejected rows are
// JSONL as ever.
func TestParquetOutput(t *testing.T) {
	p := plan(t, func(r *recipe.Records) {
		r.Output = recipe.RecordsOutput{Format: recipe.OutputParquet}
		r.Schema = []byte(`{"type":"object","required":["id","amount"],"properties":{"id":{"type":"integer"},
			"amount":{"type":"number"},"note":{"type":"string"},"paid":{"type":"boolean"},"tags":{"type":"array"}}}`)
		r.Input = recipe.RecordsInput{Format: recipe.InputJSONL}
	})
	in := `{"id":1,"amount":2.5,"note":"a","paid":true,"tags":["x",1]}` + "\n" + `{"id":2,"amount":3}` + "\n" + `{"id":"x","amount":1}` + "\n" +
		`{"id":1e3,"amount":-1,"extra":1}` + "\n" + `{"id":1e30,"amount":1}` + "\n"
	sum, out, rej, err := run(t, p, in)
	if err != nil || sum != (Summary{RowsIn: 5, Valid: 3, Invalid: 2}) || len(rej) != 2 || rej[1].Path != "/id" || !strings.Contains(rej[1].Reason, "64-bit integer") {
		t.Fatalf("%+v %v %+v", sum, err, rej)
	}
	_, again, _, _ := run(t, p, in)
	if again != out {
		t.Fatal("two runs made different bytes")
	}
	type row struct {
		Amount float64 `parquet:"amount" json:"amount"`
		ID     int64   `parquet:"id" json:"id"`
		Note   *string `parquet:"note,optional" json:"note"`
		Paid   *bool   `parquet:"paid,optional" json:"paid"`
		Tags   *string `parquet:"tags,optional" json:"tags"`
	}
	rows, err := parquet.Read[row](strings.NewReader(out), int64(len(out)))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(rows)
	want := `[{"amount":2.5,"id":1,"note":"a","paid":true,"tags":"[\"x\",1]"},{"amount":3,"id":2,"note":null,"paid":null,"tags":null},{"amount":-1,"id":1000,"note":null,"paid":null,"tags":null}]`
	if string(got) != want {
		t.Fatalf("rows %s\nwant %s", got, want)
	}
	if _, err := Compile(recipe.Records{Schema: []byte(`{"type":"array"}`), Output: recipe.RecordsOutput{Format: recipe.OutputParquet}}); err == nil {
		t.Fatal("a schema without properties compiled for Parquet")
	}
}
