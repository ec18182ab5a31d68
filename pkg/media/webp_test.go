package media_test

import (
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluice-dev/sluice/pkg/media"
)

// Lossy WebP is VP8's limited-range (studio swing, BT.601) Y'CbCr: decoded as full-range JFIF,
// black came out 16, white 235 and saturated colours dull (golang/go#40173). Against libwebp's
// dwebp (-nofancy, the same nearest-neighbour chroma): the flat patches of levels-lossy.webp
// (black, white, grey, red, green, blue) within ±1, and a photo within 1 on average.
func TestLossyWebPLevelsMatchLibwebp(t *testing.T) {
	for _, c := range []struct {
		name           string
		maxDiff        int     // in the patches' interiors (levels) or anywhere (photo)
		maxMean        float64 // per channel
		patchInteriors bool
	}{
		{"levels-lossy", 1, 0.5, true},
		{"photo-lossy", 3, 0.75, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "webp", c.name+".webp"))
			if err != nil {
				t.Fatal(err)
			}
			d, err := media.Decode(data, nil)
			if err != nil {
				t.Fatal(err)
			}
			ref := readPNG(t, filepath.Join("testdata", "webp", c.name+".dwebp.png"))
			if d.Image.Bounds() != ref.Bounds() {
				t.Fatalf("bounds %v, dwebp %v", d.Image.Bounds(), ref.Bounds())
			}
			var sum, n float64
			worst, at := 0, image.Point{}
			b := ref.Bounds()
			for y := b.Min.Y; y < b.Max.Y; y++ {
				for x := b.Min.X; x < b.Max.X; x++ {
					if c.patchInteriors && (x%48 < 8 || x%48 >= 40 || y%48 < 8 || y%48 >= 40) {
						continue
					}
					r1, g1, b1, _ := d.Image.At(x, y).RGBA()
					r2, g2, b2, _ := ref.At(x, y).RGBA()
					for _, p := range [][2]uint32{{r1, r2}, {g1, g2}, {b1, b2}} {
						diff := abs(int(p[0]>>8) - int(p[1]>>8))
						sum += float64(diff)
						n++
						if diff > worst {
							worst, at = diff, image.Pt(x, y)
						}
					}
				}
			}
			t.Logf("against dwebp: mean difference %.3f, worst %d", sum/n, worst)
			if mean := sum / n; worst > c.maxDiff || mean > c.maxMean {
				r, g, bb, _ := d.Image.At(at.X, at.Y).RGBA()
				rr, rg, rb, _ := ref.At(at.X, at.Y).RGBA()
				t.Errorf("against dwebp: mean difference %.2f (max %.1f), worst %d at %v (%d,%d,%d vs %d,%d,%d) (max %d)",
					mean, c.maxMean, worst, at, r>>8, g>>8, bb>>8, rr>>8, rg>>8, rb>>8, c.maxDiff)
			}
		})
	}
}

func readPNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// An animated WebP is a valid image: its first frame is decoded (as libwebp decodes that frame
// alone: webpmux -get frame 1, then dwebp), not quarantined as corrupt; a first frame smaller
// than the canvas sits at its offset on a transparent canvas.
func TestAnimatedWebPGivesItsFirstFrame(t *testing.T) {
	for _, name := range []string{"anim-lossy", "anim-lossless"} {
		data, err := os.ReadFile(filepath.Join("testdata", "webp", name+".webp"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := media.Inspect(data, lim); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		d, err := media.Decode(data, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		ref := readPNG(t, filepath.Join("testdata", "webp", name+".webp.ref.png"))
		if d.Image.Bounds() != ref.Bounds() {
			t.Fatalf("%s: %v, want %v", name, d.Image.Bounds(), ref.Bounds())
		}
		worst := 0
		for y := range ref.Bounds().Dy() {
			for x := range ref.Bounds().Dx() {
				r1, g1, b1, _ := d.Image.At(x, y).RGBA()
				r2, g2, b2, _ := ref.At(x, y).RGBA()
				worst = max(worst, abs(int(r1>>8)-int(r2>>8)), abs(int(g1>>8)-int(g2>>8)), abs(int(b1>>8)-int(b2>>8)))
			}
		}
		if worst > 2 {
			t.Errorf("%s: first frame differs from libwebp's by up to %d", name, worst)
		}
	}
	data, err := os.ReadFile(filepath.Join("testdata", "webp", "anim-offset.webp"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := media.Decode(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.Image.Bounds().Size() != image.Pt(96, 66) {
		t.Fatalf("canvas %v, want 96×66", d.Image.Bounds())
	}
	if _, _, _, a := d.Image.At(5, 5).RGBA(); a != 0 {
		t.Errorf("outside the first frame the canvas is not transparent (alpha %d)", a)
	}
	if _, _, _, a := d.Image.At(30, 25).RGBA(); a != 0xffff {
		t.Errorf("inside the first frame (at 10,10, 48×33) the canvas is not opaque (alpha %d)", a)
	}
}
