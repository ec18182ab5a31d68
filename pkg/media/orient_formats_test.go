package media_test

import (
	"image"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluice-dev/sluice/pkg/media"
)

// Orientation is applied wherever the file states it, as browsers and libvips do: a PNG's eXIf
// chunk and a TIFF's tag 274, like a JPEG's APP1. Each fixture is stored 600×400, red left and
// blue right, with orientation 6: upright it is 400×600, red on top, blue below.
func TestOrientationFromPNGAndTIFF(t *testing.T) {
	for _, name := range []string{"rotated-exif6.png", "rotated-tag274.tif"} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "orient", name))
			if err != nil {
				t.Fatal(err)
			}
			d, err := media.Decode(data, nil)
			if err != nil {
				t.Fatal(err)
			}
			if d.Width != 400 || d.Height != 600 || d.Image.Bounds().Size() != image.Pt(400, 600) {
				t.Fatalf("decoded %v, full size %d×%d; want the upright 400×600", d.Image.Bounds(), d.Width, d.Height)
			}
			b := d.Image.Bounds()
			top, bottom := d.Image.At(b.Min.X+200, b.Min.Y+100), d.Image.At(b.Min.X+200, b.Min.Y+500)
			if r, _, bl, _ := top.RGBA(); r>>8 < 200 || bl>>8 > 50 {
				t.Errorf("top is %v, want red", top)
			}
			if r, _, bl, _ := bottom.RGBA(); bl>>8 < 200 || r>>8 > 50 {
				t.Errorf("bottom is %v, want blue", bottom)
			}
		})
	}
}
