package media_test

import (
	"bytes"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"

	"github.com/sluice-dev/sluice/pkg/failure"
	"github.com/sluice-dev/sluice/pkg/media"
)

var lim = media.Limits{MaxBytes: 10 << 20, MaxPixels: 4_000_000}

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
	return map[media.Format][]byte{
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
		if _, err := media.Decode(data); err != nil {
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
	if _, err := media.Decode(jpg[:len(jpg)-40]); failure.ReasonOf(err) != failure.Corrupt {
		t.Errorf("truncated JPEG decode: %v, want corrupt", err)
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
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := media.Inspect(data, media.Limits{MaxBytes: 1 << 20, MaxPixels: 1 << 20})
		if err != nil {
			if failure.Classify(err) != failure.IsPermanent {
				t.Fatalf("rejection is not permanent: %v", err)
			}
			return
		}
		img, err := media.Decode(data)
		if err != nil {
			return
		}
		if px := int64(img.Bounds().Dx()) * int64(img.Bounds().Dy()); px > 1<<20 {
			t.Fatalf("decoded %d pixels past the limit (%+v)", px, info)
		}
	})
}
