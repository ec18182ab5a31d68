package jpegscale

import (
	"bytes"
	"image"
	"os"
	"path/filepath"
	"testing"
)

// jpegtran -arithmetic re-codes a Huffman JPEG's coefficients losslessly (testdata/README.md), so
// each arithmetic-coded file, sequential or progressive, with restart intervals or without,
// must decode to exactly the pixels of the Huffman file it came from, at every scale.
func TestArithmeticCodingDecodesAsItsHuffmanTwin(t *testing.T) {
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", "arith", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, c := range []struct{ arith, huffman string }{
		{"a-seq.jpg", "h-seq.jpg"},
		{"a-prog.jpg", "h-seq.jpg"},
		{"a-rst.jpg", "h-seq.jpg"},
		{"a-prog-rst.jpg", "h-seq.jpg"},
		{"a-gray.jpg", "h-gray.jpg"},
	} {
		for _, shrink := range []int{1, 2, 8} {
			want, err := Decode(read(c.huffman), Options{Shrink: shrink})
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decode(read(c.arith), Options{Shrink: shrink})
			if err != nil {
				t.Errorf("%s at 1/%d: %v", c.arith, shrink, err)
				continue
			}
			if !samePlanes(got.Image, want.Image) {
				t.Errorf("%s at 1/%d: pixels differ from %s's", c.arith, shrink, c.huffman)
			}
		}
	}
}

func samePlanes(a, b image.Image) bool {
	switch x := a.(type) {
	case *image.YCbCr:
		y, ok := b.(*image.YCbCr)
		return ok && x.Rect == y.Rect && bytes.Equal(x.Y, y.Y) && bytes.Equal(x.Cb, y.Cb) && bytes.Equal(x.Cr, y.Cr)
	case *image.Gray:
		y, ok := b.(*image.Gray)
		return ok && x.Rect == y.Rect && bytes.Equal(x.Pix, y.Pix)
	}
	return false
}
