// Package icctest builds small ICC profiles for tests: the header, the tag table and the tag
// types package icc reads.
package icctest

import (
	"encoding/binary"
	"math"
	"sort"
	"unicode/utf16"
)

// Profile assembles a profile of the given colour space and PCS ("RGB ", "XYZ ") with tags.
func Profile(space, pcs string, tags map[string][]byte) []byte {
	sigs := make([]string, 0, len(tags))
	for s := range tags {
		sigs = append(sigs, s)
	}
	sort.Strings(sigs)
	b := make([]byte, 132+12*len(sigs))
	binary.BigEndian.PutUint32(b[8:], 0x02100000)
	copy(b[12:], "mntr")
	copy(b[16:], space)
	copy(b[20:], pcs)
	copy(b[36:], "acsp")
	binary.BigEndian.PutUint32(b[128:], uint32(len(sigs)))
	for i, s := range sigs {
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		e := b[132+12*i:]
		copy(e, s)
		binary.BigEndian.PutUint32(e[4:], uint32(len(b)))
		binary.BigEndian.PutUint32(e[8:], uint32(len(tags[s])))
		b = append(b, tags[s]...)
	}
	binary.BigEndian.PutUint32(b, uint32(len(b)))
	return b
}

func s15(v float64) []byte {
	return binary.BigEndian.AppendUint32(nil, uint32(int32(math.Round(v*65536))))
}

// XYZ is an XYZType tag.
func XYZ(x, y, z float64) []byte {
	b := append([]byte("XYZ \x00\x00\x00\x00"), s15(x)...)
	return append(append(b, s15(y)...), s15(z)...)
}

// Para is a parametricCurveType tag of function type kind.
func Para(kind int, params ...float64) []byte {
	b := append([]byte("para\x00\x00\x00\x00"), byte(kind>>8), byte(kind), 0, 0)
	for _, p := range params {
		b = append(b, s15(p)...)
	}
	return b
}

// Curv is a curveType tag with the given 16-bit entries (none: identity; one: a u8.8 gamma).
func Curv(entries ...uint16) []byte {
	b := binary.BigEndian.AppendUint32([]byte("curv\x00\x00\x00\x00"), uint32(len(entries)))
	for _, e := range entries {
		b = binary.BigEndian.AppendUint16(b, e)
	}
	return b
}

// Desc is a v2 textDescriptionType tag.
func Desc(s string) []byte {
	b := binary.BigEndian.AppendUint32([]byte("desc\x00\x00\x00\x00"), uint32(len(s)+1))
	return append(append(b, s...), 0)
}

// MLUC is a v4 multiLocalizedUnicodeType tag with one record (en-US).
func MLUC(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := []byte("mluc\x00\x00\x00\x00")
	b = binary.BigEndian.AppendUint32(b, 1)
	b = binary.BigEndian.AppendUint32(b, 12)
	b = append(b, "enUS"...)
	b = binary.BigEndian.AppendUint32(b, uint32(2*len(u)))
	b = binary.BigEndian.AppendUint32(b, 28)
	for _, c := range u {
		b = binary.BigEndian.AppendUint16(b, c)
	}
	return b
}

// SRGB is an sRGB profile as cameras and browsers embed it: sRGB's D50 colorants and its tone
// curve as a type 3 parametric curve.
func SRGB() []byte {
	trc := Para(3, 2.4, 1/1.055, 0.055/1.055, 1/12.92, 0.04045)
	return Profile("RGB ", "XYZ ", map[string][]byte{
		"desc": Desc("sRGB IEC61966-2.1"),
		"rXYZ": XYZ(0.4360747, 0.2225045, 0.0139322),
		"gXYZ": XYZ(0.3850649, 0.7168786, 0.0971045),
		"bXYZ": XYZ(0.1430804, 0.0606169, 0.7141733),
		"rTRC": trc, "gTRC": trc, "bTRC": trc,
	})
}

// JPEG embeds prof in a JPEG, after its SOI, as APP2 ICC_PROFILE segments of at most size
// bytes of profile each (ICC.1 annex B.4); segment skip (from 1; 0 for none) is left out.
func JPEG(jpg, prof []byte, size, skip int) []byte {
	const tag = "ICC_PROFILE\x00"
	out := append([]byte{}, jpg[:2]...)
	count := (len(prof) + size - 1) / size
	for i := range count {
		if i+1 == skip {
			continue
		}
		part := prof[i*size : min(len(prof), (i+1)*size)]
		n := 2 + len(tag) + 2 + len(part)
		out = append(out, 0xFF, 0xE2, byte(n>>8), byte(n))
		out = append(append(out, tag...), byte(i+1), byte(count))
		out = append(out, part...)
	}
	return append(out, jpg[2:]...)
}

// LUT is an RGB profile defined by a LUT (an A2B0 tag), which package icc does not evaluate.
func LUT() []byte {
	return Profile("RGB ", "Lab ", map[string][]byte{"desc": Desc("LUT RGB"), "A2B0": []byte("mft2\x00\x00\x00\x00")})
}
