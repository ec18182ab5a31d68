package media_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluice-dev/sluice/pkg/icc/icctest"
	"github.com/sluice-dev/sluice/pkg/media"
)

// TIFFs with JPEG compression (in strips, and in tiles whose last row and column overhang the
// image) decode as libvips decodes them; they were quarantined as corrupt.
func TestTIFFWithJPEGCompression(t *testing.T) {
	for _, name := range []string{"tiff-jpeg.tif", "tiff-jpeg-tiled.tif"} {
		data, err := os.ReadFile(filepath.Join("testdata", "tiff-jpeg", name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := media.Inspect(data, lim); err != nil {
			t.Fatal(err)
		}
		d, err := media.Decode(data, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		ref := readPNG(t, filepath.Join("testdata", "tiff-jpeg", name+".ref.png"))
		if d.Image.Bounds() != ref.Bounds() {
			t.Fatalf("%s: %v, want %v", name, d.Image.Bounds(), ref.Bounds())
		}
		mean, p99 := icctest.DeltaE(d.Image, ref)
		t.Logf("%s against libvips: mean ΔE2000 %.2f, p99 %.2f", name, mean, p99)
		if mean > 1 || p99 > 3 {
			t.Errorf("%s: mean ΔE2000 %.2f, p99 %.2f against libvips's decode", name, mean, p99)
		}
	}
}

// A piece whose own JPEG header claims more than its strip is refused before it is decoded.
func TestTIFFJPEGPieceBomb(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "tiff-jpeg", "tiff-jpeg.tif"))
	if err != nil {
		t.Fatal(err)
	}
	bomb := append([]byte(nil), data...)
	i := bytes.Index(bomb, []byte{0xFF, 0xC0, 0x00, 0x11, 0x08})
	if i < 0 {
		t.Fatal("no SOF0 in the fixture")
	}
	copy(bomb[i+5:], []byte{0x7F, 0xFF, 0x7F, 0xFF}) // 32767 × 32767
	if _, err := media.Decode(bomb, nil); err == nil {
		t.Error("a piece claiming 32767×32767 was decoded")
	}
}

// Of a multi-page TIFF, the first page is the image (as libvips reads page 0).
func TestMultiPageTIFFGivesItsFirstPage(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "tiff", "multipage.tif"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := media.Decode(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	ref := readPNG(t, filepath.Join("testdata", "tiff", "multipage.tif.ref.png"))
	if d.Image.Bounds() != ref.Bounds() {
		t.Fatalf("%v, want the first page's %v", d.Image.Bounds(), ref.Bounds())
	}
	if mean, _ := icctest.DeltaE(d.Image, ref); mean > 0.01 {
		t.Errorf("mean ΔE2000 %.2f against page 0", mean)
	}
}
