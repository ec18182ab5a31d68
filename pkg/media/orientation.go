package media

import (
	"bytes"
	"encoding/binary"

	"github.com/sluice-dev/sluice/pkg/exif"
)

// fileOrientation is the EXIF orientation a JPEG (its APP1 Exif segment), a PNG (its eXIf chunk)
// or a TIFF (tag 274 of its first directory) states, as browsers and libvips apply it; 0 for
// none.
func fileOrientation(f Format, data []byte) int {
	switch f {
	case JPEG:
		o := 0
		jpegSegments(data, func(m byte, seg []byte) bool {
			if m == 0xE1 && bytes.HasPrefix(seg, []byte(exif.Prefix)) {
				o = exif.Orientation(seg)
			}
			return o == 0
		})
		return o
	case PNG:
		return exif.Orientation(pngChunk(data, "eXIf"))
	case TIFF:
		return exif.Orientation(data)
	}
	return 0
}

// pngChunk is the data of the first chunk of type typ in a PNG, or nil: the chunks are walked
// by their headers up to IEND, each length checked against what is left.
func pngChunk(data []byte, typ string) []byte {
	const signature = 8
	for at := signature; at+8 <= len(data); {
		n := int64(binary.BigEndian.Uint32(data[at:]))
		t := string(data[at+4 : at+8])
		end := int64(at) + 8 + n
		if end > int64(len(data)) {
			return nil
		}
		switch t {
		case typ:
			return data[at+8 : end]
		case "IEND":
			return nil
		}
		at = int(end) + 4 // the CRC
	}
	return nil
}
