// Package exif reads the few fields sluice acts on from the first directory (IFD0) of a TIFF
// structure, EXIF's wherever it lives (a JPEG's APP1 segment after "Exif\0\0", a PNG's eXIf
// chunk, a WebP's EXIF chunk) or a TIFF file's: the orientation (tag 0x0112), the Artist and
// Copyright texts, a TIFF's ICC profile, XMP packet and IPTC data; and writes an IFD0 of ASCII
// tags. It is ours because that is a handful of tags of one directory, read from untrusted
// bytes with every offset checked; EXIF libraries parse every directory of the file.
package exif

import (
	"bytes"
	"encoding/binary"
	"slices"
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
func ICCProfile(tiff []byte) []byte { return Bytes(tiff, 34675) }

// ASCII is the text of an ASCII tag (type 2) in IFD0 of the TIFF structure tiff (a leading
// Prefix skipped), without its terminating NULs; "" when absent or malformed.
func ASCII(tiff []byte, tag uint16) string {
	tiff = bytes.TrimPrefix(tiff, []byte(Prefix))
	bo, e := ifd0Entry(tiff, tag)
	if e == nil || bo.Uint16(e[2:]) != 2 {
		return ""
	}
	n := int64(bo.Uint32(e[4:]))
	value := e[8:12]
	if n > 4 {
		off := int64(bo.Uint32(e[8:]))
		if off+n > int64(len(tiff)) {
			return ""
		}
		value = tiff[off : off+n]
	} else if n >= 0 {
		value = value[:n]
	}
	return string(bytes.TrimRight(value, "\x00"))
}

// Bytes is the value of an UNDEFINED or BYTE tag (types 7, 1) of IFD0 stored apart from its
// entry (more than 4 bytes): an ICC profile, an XMP packet (700), IPTC data (33723, also found
// as LONG, type 4); nil when absent or malformed.
func Bytes(tiff []byte, tag uint16) []byte {
	bo, e := ifd0Entry(tiff, tag)
	if e == nil {
		return nil
	}
	typ, n := bo.Uint16(e[2:]), int64(bo.Uint32(e[4:]))
	if typ == 4 {
		n *= 4
	}
	if (typ != 7 && typ != 1 && typ != 4) || n <= 4 {
		return nil
	}
	off := int64(bo.Uint32(e[8:]))
	if off+n > int64(len(tiff)) {
		return nil
	}
	return tiff[off : off+n]
}

// maxUints bounds the values Uints returns (a TIFF's strip or tile offsets).
const maxUints = 1 << 20

// Uints is the values of a SHORT or LONG tag (types 3, 4) of IFD0 of the TIFF structure tiff,
// inline or stored apart; nil when absent or malformed.
func Uints(tiff []byte, tag uint16) []uint32 {
	bo, e := ifd0Entry(tiff, tag)
	if e == nil {
		return nil
	}
	typ, n := bo.Uint16(e[2:]), int64(bo.Uint32(e[4:]))
	size := int64(2)
	if typ == 4 {
		size = 4
	} else if typ != 3 {
		return nil
	}
	if n < 1 || n > maxUints {
		return nil
	}
	data := e[8:12]
	if n*size > 4 {
		off := int64(bo.Uint32(e[8:]))
		if off+n*size > int64(len(tiff)) {
			return nil
		}
		data = tiff[off : off+n*size]
	}
	out := make([]uint32, n)
	for i := range out {
		if size == 2 {
			out[i] = uint32(bo.Uint16(data[2*i:]))
		} else {
			out[i] = bo.Uint32(data[4*i:])
		}
	}
	return out
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

// Tags sluice reads and writes.
const (
	Artist    uint16 = 0x013B
	Copyright uint16 = 0x8298
	XMP       uint16 = 700
	IPTC      uint16 = 33723
)

// WriteASCII makes an APP1 Exif payload ("Exif\0\0" and a big-endian TIFF structure) whose only
// directory holds the given ASCII tags (those with text), in tag order, and no other directory.
func WriteASCII(tags map[uint16]string) []byte {
	keys := make([]uint16, 0, len(tags))
	for k, v := range tags {
		if v != "" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	bo := binary.BigEndian
	b := append([]byte(Prefix), "MM\x00\x2a\x00\x00\x00\x08"...)
	b = bo.AppendUint16(b, uint16(len(keys)))
	data := 8 + 2 + 12*len(keys) + 4 // where values start, in the TIFF structure
	var values []byte
	for _, k := range keys {
		v := append([]byte(tags[k]), 0)
		b = bo.AppendUint16(b, k)
		b = bo.AppendUint16(b, 2)
		b = bo.AppendUint32(b, uint32(len(v)))
		if len(v) <= 4 {
			b = append(b, append(v, make([]byte, 4-len(v))...)...)
			continue
		}
		b = bo.AppendUint32(b, uint32(data+len(values)))
		values = append(values, v...)
		if len(values)%2 == 1 {
			values = append(values, 0)
		}
	}
	b = bo.AppendUint32(b, 0) // no next directory: no thumbnail
	return append(b, values...)
}
