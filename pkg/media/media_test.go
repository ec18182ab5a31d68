package media_test

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/disintegration/imaging"
	"github.com/gen2brain/avif"
	"github.com/gen2brain/heic"
	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"

	"github.com/sluice-dev/sluice/pkg/failure"
	"github.com/sluice-dev/sluice/pkg/media"
)

var lim = media.Limits{MaxBytes: 10 << 20, MaxPixels: 4_000_000, MaxHEICPixels: 1_000_000, MaxAVIFPixels: 1_000_000}

func encoded(t testing.TB, enc func(*bytes.Buffer, image.Image) error) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := enc(&buf, image.NewRGBA(image.Rect(0, 0, 30, 20))); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func samples(t testing.TB) map[media.Format][]byte {
	webp, err := os.ReadFile(filepath.Join("testdata", "tiny.webp"))
	if err != nil {
		t.Fatal(err)
	}
	heif := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "images", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return map[media.Format][]byte{
		media.HEIC: heif("elephants.heic"),
		media.AVIF: heif("elephants.avif"),
		media.JPEG: encoded(t, func(b *bytes.Buffer, i image.Image) error { return jpeg.Encode(b, i, nil) }),
		media.PNG:  encoded(t, func(b *bytes.Buffer, i image.Image) error { return png.Encode(b, i) }),
		media.GIF:  encoded(t, func(b *bytes.Buffer, i image.Image) error { return gif.Encode(b, i, nil) }),
		media.BMP:  encoded(t, func(b *bytes.Buffer, i image.Image) error { return bmp.Encode(b, i) }),
		media.TIFF: encoded(t, func(b *bytes.Buffer, i image.Image) error { return tiff.Encode(b, i, nil) }),
		media.WebP: webp,
	}
}

func TestInspectEveryFormatByContent(t *testing.T) {
	for want, data := range samples(t) {
		info, err := media.Inspect(data, lim)
		if err != nil {
			t.Errorf("%s: %v", want, err)
			continue
		}
		if info.Format != want || info.Width == 0 || info.Height == 0 {
			t.Errorf("%s: got %+v", want, info)
		}
		if _, err := media.Decode(data, nil); err != nil {
			t.Errorf("%s: decode: %v", want, err)
		}
	}
}

func TestInspectRejections(t *testing.T) {
	jpg := samples(t)[media.JPEG]
	bomb, err := os.ReadFile(filepath.Join("..", "..", "testdata", "images", "bad", "bomb.png"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		data []byte
		lim  media.Limits
		want failure.Reason
	}{
		{"empty", nil, lim, failure.Empty},
		{"text", []byte("hello, I am not an image at all"), lim, failure.UnsupportedType},
		{"pdf", []byte("%PDF-1.7\n%âãÏÓ\n1 0 obj"), lim, failure.UnsupportedType},
		{"header only", jpg[:4], lim, failure.Corrupt},
		{"too large", jpg, media.Limits{MaxBytes: 10, MaxPixels: lim.MaxPixels}, failure.TooLarge},
		{"too many pixels", jpg, media.Limits{MaxBytes: lim.MaxBytes, MaxPixels: 599}, failure.TooManyPixels},
		{"png bomb", bomb, lim, failure.TooManyPixels},
		{"heic over its own limit", samples(t)[media.HEIC], media.Limits{MaxBytes: lim.MaxBytes, MaxPixels: lim.MaxPixels, MaxHEICPixels: 10_000, MaxAVIFPixels: lim.MaxAVIFPixels}, failure.TooManyPixels},
		{"avif over its own limit", samples(t)[media.AVIF], media.Limits{MaxBytes: lim.MaxBytes, MaxPixels: lim.MaxPixels, MaxHEICPixels: lim.MaxHEICPixels, MaxAVIFPixels: 10_000}, failure.TooManyPixels},
		{"heif ftyp, no picture brand", []byte("\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1miaf"), lim, failure.UnsupportedType},
		{"mp4", []byte("\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"), lim, failure.UnsupportedType},
		{"truncated heic", samples(t)[media.HEIC][:200], lim, failure.Corrupt},
	}
	for _, c := range cases {
		_, err := media.Inspect(c.data, c.lim)
		if got := failure.ReasonOf(err); got != c.want {
			t.Errorf("%s: reason %q (err %v), want %q", c.name, got, err, c.want)
		}
		if failure.Classify(err) != failure.IsPermanent {
			t.Errorf("%s: not permanent", c.name)
		}
	}
	if _, err := media.Decode(jpg[:len(jpg)-40], nil); failure.ReasonOf(err) != failure.Corrupt {
		t.Errorf("truncated JPEG decode: %v, want corrupt", err)
	}
}

// A JPEG is decoded at the largest reduction that covers the need with its margin, upright, with its full
// upright size reported; the pixels agree with the standard decoder's.
func TestDecodeReducedAndUpright(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "images", "rotated-exif6.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	std, err := imaging.Decode(bytes.NewReader(data), imaging.AutoOrientation(true))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		needW, needH int
		size         image.Point
	}{
		{400, 600, image.Pt(400, 600)}, // all of it
		{150, 220, image.Pt(200, 300)}, // 1/2 covers it 1.3 times over
		{160, 10, image.Pt(400, 600)},  // 1/2 is 200 wide: under 1.3 × 160
		{33, 50, image.Pt(100, 150)},   // 1/4 covers it 3 times over; 1/8 does not
		{16, 25, image.Pt(50, 75)},     // 1/8 covers it 3 times over
	}
	for _, c := range cases {
		var asked image.Point
		d, err := media.Decode(data, func(w, h int) (int, int) {
			asked = image.Pt(w, h)
			return c.needW, c.needH
		})
		if err != nil {
			t.Fatal(err)
		}
		if asked != image.Pt(400, 600) || d.Width != 400 || d.Height != 600 {
			t.Errorf("need %dx%d: asked for %v, full size %dx%d; want the upright 400x600", c.needW, c.needH, asked, d.Width, d.Height)
		}
		if got := d.Image.Bounds().Size(); got != c.size {
			t.Errorf("need %dx%d: decoded %v, want %v", c.needW, c.needH, got, c.size)
			continue
		}
		want := imaging.Resize(std, c.size.X, c.size.Y, imaging.Box)
		if p := psnr(d.Image, want); p < 25 {
			t.Errorf("need %dx%d: PSNR %.1f dB against the standard decoder, want ≥ 25 (not upright?)", c.needW, c.needH, p)
		}
	}
}

func psnr(a, b image.Image) float64 {
	var sum float64
	ab := a.Bounds()
	for y := range ab.Dy() {
		for x := range ab.Dx() {
			r1, g1, b1, _ := a.At(ab.Min.X+x, ab.Min.Y+y).RGBA()
			r2, g2, b2, _ := b.At(b.Bounds().Min.X+x, b.Bounds().Min.Y+y).RGBA()
			for _, d := range []float64{float64(r1>>8) - float64(r2>>8), float64(g1>>8) - float64(g2>>8), float64(b1>>8) - float64(b2>>8)} {
				sum += d * d
			}
		}
	}
	return 10 * math.Log10(255*255/max(sum/float64(3*ab.Dx()*ab.Dy()), 1e-9))
}

// HEIF files are told apart by their ftyp brands: the major brand, or for a generic one
// (mif1, msf1) the compatible brands.
func TestSniffHEIFBrands(t *testing.T) {
	ftyp := func(major string, compat ...string) []byte {
		b := append([]byte{0, 0, 0, byte(16 + 4*len(compat))}, "ftyp"+major+"\x00\x00\x00\x00"...)
		for _, c := range compat {
			b = append(b, c...)
		}
		return b
	}
	cases := []struct {
		head []byte
		want media.Format
	}{
		{ftyp("heic", "mif1", "heic"), media.HEIC},
		{ftyp("heix"), media.HEIC},
		{ftyp("mif1", "mif1", "heic"), media.HEIC},
		{ftyp("avif", "avif", "mif1"), media.AVIF},
		{ftyp("mif1", "miaf", "avif"), media.AVIF},
		{ftyp("avis"), media.AVIF},
		{ftyp("mif1", "miaf"), ""},
		{ftyp("isom", "avif"[:0]), ""},
		// The box says it ends before the brand: the brand is not the box's.
		{append(ftyp("mif1")[:0:0], append([]byte{0, 0, 0, 16}, "ftypmif1\x00\x00\x00\x00avif"...)...), ""},
	}
	for _, c := range cases {
		got, ok := media.Sniff(c.head)
		if got != c.want || ok != (c.want != "") {
			t.Errorf("%q: %q %v, want %q", c.head, got, ok, c.want)
		}
	}
}

// A HEIC and an AVIF photo decode to their full size, close to the JPEG they were made from
// (testdata/README.md), and take the planar path where the decoder gives YCbCr.
func TestDecodeHEIF(t *testing.T) {
	ref, err := os.ReadFile(filepath.Join("..", "..", "testdata", "images", "elephants.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	full, err := imaging.Decode(bytes.NewReader(ref))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []media.Format{media.HEIC, media.AVIF} {
		data := samples(t)[f]
		info, err := media.Inspect(data, lim)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		d, err := media.Decode(data, nil)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if d.Width != info.Width || d.Height != info.Height || d.Image.Bounds().Size() != image.Pt(info.Width, info.Height) {
			t.Fatalf("%s: decoded %v (%d×%d), header says %d×%d", f, d.Image.Bounds(), d.Width, d.Height, info.Width, info.Height)
		}
		want := imaging.Resize(full, info.Width, info.Height, imaging.Lanczos)
		if p := psnr(d.Image, want); p < 28 { // both were made at quality 50
			t.Errorf("%s: PSNR %.1f dB against the JPEG it was made from", f, p)
		}
		if _, planar := d.Image.(*image.YCbCr); f == media.HEIC && !planar {
			t.Errorf("heic: decoded as %T, want *image.YCbCr (what the planar resize takes)", d.Image)
		}
	}
}

func TestSniffIgnoresNamesAndNeedsMagic(t *testing.T) {
	if f, ok := media.Sniff([]byte("RIFF\x00\x00\x00\x00WAVEfmt ")); ok {
		t.Errorf("a WAV file sniffed as %s", f)
	}
	if f, ok := media.Sniff([]byte("BM")); ok {
		t.Errorf("two bytes sniffed as %s", f)
	}
}

func FuzzInspectDecode(f *testing.F) {
	for _, data := range samples(f) {
		f.Add(data)
	}
	for _, data := range bombs(f) {
		f.Add(data)
	}
	// The repository's small sample files, good and bad (the 2 MB photo would only slow fuzzing).
	files, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "images", "*", "*"))
	more, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "images", "*.*"))
	webp, _ := filepath.Glob(filepath.Join("testdata", "webp", "*.webp"))
	orients, _ := filepath.Glob(filepath.Join("testdata", "orient", "*"))
	tagged, _ := filepath.Glob(filepath.Join("testdata", "color", "*")) // the sources, not the .ref.png
	tagged = slices.DeleteFunc(tagged, func(f string) bool { return strings.HasSuffix(f, ".ref.png") })
	variants, _ := filepath.Glob(filepath.Join("testdata", "*", "*.tif"))
	unsupported, _ := filepath.Glob(filepath.Join("testdata", "unsupported", "*"))
	arith, _ := filepath.Glob(filepath.Join("testdata", "arith", "*.jpg"))
	unsupported = append(unsupported, arith...)
	for _, file := range slices.Concat(files, more, webp, orients, tagged, variants, unsupported) {
		if data, err := os.ReadFile(file); err == nil && len(data) <= 256<<10 {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := media.Inspect(data, media.Limits{MaxBytes: 1 << 20, MaxPixels: 1 << 20, MaxHEICPixels: 1 << 20, MaxAVIFPixels: 1 << 20})
		if err != nil {
			if failure.Classify(err) != failure.IsPermanent {
				t.Fatalf("rejection is not permanent: %v", err)
			}
			return
		}
		if frames, canvas, err := media.AnimationCost(info.Format, data); err == nil && frames > 1 &&
			media.CheckAnimation(frames, canvas, media.Limits{MaxPixels: 1 << 20, MaxAnimationFrames: 100}) == nil {
			if a, err := media.DecodeAnimation(info.Format, data); err == nil && len(a.Frames) > frames {
				t.Fatalf("decoded %d frames where the container has %d", len(a.Frames), frames)
			}
		}
		d, err := media.Decode(data, func(w, h int) (int, int) { return w / 3, h / 3 })
		if err != nil {
			return
		}
		b := d.Image.Bounds()
		if px := int64(d.Width) * int64(d.Height); px > 1<<20 {
			t.Fatalf("decoded %d pixels past the limit (%+v)", px, info)
		}
		if b.Dx() > d.Width || b.Dy() > d.Height || b.Dx() < d.Width/3 || b.Dy() < d.Height/3 {
			t.Fatalf("decoded %v for a full size of %d×%d and a need of a third", b, d.Width, d.Height)
		}
	})
}

// bombs are small files whose headers claim huge images: a decoder that believed them would
// allocate gigabytes.
func bombs(t testing.TB) map[string][]byte {
	t.Helper()
	png, err := os.ReadFile(filepath.Join("..", "..", "testdata", "images", "bad", "bomb.png"))
	if err != nil {
		t.Fatal(err)
	}
	s := samples(t)
	le16 := func(b []byte, v uint16) { b[0], b[1] = byte(v), byte(v>>8) }
	be16 := func(b []byte, v uint16) { b[0], b[1] = byte(v>>8), byte(v) }

	gifBomb := bytes.Clone(s[media.GIF]) // logical screen 65535×65535
	le16(gifBomb[6:], 0xffff)
	le16(gifBomb[8:], 0xffff)

	jpgBomb := bytes.Clone(s[media.JPEG]) // SOF: 65535×65535
	sof := bytes.Index(jpgBomb, []byte{0xff, 0xc0})
	if sof < 0 {
		t.Fatal("no SOF0 in the sample JPEG")
	}
	be16(jpgBomb[sof+5:], 0xffff)
	be16(jpgBomb[sof+7:], 0xffff)

	tiffBomb := bytes.Clone(s[media.TIFF]) // ImageWidth and ImageLength: 65535 or 1000000
	ifd := int(uint32(tiffBomb[4]) | uint32(tiffBomb[5])<<8 | uint32(tiffBomb[6])<<16 | uint32(tiffBomb[7])<<24)
	n := int(tiffBomb[ifd]) | int(tiffBomb[ifd+1])<<8
	for i := range n {
		e := tiffBomb[ifd+2+12*i:]
		if tag := int(e[0]) | int(e[1])<<8; tag == 256 || tag == 257 {
			if typ := int(e[2]) | int(e[3])<<8; typ == 3 {
				le16(e[8:], 0xffff)
			} else {
				e[8], e[9], e[10], e[11] = 0x40, 0x42, 0x0f, 0x00 // 1000000
			}
		}
	}

	bmpBomb := bytes.Clone(s[media.BMP]) // BITMAPINFOHEADER width and height: 1000000
	copy(bmpBomb[18:], []byte{0x40, 0x42, 0x0f, 0x00, 0x40, 0x42, 0x0f, 0x00})

	// WebP VP8X: canvas 16384×16384 (24-bit sizes, stored minus one).
	webpBomb := []byte("RIFF\x16\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00\x00\x00\x00\x00\xff\x3f\x00\xff\x3f\x00")

	// HEIC and AVIF: the image spatial extents property (ispe: version and flags, then 32-bit
	// width and height) says 16000×16000 (libavif calls anything over 16384×16384 corrupt).
	heifBomb := func(f media.Format) []byte {
		b := bytes.Clone(s[f])
		i := bytes.Index(b, []byte("ispe"))
		if i < 0 {
			t.Fatalf("no ispe box in the sample %s", f)
		}
		binary.BigEndian.PutUint32(b[i+8:], 16000)
		binary.BigEndian.PutUint32(b[i+12:], 16000)
		return b
	}
	return map[string][]byte{"png": png, "gif": gifBomb, "jpeg": jpgBomb, "tiff": tiffBomb, "bmp": bmpBomb, "webp": webpBomb,
		"heic": heifBomb(media.HEIC), "avif": heifBomb(media.AVIF)}
}

// Decompression bombs are rejected from their headers, before any large allocation: the heap
// allocated while inspecting each stays under 1 MiB (8 MiB for AVIF, see below).
func TestBombsAreRejectedBeforeAllocating(t *testing.T) {
	const bound = 1 << 20
	// The HEIF decoders' WebAssembly modules are compiled once per process, on first use: not
	// counted here.
	heic.Init()
	avif.InitDecoder()
	for name, data := range bombs(t) {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err := media.Inspect(data, media.Limits{MaxBytes: 50 << 20, MaxPixels: 40_000_000, MaxHEICPixels: 13_000_000, MaxAVIFPixels: 6_000_000})
			runtime.ReadMemStats(&after)
			if got := failure.ReasonOf(err); got != failure.TooManyPixels {
				t.Fatalf("reason %q (err %v), want too_many_pixels", got, err)
			}
			limit := uint64(bound)
			if name == "avif" {
				// libavif's module is instantiated for each header read: a fixed 4 MB of
				// WebAssembly memory, whatever the header claims.
				limit = 8 * bound
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > limit {
				t.Errorf("allocated %d bytes rejecting it, want at most %d", alloc, limit)
			}
		})
	}
}

// Turning the planes gives the pixels imaging's transforms give (checked exactly where chroma
// is not subsampled), and each sample comes from where EXIF says, for every orientation and
// every subsampling that survives a turn.
func TestOrientPlanesMatchesImaging(t *testing.T) {
	for _, ratio := range []image.YCbCrSubsampleRatio{image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio420, image.YCbCrSubsampleRatio422, image.YCbCrSubsampleRatio440} {
		src := image.NewYCbCr(image.Rect(0, 0, 6, 4), ratio)
		for i := range src.Y {
			src.Y[i] = uint8(i * 9)
		}
		for i := range src.Cb {
			src.Cb[i], src.Cr[i] = uint8(100+i*5), uint8(90+i*7)
		}
		gray := image.NewGray(src.Rect)
		copy(gray.Pix, src.Y)
		for o := 2; o <= 8; o++ {
			for _, m := range []image.Image{src, gray} {
				got, ok := media.OrientPlanes(m, o)
				if !ok {
					t.Fatalf("%v %T: orientation %d not turned on planes", ratio, m, o)
				}
				want := imaging.Clone(orientWithImaging(m, o))
				if got.Bounds().Size() != want.Bounds().Size() {
					t.Fatalf("%v %T, orientation %d: size %v, want %v", ratio, m, o, got.Bounds().Size(), want.Bounds().Size())
				}
				for y := range want.Bounds().Dy() {
					for x := range want.Bounds().Dx() {
						// Even sizes: every chroma block lands on a chroma block.
						gy, gb, gr := ycc(got.At(x, y))
						wy, wb, wr := ycc(m.At(sourceOf(o, x, y, 6, 4)))
						if gy != wy || gb != wb || gr != wr {
							t.Fatalf("%v %T, orientation %d: (%d,%d) YCbCr %d %d %d, want %d %d %d", ratio, m, o, x, y, gy, gb, gr, wy, wb, wr)
						}
						if ratio == image.YCbCrSubsampleRatio444 {
							g, w := color.NRGBAModel.Convert(got.At(x, y)), want.At(x, y)
							if g != w {
								t.Fatalf("444, orientation %d: (%d,%d) %v, want %v", o, x, y, g, w)
							}
						}
					}
				}
			}
		}
	}
}

func ycc(c color.Color) (uint8, uint8, uint8) {
	switch c := c.(type) {
	case color.YCbCr:
		return c.Y, c.Cb, c.Cr
	case color.Gray:
		return c.Y, 128, 128
	}
	panic("unexpected colour type")
}

// sourceOf is where upright pixel (x, y) comes from in a w×h stored image, per EXIF.
func sourceOf(o, x, y, w, h int) (int, int) {
	switch o {
	case 2:
		return w - 1 - x, y
	case 3:
		return w - 1 - x, h - 1 - y
	case 4:
		return x, h - 1 - y
	case 5:
		return y, x
	case 6:
		return y, h - 1 - x
	case 7:
		return w - 1 - y, h - 1 - x
	}
	return w - 1 - y, x
}

func orientWithImaging(img image.Image, o int) image.Image {
	return []func(image.Image) *image.NRGBA{imaging.FlipH, imaging.Rotate180, imaging.FlipV, imaging.Transpose, imaging.Rotate270, imaging.Transverse, imaging.Rotate90}[o-2](img)
}
