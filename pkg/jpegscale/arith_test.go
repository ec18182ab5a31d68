package jpegscale

import (
	"bytes"
	"image"
	"image/png"
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

// A 12-bit JPEG (DCMTK's dcmcjpeg +ee, extended sequential) comes out in 8 bits: each sample
// within one level of the 12-bit decode IJG's libjpeg makes (dcmdjpeg), over 16.
func TestTwelveBitComesOutInEightBits(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "twelve", "twelve.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join("testdata", "twelve", "twelve.jpg.ref.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ref, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	img, err := Decode(data, Options{})
	if err != nil {
		t.Fatal(err)
	}
	g, ok := img.Image.(*image.Gray)
	r16, ok16 := ref.(*image.Gray16)
	if !ok || !ok16 || g.Rect != r16.Rect {
		t.Fatalf("decoded %T %v, reference %T %v", img.Image, img.Image.Bounds(), ref, ref.Bounds())
	}
	worst := 0
	for y := range g.Rect.Dy() {
		for x := range g.Rect.Dx() {
			want := min(255, (int(r16.Gray16At(x, y).Y)+8)>>4)
			worst = max(worst, abs(int(g.GrayAt(x, y).Y)-want))
		}
	}
	if worst > 1 {
		t.Errorf("up to %d levels from the 12-bit decode over 16", worst)
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
