package records

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"strings"
	"testing"

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
	f.Add([]byte("id,amount\n1,2\n\"x\ny\",3\n4\n"), false)
	f.Add([]byte("{\"id\":1,\"amount\":2}\n[1,2]\n{"), true)
	f.Add([]byte("\xef\xbb\xbfid,amount\r\n1,\"2\"\"\"\r\n"), false)
	csvPlan := plan(f, func(r *recipe.Records) { r.MaxBadRows = 1; r.Input.LazyQuotes = true })
	jsonlPlan := plan(f, func(r *recipe.Records) { r.MaxBadRows = 1; r.Input = recipe.RecordsInput{Format: recipe.InputJSONL} })
	f.Fuzz(func(t *testing.T, in []byte, jsonl bool) {
		p := csvPlan
		if jsonl {
			p = jsonlPlan
		}
		var out, rej bytes.Buffer
		sum, err := p.Run(bytes.NewReader(in), &out, &rej)
		if err != nil && failure.Classify(err) != failure.IsPermanent {
			t.Fatalf("not a permanent fault: %v", err)
		}
		if err == nil && (int64(bytes.Count(out.Bytes(), []byte("\n"))) != sum.Valid || int64(bytes.Count(rej.Bytes(), []byte("\n"))) != sum.Invalid) {
			t.Fatalf("summary %+v, %d lines out, %d rejected", sum, bytes.Count(out.Bytes(), []byte("\n")), bytes.Count(rej.Bytes(), []byte("\n")))
		}
	})
}
