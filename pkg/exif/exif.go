// Package exif reads the two fields sluice acts on from the first directory (IFD0) of a TIFF
// structure: the orientation (tag 0x0112), from EXIF wherever it lives (a JPEG's APP1 segment
// after "Exif\0\0", a PNG's eXIf chunk, a TIFF file itself), and a TIFF file's ICC profile
// (tag 34675). It is ours because that is two tags of one directory, read from untrusted bytes
// with every offset checked; EXIF libraries parse every directory of the file.
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
	bo, e := ifd0Entry(tiff, 0x0112)
	// A SHORT, count 1: the value sits in the first two bytes of the value field.
	if e == nil || bo.Uint16(e[2:]) != 3 || bo.Uint32(e[4:]) != 1 {
		return 0
	}
	if o := int(bo.Uint16(e[8:])); o >= 1 && o <= 8 {
		return o
	}
	return 0
}

// ICCProfile is the ICC profile a TIFF file embeds (tag 34675, InterColorProfile, in IFD0), or
// nil.
func ICCProfile(tiff []byte) []byte {
	bo, e := ifd0Entry(tiff, 34675)
	if e == nil {
		return nil
	}
	typ, n := bo.Uint16(e[2:]), int64(bo.Uint32(e[4:]))
	if (typ != 7 && typ != 1) || n <= 4 { // UNDEFINED or BYTE; a profile is never 4 bytes
		return nil
	}
	off := int64(bo.Uint32(e[8:]))
	if off+n > int64(len(tiff)) {
		return nil
	}
	return tiff[off : off+n]
}

// ifd0Entry is the 12-byte IFD0 entry of tag in the TIFF structure tiff, with its byte order;
// nil when there is none or tiff is not a TIFF structure.
func ifd0Entry(tiff []byte, tag uint16) (binary.ByteOrder, []byte) {
	if len(tiff) < 8 {
		return nil, nil
	}
	var bo binary.ByteOrder
	switch string(tiff[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return nil, nil
	}
	if bo.Uint16(tiff[2:]) != 42 {
		return nil, nil
	}
	ifd := int64(bo.Uint32(tiff[4:]))
	if ifd+2 > int64(len(tiff)) {
		return nil, nil
	}
	entries := int64(bo.Uint16(tiff[ifd:]))
	for i := range entries {
		e := ifd + 2 + i*12
		if e+12 > int64(len(tiff)) {
			return nil, nil
		}
		if bo.Uint16(tiff[e:]) == tag {
			return bo, tiff[e : e+12]
		}
	}
	return nil, nil
}
