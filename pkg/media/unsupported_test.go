package media_test

import (
	"bytes"
	"errors"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/pkg/failure"
	"github.com/sluice-dev/sluice/pkg/icc/icctest"
	"github.com/sluice-dev/sluice/pkg/media"
)

// A file in a variant no decoder here reads is unsupported_type, naming the variant, never
// corrupt (they all were): lossless and 16-bit JPEGs, TIFFs with WebP compression.
func TestValidButUnsupportedIsNeverCorrupt(t *testing.T) {
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", "unsupported", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var base bytes.Buffer
	if err := jpeg.Encode(&base, image.NewGray(image.Rect(0, 0, 64, 48)), nil); err != nil {
		t.Fatal(err)
	}
	// A 16-bit extended-sequential header: SOF0 becomes SOF1 with 16-bit samples (the scan is
	// not re-coded: the header decides).
	sixteen := bytes.Replace(base.Bytes(), []byte{0xFF, 0xC0, 0x00, 0x0B, 0x08}, []byte{0xFF, 0xC1, 0x00, 0x0B, 0x10}, 1)
	// A lossless process (SOF3): the header decides here too.
	lossless := bytes.Replace(base.Bytes(), []byte{0xFF, 0xC0}, []byte{0xFF, 0xC3}, 1)
	for _, c := range []struct {
		name, want string
		data       []byte
	}{
		{"lossless", "lossless coding", lossless},
		{"16-bit", "16-bit samples", sixteen},
		{"tiff-webp.tif", "compression value 50001", read("tiff-webp.tif")},
	} {
		_, err := media.Inspect(c.data, lim)
		if err == nil {
			_, err = media.Decode(c.data, nil)
		}
		var perm *failure.PermanentError
		if !errors.As(err, &perm) || perm.Reason != failure.UnsupportedType || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want unsupported_type naming %q", c.name, err, c.want)
		}
	}
}

// Arithmetic-coded JPEGs (libjpeg-turbo writes them: cjpeg -arithmetic), sequential and
// progressive, decode as libjpeg-turbo decodes them; they were quarantined as corrupt.
func TestArithmeticCodedJPEGsDecode(t *testing.T) {
	for _, name := range []string{"arith.jpg", "arith-prog.jpg"} {
		data, err := os.ReadFile(filepath.Join("testdata", "arith", name))
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
		ref := readPNG(t, filepath.Join("testdata", "arith", name+".ref.png"))
		mean, p99 := icctest.DeltaE(d.Image, ref)
		t.Logf("%s against djpeg: mean ΔE2000 %.2f, p99 %.2f", name, mean, p99)
		if d.Image.Bounds() != ref.Bounds() || mean > 1 || p99 > 3 {
			t.Errorf("%s: %v against %v, mean ΔE2000 %.2f, p99 %.2f", name, d.Image.Bounds(), ref.Bounds(), mean, p99)
		}
	}
}

// A 12-bit JPEG (DCMTK's, extended sequential; pkg/jpegscale/testdata/twelve) decodes, in 8 bits;
// it was quarantined as corrupt.
func TestTwelveBitJPEGDecodes(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "jpegscale", "testdata", "twelve", "twelve.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := media.Inspect(data, lim); err != nil {
		t.Fatal(err)
	}
	d, err := media.Decode(data, nil)
	if err != nil || d.Image.Bounds().Size() != image.Pt(128, 96) {
		t.Fatalf("%v, %v", d.Image, err)
	}
}
