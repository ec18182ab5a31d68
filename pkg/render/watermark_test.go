package render

import (
	"bytes"
	"flag"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite watermark.png from drawDefaultWatermark")

// drawDefaultWatermark draws the default watermark: a dark, rounded, half-transparent plate with
// a white sluice gate (three posts) over two waves.
func drawDefaultWatermark() *image.NRGBA {
	const w, h = 360, 120
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	const r = 24.0
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			// Rounded-rectangle plate.
			dx := math.Max(0, math.Max(r-float64(x)-0.5, float64(x)+0.5-(w-r)))
			dy := math.Max(0, math.Max(r-float64(y)-0.5, float64(y)+0.5-(h-r)))
			if math.Hypot(dx, dy) > r {
				continue
			}
			c := color.NRGBA{R: 20, G: 30, B: 40, A: 170}
			fx, fy := float64(x), float64(y)
			// Three gate posts.
			for _, px := range []float64{90, 180, 270} {
				if math.Abs(fx-px) < 9 && fy > 18 && fy < 70 {
					c = color.NRGBA{R: 255, G: 255, B: 255, A: 255}
				}
			}
			// Gate beam.
			if fx > 70 && fx < 290 && fy > 18 && fy < 30 {
				c = color.NRGBA{R: 255, G: 255, B: 255, A: 255}
			}
			// Two waves under the gate.
			for _, base := range []float64{82, 100} {
				wave := base + 6*math.Sin((fx-30)/300*4*math.Pi)
				if fx > 30 && fx < w-30 && math.Abs(fy-wave) < 4 {
					c = color.NRGBA{R: 120, G: 200, B: 255, A: 255}
				}
			}
			img.SetNRGBA(x, y, c)
		}
	}
	return img
}

func TestDefaultWatermarkIsTheDrawnOne(t *testing.T) {
	var buf bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&buf, drawDefaultWatermark()); err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile("watermark.png", buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(buf.Bytes(), DefaultWatermark) {
		t.Fatal("watermark.png differs from drawDefaultWatermark(); run go test ./pkg/render -run Watermark -update")
	}
}
