package media_test

import (
	"bytes"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/sluice-dev/sluice/pkg/media"
)

// The authorship meta.jpg states (ExifTool wrote it, with GPS, a serial number, the camera, a
// thumbnail, an IPTC city and an XMP creator tool beside it; testdata/README.md) is read, all
// of it and nothing else.
func TestReadRights(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "meta", "meta.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	got := media.ReadRights(media.JPEG, data)
	want := media.Rights{
		Artist: "Ann Example", Copyright: "© 2026 Ann Example",
		ByLine: []string{"Ann Example"}, Credit: "Example Agency", CopyrightNotice: "© 2026 Ann Example",
		Creators: []string{"Ann Example", "Bo Example"}, Rights: "All rights reserved",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("read %+v\nwant %+v", got, want)
	}
}

// Written into a rendition, the authorship reads back whole, and the rendition holds nothing
// else of the source's metadata: no GPS, serial number, camera, thumbnail, city or tool.
func TestEmbedRightsKeepsOnlyAuthorship(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "meta", "meta.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	rights := media.ReadRights(media.JPEG, data)
	var plain bytes.Buffer
	if err := jpeg.Encode(&plain, image.NewGray(image.Rect(0, 0, 32, 24)), nil); err != nil {
		t.Fatal(err)
	}
	out, err := media.EmbedRights(plain.Bytes(), rights)
	if err != nil {
		t.Fatal(err)
	}
	if got := media.ReadRights(media.JPEG, out); !reflect.DeepEqual(got, rights) {
		t.Errorf("read back %+v\nwant %+v", got, rights)
	}
	for _, absent := range []string{"GPS", "SN123456", "Canon", "EOS", "Paris", "Secret Editor"} {
		if bytes.Contains(out, []byte(absent)) {
			t.Errorf("the rendition holds %q", absent)
		}
	}
	if n := bytes.Count(out, []byte{0xFF, 0xD8, 0xFF}); n != 1 {
		t.Errorf("%d JPEG starts: a thumbnail came along", n)
	}
	if _, err := jpeg.Decode(bytes.NewReader(out)); err != nil {
		t.Errorf("the rendition no longer decodes: %v", err)
	}
	if same, _ := media.EmbedRights(plain.Bytes(), media.Rights{}); !bytes.Equal(same, plain.Bytes()) {
		t.Error("no authorship still changed the file")
	}
}

func FuzzReadRights(f *testing.F) {
	data, err := os.ReadFile(filepath.Join("testdata", "meta", "meta.jpg"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Fuzz(func(t *testing.T, b []byte) {
		r := media.ReadRights(media.JPEG, b)
		if !r.Empty() {
			if _, err := media.EmbedRights([]byte{0xFF, 0xD8, 0xFF, 0xD9}, r); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// A Photoshop resource block of odd size at the very end (its padding byte missing) is read
// without running past the data.
func TestPhotoshopBlockOfOddSizeAtTheEnd(t *testing.T) {
	irb := append([]byte("Photoshop 3.0\x008BIM\x04\x01\x00\x00\x00\x00\x00\x03"), "abc"...)
	n := len(irb) + 2
	jpg := append([]byte{0xFF, 0xD8, 0xFF, 0xED, byte(n >> 8), byte(n)}, irb...)
	jpg = append(jpg, 0xFF, 0xD9)
	if r := media.ReadRights(media.JPEG, jpg); !r.Empty() {
		t.Errorf("read %+v from a block with no IPTC", r)
	}
}
