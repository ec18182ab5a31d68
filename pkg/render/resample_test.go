package render

import (
	"image"
	"image/color"
	"image/draw"
	"math"
	"testing"

	"github.com/disintegration/imaging"
)

// Every filter row sums to exactly one, so a flat plane stays flat, whatever the sizes:
// shrinking, enlarging, one-pixel edges, subsampled chroma on either side.
func TestResizeKeepsFlatPlanesFlat(t *testing.T) {
	sizes := [][4]int{ // source w, h; target w, h
		{1, 1, 7, 3}, {7, 3, 1, 1}, {2560, 16, 2048, 9}, {13, 17, 31, 5}, {640, 427, 256, 256}, {3, 1000, 2, 10},
	}
	for _, sz := range sizes {
		for _, ratio := range []image.YCbCrSubsampleRatio{image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio420, image.YCbCrSubsampleRatio422, image.YCbCrSubsampleRatio411} {
			src := image.NewYCbCr(image.Rect(0, 0, sz[0], sz[1]), ratio)
			for i := range src.Y {
				src.Y[i] = 200
			}
			for i := range src.Cb {
				src.Cb[i], src.Cr[i] = 17, 240
			}
			out, ok := resizePlanar(src, sz[2], sz[3])
			if !ok {
				t.Fatal("a YCbCr image must take the planar path")
			}
			m := out.(*image.YCbCr)
			if m.Rect.Size() != image.Pt(sz[2], sz[3]) {
				t.Fatalf("%v %v: got %v", sz, ratio, m.Rect)
			}
			for _, p := range []struct {
				pix  []uint8
				want uint8
			}{{m.Y, 200}, {m.Cb, 17}, {m.Cr, 240}} {
				for i, v := range p.pix {
					if v != p.want {
						t.Fatalf("%v %v: sample %d is %d, want %d", sz, ratio, i, v, p.want)
					}
				}
			}
		}
	}
}

// On luma, the fixed-point planar resize is imaging's Lanczos: the same kernel and geometry,
// off by rounding only.
func TestResizeMatchesImagingOnLuma(t *testing.T) {
	src := image.NewGray(image.Rect(0, 0, 333, 211))
	for y := range 211 {
		for x := range 333 {
			src.Pix[y*src.Stride+x] = uint8(128 + 100*math.Sin(float64(x)/7)*math.Cos(float64(y)/5))
		}
	}
	for _, sz := range []image.Point{{100, 64}, {333, 100}, {50, 211}, {500, 300}, {17, 11}} {
		out, ok := resizePlanar(src, sz.X, sz.Y)
		if !ok {
			t.Fatal("a grey image must take the planar path")
		}
		want := imaging.Resize(src, sz.X, sz.Y, imaging.Lanczos)
		var worst int
		for y := range sz.Y {
			for x := range sz.X {
				g := int(out.(*image.Gray).GrayAt(x, y).Y)
				w := int(want.NRGBAAt(x, y).R)
				worst = max(worst, g-w, w-g)
			}
		}
		if worst > 2 { // each of the two passes rounds to 8 bits, perhaps in another order
			t.Errorf("%v: a sample differs from imaging's by %d", sz, worst)
		}
	}
}

// Blending the watermark into the planes gives what drawing it over the RGB picture gives,
// compared as the JPEG encoder sees both.
func TestBlend420MatchesDrawingOver(t *testing.T) {
	// A picture inside the RGB gamut, so that converting it to RGB and back loses nothing.
	pic := image.NewNRGBA(image.Rect(0, 0, 120, 80))
	for y := range 80 {
		for x := range 120 {
			pic.SetNRGBA(x, y, color.NRGBA{R: uint8(2 * x), G: uint8(3 * y), B: uint8(x + y), A: 255})
		}
	}
	base := as420(pic).(*image.YCbCr)
	mark := image.NewNRGBA(image.Rect(0, 0, 41, 23))
	for y := range 23 {
		for x := range 41 {
			mark.SetNRGBA(x, y, color.NRGBA{R: uint8(x * 6), G: 250, B: uint8(y * 11), A: uint8(x*y) % 255})
		}
	}
	at := image.Pt(71, 49) // odd: the mark starts inside a chroma sample
	got := blend420(base, mark, at, 153)

	rgb := imaging.Clone(base)
	mask := image.NewUniform(color.Alpha{A: 153})
	draw.DrawMask(rgb, image.Rectangle{Min: at, Max: at.Add(mark.Rect.Size())}, mark, image.Point{}, mask, image.Point{}, draw.Over)
	p := psnr(got, as420(rgb))
	t.Logf("PSNR %.1f dB", p)
	if p < 40 {
		t.Errorf("PSNR %.1f dB against drawing over RGB", p)
	}
	if psnr(got, base) > 60 {
		t.Error("the watermark left no trace")
	}
}

func testYCbCr(w, h int) *image.YCbCr {
	m := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	for i := range m.Y {
		m.Y[i] = uint8(i*7 + i/w*3)
	}
	for i := range m.Cb {
		m.Cb[i], m.Cr[i] = uint8(i*5), uint8(i*3+17)
	}
	return m
}

// BenchmarkResize compares the planar resize with imaging's on the same 2560×1600 4:2:0 image
// (the large rendition of a 4 MP photo).
func BenchmarkResize(b *testing.B) {
	src := testYCbCr(2560, 1600)
	b.Run("planar", func(b *testing.B) {
		for b.Loop() {
			resizePlanar(src, 2048, 1280)
		}
	})
	b.Run("imaging", func(b *testing.B) {
		for b.Loop() {
			imaging.Resize(src, 2048, 1280, imaging.Lanczos)
		}
	})
}

func BenchmarkPasses(b *testing.B) {
	src := newPlane(2560, 1600, 2560, 1600)
	for i := range src.pix {
		src.pix[i] = uint8(i * 7)
	}
	b.Run("horizontal", func(b *testing.B) {
		dst := newPlane(2048, 1600, 2048, 1600)
		t := newTaps(2560, 2560, 2048, 2048)
		for b.Loop() {
			horizontal(dst, src, t)
		}
	})
	b.Run("vertical", func(b *testing.B) {
		dst := newPlane(2560, 1280, 2560, 1280)
		t := newTaps(1600, 1600, 1280, 1280)
		for b.Loop() {
			vertical(dst, src, t)
		}
	})
}
