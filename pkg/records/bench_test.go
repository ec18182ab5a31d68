package records

import (
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/pkg/recipe"
)

// BenchmarkCSV is the records engine alone over a CSV of 100,000 rows (about 4.5 MB), with one
// validator and with one per CPU: the ratio is what validating on every CPU buys.
func BenchmarkCSV(b *testing.B) {
	var in strings.Builder
	in.WriteString("id,amount,note\n")
	for i := 1; i <= 100_000; i++ {
		fmt.Fprintf(&in, "%d,%d.%02d,order %d of a synthetic file\n", i, i%10000, i%100, i)
	}
	p := plan(b, func(r *recipe.Records) {
		r.MaxBadRows = 0
		r.Schema = []byte(`{"type":"object","required":["id","amount"],"properties":{"id":{"type":"integer","minimum":1},"amount":{"type":"number"},"note":{"type":"string"}}}`)
	})
	for _, validators := range []int{1, 0} {
		name := "validators=1"
		if validators == 0 {
			name = "validators=GOMAXPROCS"
		}
		b.Run(name, func(b *testing.B) {
			p.validators = validators
			b.SetBytes(int64(in.Len()))
			for range b.N {
				if _, err := p.Run(strings.NewReader(in.String()), io.Discard, io.Discard); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestOutputDoesNotDependOnTheValidators: one validator or one per CPU, the same bytes.
func TestOutputDoesNotDependOnTheValidators(t *testing.T) {
	var in strings.Builder
	in.WriteString("id,amount,note\n")
	for i := 1; i <= 5000; i++ {
		fmt.Fprintf(&in, "%d,%d,%s\n", i, i%7-3, strings.Repeat("n", i%13))
	}
	p := plan(t, func(r *recipe.Records) { r.MaxBadRows = 1; r.Output.Gzip = true; r.CheckpointBytes = 4096 })
	var outs, rejs []string
	for _, v := range []int{1, 2, 7} {
		p.validators = v
		_, out, rej, err := run(t, p, in.String())
		if err != nil {
			t.Fatal(err)
		}
		outs, rejs = append(outs, out), append(rejs, fmt.Sprint(rej))
	}
	if outs[0] != outs[1] || outs[1] != outs[2] || rejs[0] != rejs[1] || rejs[1] != rejs[2] || len(rejs[0]) < 100 {
		t.Fatal("the output depends on the number of validators")
	}
}
