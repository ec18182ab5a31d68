package jpegscale

import (
	"bytes"
	"fmt"
	"image/jpeg"
	"os"
	"testing"
)

// benchData is the photo named by SLUICE_BENCH_PHOTO (make bench fetches one), else the
// largest fixture.
func benchData(b *testing.B) []byte {
	if p := os.Getenv("SLUICE_BENCH_PHOTO"); p != "" {
		data, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		return data
	}
	return fixtures(b)["prog-2x1.jpg"]
}

// BenchmarkImageJPEG is the baseline: the standard library's full-size decode.
func BenchmarkImageJPEG(b *testing.B) {
	data := benchData(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := jpeg.Decode(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	data := benchData(b)
	for _, shrink := range []int{1, 2, 4, 8} {
		b.Run(fmt.Sprintf("1of%d", shrink), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Decode(data, Options{Shrink: shrink}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
