// Package exif reads the one EXIF field sluice acts on, the orientation (tag 0x0112 of IFD0),
// from the TIFF structure EXIF is: a JPEG's APP1 segment after "Exif\0\0", a PNG's eXIf chunk,
// a TIFF file itself. It is ours because that is one tag of one directory, read from untrusted
// bytes with every offset checked; EXIF libraries parse every directory of the file.
package exif

import (
	"bytes"
	"encoding/binary"
)

// Prefix starts an APP1 segment that holds EXIF (and, wrongly, some PNG eXIf chunks).
const Prefix = "Exif\x00\x00"

// Orientation is the orientation (1 to 8) that the TIFF structure tiff states in IFD0; 0 when
// it states none, or an invalid one, or tiff is not a TIFF structure. A leading Prefix is
// skipped.
func Orientation(tiff []byte) int {
	tiff = bytes.TrimPrefix(tiff, []byte(Prefix))
	if len(tiff) < 8 {
		return 0
	}
	var bo binary.ByteOrder
	switch string(tiff[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 0
	}
	if bo.Uint16(tiff[2:]) != 42 {
		return 0
	}
	ifd := int64(bo.Uint32(tiff[4:]))
	if ifd+2 > int64(len(tiff)) {
		return 0
	}
	entries := int64(bo.Uint16(tiff[ifd:]))
	for i := range entries {
		e := ifd + 2 + i*12
		if e+12 > int64(len(tiff)) {
			return 0
		}
		if bo.Uint16(tiff[e:]) != 0x0112 {
			continue
		}
		// A SHORT, count 1: the value sits in the first two bytes of the value field.
		if bo.Uint16(tiff[e+2:]) != 3 || bo.Uint32(tiff[e+4:]) != 1 {
			return 0
		}
		if o := int(bo.Uint16(tiff[e+8:])); o >= 1 && o <= 8 {
			return o
		}
		return 0
	}
	return 0
}
