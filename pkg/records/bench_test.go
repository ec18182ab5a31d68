package records

import (
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/pkg/recipe"
)

// BenchmarkCSV is the records engine alone over a CSV of 100,000 rows (about 4.5 MB).
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
	b.SetBytes(int64(in.Len()))
	b.ResetTimer()
	for range b.N {
		if _, err := p.Run(strings.NewReader(in.String()), io.Discard, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}
