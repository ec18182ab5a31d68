package jpegenc

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// photo420 is a 1024×640 part of testdata's photo as a 4:2:0 image (each chroma sample the mean
// of the 2×2 pixels it covers, as image/jpeg's encoder makes it).
func photo420(t testing.TB) *image.YCbCr {
	t.Helper()
	f, err := os.ReadFile(filepath.Join("..", "..", "testdata", "images", "elephants.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := jpeg.Decode(bytes.NewReader(f))
	if err != nil {
		t.Fatal(err)
	}
	return to420(src.(interface {
		SubImage(image.Rectangle) image.Image
	}).SubImage(image.Rect(600, 300, 1624, 940)))
}

func to420(src image.Image) *image.YCbCr {
	b := src.Bounds()
	m := image.NewYCbCr(image.Rect(0, 0, b.Dx(), b.Dy()), image.YCbCrSubsampleRatio420)
	cb := make([]int, len(m.Cb))
	cr := make([]int, len(m.Cr))
	n := make([]int, len(m.Cb))
	for y := range b.Dy() {
		for x := range b.Dx() {
			r, g, bl, _ := src.At(b.Min.X+x, b.Min.Y+y).RGBA()
			yy, u, v := color.RGBToYCbCr(uint8(r>>8), uint8(g>>8), uint8(bl>>8))
			m.Y[m.YOffset(x, y)] = yy
			c := m.COffset(x, y)
			cb[c] += int(u)
			cr[c] += int(v)
			n[c]++
		}
	}
	for c := range n {
		m.Cb[c], m.Cr[c] = uint8((cb[c]+n[c]/2)/n[c]), uint8((cr[c]+n[c]/2)/n[c])
	}
	return m
}

func psnr(a, b image.Image) float64 {
	ab := a.Bounds()
	var sum float64
	for y := range ab.Dy() {
		for x := range ab.Dx() {
			r1, g1, b1, _ := a.At(ab.Min.X+x, ab.Min.Y+y).RGBA()
			r2, g2, b2, _ := b.At(b.Bounds().Min.X+x, b.Bounds().Min.Y+y).RGBA()
			for _, d := range []float64{float64(r1>>8) - float64(r2>>8), float64(g1>>8) - float64(g2>>8), float64(b1>>8) - float64(b2>>8)} {
				sum += d * d
			}
		}
	}
	mse := sum / float64(3*ab.Dx()*ab.Dy())
	if mse == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(255*255/mse)
}

func encode(t testing.TB, m image.Image, q int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Encode(&buf, m, q); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func decode(t testing.TB, b []byte) image.Image {
	t.Helper()
	m, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// At the same quality, the output is as faithful as image/jpeg's and about as large (the same
// tables; a float DCT instead of an integer one; restart markers).
func TestMatchesImageJPEG(t *testing.T) {
	src := photo420(t)
	for _, q := range []int{30, 82, 95} {
		ours := encode(t, src, q)
		var std bytes.Buffer
		if err := jpeg.Encode(&std, src, &jpeg.Options{Quality: q}); err != nil {
			t.Fatal(err)
		}
		po, ps := psnr(decode(t, ours), src), psnr(decode(t, std.Bytes()), src)
		size := float64(len(ours)) / float64(std.Len())
		t.Logf("quality %d: ours %.2f dB, %d bytes; image/jpeg %.2f dB, %d bytes", q, po, len(ours), ps, std.Len())
		if po < ps-0.2 {
			t.Errorf("quality %d: PSNR %.2f dB, image/jpeg %.2f dB", q, po, ps)
		}
		if size < 0.97 || size > 1.03 {
			t.Errorf("quality %d: %d bytes, image/jpeg %d", q, len(ours), std.Len())
		}
	}
}

// Any size, colour or grey, decodes to the same size and close to the source; edges that are
// not whole blocks repeat the last row and column.
func TestSizes(t *testing.T) {
	photo := photo420(t)
	for _, sz := range []image.Point{{1, 1}, {2, 3}, {17, 9}, {16, 16}, {33, 250}, {250, 33}} {
		sub := photo.SubImage(image.Rect(101, 57, 101+sz.X, 57+sz.Y)).(*image.YCbCr)
		gray := image.NewGray(sub.Rect)
		copy(gray.Pix, sub.Y) // any plane will do
		for y := range sz.Y {
			copy(gray.Pix[y*gray.Stride:], sub.Y[sub.YOffset(sub.Rect.Min.X, sub.Rect.Min.Y+y):][:sz.X])
		}
		for _, m := range []image.Image{sub, gray} {
			got := decode(t, encode(t, m, 90))
			if got.Bounds().Size() != sz {
				t.Fatalf("%T %v: decoded %v", m, sz, got.Bounds().Size())
			}
			if p := psnr(got, m); p < 30 {
				t.Errorf("%T %v: PSNR %.1f dB", m, sz, p)
			}
		}
	}
}

// The bytes depend on the image and quality only, never on how many CPUs coded the stripes.
func TestDeterministic(t *testing.T) {
	src := photo420(t)
	if src.Rect.Dy() <= 16*stripeRows {
		t.Fatal("the photo must span several stripes")
	}
	prev := runtime.GOMAXPROCS(1)
	one := encode(t, src, 82)
	runtime.GOMAXPROCS(4)
	four := encode(t, src, 82)
	runtime.GOMAXPROCS(prev)
	if !bytes.Equal(one, four) {
		t.Error("output differs between 1 and 4 CPUs")
	}
}

// The AAN transform, once its scale is divided out, is the DCT of T.81 A.3.3.
func TestFDCT(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100 {
		var blk [64]float32
		var in [64]float64
		for i := range blk {
			in[i] = float64(rng.IntN(256) - 128)
			blk[i] = float32(in[i])
		}
		fdct(&blk)
		for v := range 8 {
			for u := range 8 {
				var want float64
				for y := range 8 {
					for x := range 8 {
						want += in[y*8+x] * math.Cos(float64(2*x+1)*float64(u)*math.Pi/16) * math.Cos(float64(2*y+1)*float64(v)*math.Pi/16)
					}
				}
				cu, cv := 1.0, 1.0
				if u == 0 {
					cu = 1 / math.Sqrt2
				}
				if v == 0 {
					cv = 1 / math.Sqrt2
				}
				want *= cu * cv / 4
				got := float64(blk[v*8+u]) / (8 * aanScale[u] * aanScale[v])
				if math.Abs(got-want) > 0.01 {
					t.Fatalf("coefficient (%d,%d): %.4f, want %.4f", u, v, got, want)
				}
			}
		}
	}
}

func TestRejects(t *testing.T) {
	var buf bytes.Buffer
	for _, m := range []image.Image{
		image.NewYCbCr(image.Rect(0, 0, 8, 8), image.YCbCrSubsampleRatio444),
		image.NewRGBA(image.Rect(0, 0, 8, 8)),
		image.NewGray(image.Rect(0, 0, 70000, 1)),
	} {
		if Supports(m) && m.Bounds().Dx() <= 0xffff {
			t.Errorf("%T: supported", m)
		}
		if err := Encode(&buf, m, 80); err == nil {
			t.Errorf("%T %v: no error", m, m.Bounds())
		}
	}
}

// Random sizes and pixels always come out as a JPEG image/jpeg reads at the same size.
func FuzzEncode(f *testing.F) {
	f.Add(uint16(17), uint16(9), uint64(1), uint8(82), true)
	f.Add(uint16(1), uint16(300), uint64(2), uint8(1), false)
	f.Fuzz(func(t *testing.T, w, h uint16, seed uint64, q uint8, color bool) {
		w, h = w%600+1, h%600+1
		rng := rand.New(rand.NewPCG(seed, 0))
		r := image.Rect(0, 0, int(w), int(h))
		var m image.Image
		if color {
			c := image.NewYCbCr(r, image.YCbCrSubsampleRatio420)
			for _, p := range [][]uint8{c.Y, c.Cb, c.Cr} {
				for i := range p {
					p[i] = uint8(rng.Uint32())
				}
			}
			m = c
		} else {
			g := image.NewGray(r)
			for i := range g.Pix {
				g.Pix[i] = uint8(rng.Uint32())
			}
			m = g
		}
		got := decode(t, encode(t, m, int(q)))
		if got.Bounds().Size() != r.Size() {
			t.Fatalf("decoded %v, want %v", got.Bounds().Size(), r.Size())
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	src := photo420(b)
	b.Run("jpegenc", func(b *testing.B) {
		for b.Loop() {
			Encode(&bytes.Buffer{}, src, 82)
		}
	})
	b.Run("image-jpeg", func(b *testing.B) {
		for b.Loop() {
			jpeg.Encode(&bytes.Buffer{}, src, &jpeg.Options{Quality: 82})
		}
	})
}
