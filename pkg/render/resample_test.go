package render

import (
	"image"
	"testing"

	"github.com/disintegration/imaging"
)

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
