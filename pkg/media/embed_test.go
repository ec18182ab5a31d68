package media_test

import (
	"bytes"
	"image"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluice-dev/sluice/pkg/icc/icctest"
	"github.com/sluice-dev/sluice/pkg/media"
)

// A kept profile goes into a rendition of each output format without touching its pixels:
// decoded again, the rendition names the profile (and converts through it), and its raw pixels
// are the ones written.
func TestEmbedProfileInEachFormat(t *testing.T) {
	p3, err := os.ReadFile(filepath.Join("..", "icc", "testdata", "p3.icc"))
	if err != nil {
		t.Fatal(err)
	}
	big := append(append([]byte(nil), p3...), make([]byte, 70000)...) // over one APP2 segment
	copy(big, p3)
	chart := readPNG(t, filepath.Join("testdata", "color", "p3.png.ref.png"))
	var jpg, pngb bytes.Buffer
	if err := jpeg.Encode(&jpg, chart, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(&pngb, chart); err != nil {
		t.Fatal(err)
	}
	webp := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", "webp", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, c := range []struct {
		name string
		f    media.Format
		body []byte
		prof []byte
	}{
		{"jpeg", media.JPEG, jpg.Bytes(), p3},
		{"jpeg, two segments", media.JPEG, jpg.Bytes(), big},
		{"png", media.PNG, pngb.Bytes(), p3},
		{"webp lossy (VP8)", media.WebP, webp("levels-lossy.webp"), p3},
		{"webp lossless (VP8L)", media.WebP, tinyWebP(t), p3},
	} {
		out, err := media.EmbedProfile(c.f, c.body, c.prof)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		before, err := media.Decode(c.body, nil)
		if err != nil {
			t.Fatal(err)
		}
		kept, err := media.Decode(out, nil, media.KeepProfile())
		if err != nil {
			t.Fatalf("%s: the embedded file does not decode: %v", c.name, err)
		}
		if !kept.Color.Kept || kept.Color.Profile != "sP3C" || !bytes.Equal(kept.ICC, c.prof) {
			t.Errorf("%s: %+v, %d profile bytes; want the profile kept, whole", c.name, kept.Color, len(kept.ICC))
		}
		if !samePixels(before.Image, kept.Image) {
			t.Errorf("%s: the pixels changed", c.name)
		}
		converted, err := media.Decode(out, nil)
		if err != nil || !converted.Color.Converted {
			t.Errorf("%s: decoded without keeping: %+v %v", c.name, converted.Color, err)
		}
	}
}

// KeepProfile leaves a P3 source's pixels as stored and hands back its profile; a CMYK source is
// converted all the same (no CMYK rendition exists).
func TestKeepProfile(t *testing.T) {
	for _, c := range []struct {
		file      string
		kept      bool
		converted bool
	}{{"p3.jpg", true, false}, {"p3.png", true, false}, {"cmyk.jpg", false, true}} {
		data, err := os.ReadFile(filepath.Join("testdata", "color", c.file))
		if err != nil {
			t.Fatal(err)
		}
		d, err := media.Decode(data, nil, media.KeepProfile())
		if err != nil {
			t.Fatal(err)
		}
		if d.Color.Kept != c.kept || d.Color.Converted != c.converted || (d.ICC != nil) != c.kept {
			t.Errorf("%s: %+v (%d profile bytes)", c.file, d.Color, len(d.ICC))
		}
		if c.kept {
			raw, _, err := image.Decode(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			if mean, _ := icctest.DeltaE(d.Image, raw); mean > 0.5 { // the stored values, both read as sRGB
				t.Errorf("%s: kept pixels differ from the stored ones (mean ΔE2000 %.2f read as sRGB)", c.file, mean)
			}
		}
	}
}

func tinyWebP(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "tiny.webp")) // lossless: VP8L
	if err != nil {
		t.Fatal(err)
	}
	return b
}
