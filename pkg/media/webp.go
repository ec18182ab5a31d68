package media

import (
	"image"
	"math"
)

// Lossy WebP stores VP8's Y'CbCr in limited range (studio swing: Y' 16–235, Cb and Cr 16–240,
// BT.601), and golang.org/x/image/webp hands the planes back as an image.YCbCr, which Go (and
// our planar path) read as full-range JFIF: black came out 16 and white 235 (golang/go#40173).
// fullRange rescales the planes in place, so the image stays planar (the fast path) and reads
// as libwebp decodes it, within ±1. Lossless WebP decodes to NRGBA and is left alone.
func fullRange(img image.Image) {
	var m *image.YCbCr
	switch v := img.(type) {
	case *image.YCbCr:
		m = v
	case *image.NYCbCrA: // lossy with an alpha plane
		m = &v.YCbCr
	default:
		return
	}
	for i, v := range m.Y {
		m.Y[i] = studioLuma[v]
	}
	for i, v := range m.Cb {
		m.Cb[i] = studioChroma[v]
	}
	for i, v := range m.Cr {
		m.Cr[i] = studioChroma[v]
	}
}

// studioLuma and studioChroma map limited-range samples to full range (clamped).
var studioLuma, studioChroma = studioTables()

func studioTables() (luma, chroma [256]uint8) {
	for v := range 256 {
		luma[v] = clamp8(float64(v-16) * 255 / 219)
		chroma[v] = clamp8(float64(v-128)*255/224 + 128)
	}
	return luma, chroma
}

func clamp8(x float64) uint8 {
	return uint8(math.Round(max(0, min(255, x))))
}
