package jpegscale

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"os"
	"path/filepath"
	"testing"
)

func fixtures(t testing.TB) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob("testdata/*.jpg")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	out := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(p)] = b
	}
	return out
}

// psnr compares two images of the same size in RGB.
func psnr(t testing.TB, a, b image.Image) float64 {
	t.Helper()
	if a.Bounds().Size() != b.Bounds().Size() {
		t.Fatalf("sizes differ: %v vs %v", a.Bounds(), b.Bounds())
	}
	var sum float64
	n := 0
	ab, bb := a.Bounds(), b.Bounds()
	for y := range ab.Dy() {
		for x := range ab.Dx() {
			c1 := color.RGBAModel.Convert(a.At(ab.Min.X+x, ab.Min.Y+y)).(color.RGBA)
			c2 := color.RGBAModel.Convert(b.At(bb.Min.X+x, bb.Min.Y+y)).(color.RGBA)
			for _, d := range []float64{float64(c1.R) - float64(c2.R), float64(c1.G) - float64(c2.G), float64(c1.B) - float64(c2.B)} {
				sum += d * d
			}
			n += 3
		}
	}
	if sum == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(255*255/(sum/float64(n)))
}

// boxShrink averages s×s groups of pixels (the edge groups over what exists).
func boxShrink(src image.Image, s int) image.Image {
	b := src.Bounds()
	w, h := (b.Dx()+s-1)/s, (b.Dy()+s-1)/s
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			var r, g, bl, n uint32
			for yy := y * s; yy < min(y*s+s, b.Dy()); yy++ {
				for xx := x * s; xx < min(x*s+s, b.Dx()); xx++ {
					c := color.RGBAModel.Convert(src.At(b.Min.X+xx, b.Min.Y+yy)).(color.RGBA)
					r, g, bl, n = r+uint32(c.R), g+uint32(c.G), bl+uint32(c.B), n+1
				}
			}
			out.SetRGBA(x, y, color.RGBA{uint8(r / n), uint8(g / n), uint8(bl / n), 255})
		}
	}
	return out
}

// stdlibRejects are valid files that image/jpeg fails on; each has a twin without the feature,
// whose coefficients are the same (arithmetic.jpg is base-2x2.jpg's pixels, arithmetic-coded).
var stdlibRejects = map[string]string{"prog-2x1-restart.jpg": "prog-2x1.jpg", "arithmetic.jpg": "base-2x2.jpg"}

// At full size the result agrees with image/jpeg to within IDCT rounding; reduced, with a box
// filter over the full-size result (the two low-pass filters differ, hence the lower bar).
func TestDecodeMatchesImageJPEG(t *testing.T) {
	for name, data := range fixtures(t) {
		if stdlibRejects[name] != "" {
			continue
		}
		want, err := jpeg.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: image/jpeg: %v", name, err)
		}
		for _, shrink := range []int{1, 2, 4, 8} {
			got, err := Decode(data, Options{Shrink: shrink})
			if err != nil {
				t.Errorf("%s 1/%d: %v", name, shrink, err)
				continue
			}
			if got.Width != want.Bounds().Dx() || got.Height != want.Bounds().Dy() {
				t.Errorf("%s: full size %dx%d, want %v", name, got.Width, got.Height, want.Bounds().Size())
			}
			ref, minPSNR := want, 55.0
			if shrink > 1 {
				ref, minPSNR = boxShrink(want, shrink), 30
			}
			if p := psnr(t, got.Image, ref); p < minPSNR {
				t.Errorf("%s 1/%d: PSNR %.1f dB against image/jpeg, want ≥ %.0f", name, shrink, p, minPSNR)
			}
		}
	}
}

// Restart markers and arithmetic coding change the entropy coding, not the coefficients: the
// pixels are identical.
func TestRestartIntervalsDecodeIdentically(t *testing.T) {
	fx := fixtures(t)
	pairs := map[string]string{"base-2x2-restart.jpg": "base-2x2.jpg"}
	for k, v := range stdlibRejects {
		pairs[k] = v
	}
	for withRST, without := range pairs {
		for _, shrink := range []int{1, 2, 8} {
			a, err := Decode(fx[withRST], Options{Shrink: shrink})
			if err != nil {
				t.Fatalf("%s: %v", withRST, err)
			}
			b, err := Decode(fx[without], Options{Shrink: shrink})
			if err != nil {
				t.Fatalf("%s: %v", without, err)
			}
			if p := psnr(t, a.Image, b.Image); !math.IsInf(p, 1) {
				t.Errorf("%s vs %s at 1/%d: PSNR %.1f dB, want identical", withRST, without, shrink, p)
			}
		}
	}
}

func TestDecodeConfigAndOrientation(t *testing.T) {
	rotated, err := os.ReadFile(filepath.Join("..", "..", "testdata", "images", "rotated-exif6.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := DecodeConfig(rotated)
	if err != nil || cfg != (Config{Width: 600, Height: 400, Orientation: 6}) {
		t.Errorf("rotated-exif6.jpg: %+v, %v; want 600x400, orientation 6", cfg, err)
	}
	img, err := Decode(rotated, Options{Shrink: 2})
	if err != nil || img.Orientation != 6 || img.Image.Bounds().Size() != image.Pt(300, 200) {
		t.Errorf("rotated-exif6.jpg at 1/2: %v, orientation %d, %v; want 300x200 (not rotated), 6", img.Image.Bounds(), img.Orientation, err)
	}
	cfg, err = DecodeConfig(fixtures(t)["base-2x1.jpg"])
	if err != nil || cfg != (Config{Width: 203, Height: 135, Orientation: 1}) {
		t.Errorf("base-2x1.jpg: %+v, %v", cfg, err)
	}
}

func TestUnsupportedAndLimits(t *testing.T) {
	fx := fixtures(t)
	// 16-bit samples (the header decides; the data does not matter) and a lossless process stay
	// unsupported.
	sixteen := bytes.Replace(fx["base-2x1.jpg"], []byte{0xFF, 0xC0, 0x00, 0x11, 0x08}, []byte{0xFF, 0xC1, 0x00, 0x11, 0x10}, 1)
	lossless := bytes.Replace(fx["base-2x1.jpg"], []byte{0xFF, 0xC0}, []byte{0xFF, 0xC3}, 1)
	for name, data := range map[string][]byte{"16-bit": sixteen, "lossless": lossless} {
		if _, err := Decode(data, Options{}); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: %v, want ErrUnsupported", name, err)
		}
		if _, err := DecodeConfig(data); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s config: %v, want ErrUnsupported", name, err)
		}
	}
	var fe FormatError
	if _, err := Decode(fx["base-2x1.jpg"], Options{MaxPixels: 203*135 - 1}); !errors.As(err, &fe) {
		t.Errorf("over MaxPixels: %v, want a FormatError", err)
	}
	if _, err := Decode(fx["base-2x1.jpg"], Options{Shrink: 3}); err == nil {
		t.Error("shrink 3 accepted")
	}
}

// Every truncation fails with a FormatError: a cut file never decodes into a partly grey image.
func TestTruncatedDataFails(t *testing.T) {
	for _, name := range []string{"base-2x1.jpg", "prog-2x1.jpg", "prog-2x1-restart.jpg", "gray-prog.jpg"} {
		data := fixtures(t)[name]
		for n := 0; n < len(data)-2; n += 53 {
			var fe FormatError
			if _, err := Decode(data[:n], Options{Shrink: 2}); !errors.As(err, &fe) {
				t.Fatalf("%s cut at %d of %d bytes: %v, want a FormatError", name, n, len(data), err)
			}
		}
	}
}

// FuzzDecode: whatever the bytes, no panic, no allocation past MaxPixels, and a result of the
// size the header promises.
func FuzzDecode(f *testing.F) {
	for _, data := range fixtures(f) {
		f.Add(data, uint8(1))
	}
	arith, _ := filepath.Glob(filepath.Join("testdata", "arith", "a-*.jpg"))
	for _, name := range arith {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data, uint8(0))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, shrink uint8) {
		s := 1 << (shrink % 4)
		img, err := Decode(data, Options{Shrink: s, MaxPixels: 1 << 20})
		if err != nil {
			return
		}
		want := image.Pt((img.Width+s-1)/s, (img.Height+s-1)/s)
		if got := img.Image.Bounds().Size(); got != want {
			t.Fatalf("decoded %v for %dx%d at 1/%d", got, img.Width, img.Height, s)
		}
	})
}
