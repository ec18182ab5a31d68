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
	"github.com/sluice-dev/sluice/pkg/media"
)

// A valid file in a variant no decoder here reads is unsupported_type, naming the variant,
// never corrupt (they all were): arithmetic-coded JPEGs (libjpeg-turbo writes them), 12-bit
// JPEGs, TIFFs with WebP compression.
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
	// A 12-bit extended-sequential header: SOF0 becomes SOF1 with 12-bit samples (the scan is
	// not re-coded: the header decides).
	twelve := bytes.Replace(base.Bytes(), []byte{0xFF, 0xC0, 0x00, 0x0B, 0x08}, []byte{0xFF, 0xC1, 0x00, 0x0B, 0x0C}, 1)
	for _, c := range []struct {
		name, want string
		data       []byte
	}{
		{"arith.jpg", "arithmetic-coded sequential", read("arith.jpg")},
		{"arith-prog.jpg", "arithmetic-coded progressive", read("arith-prog.jpg")},
		{"12-bit", "12-bit samples", twelve},
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
