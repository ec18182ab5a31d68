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

// CMYK is a small CMYK printer profile (v2, PCS Lab, an A2B0 mft2 table of 9 points per
// channel, identity curves) of a plausible press: each ink, after dot gain, absorbs part of
// each of red, green and blue light (impure inks, as real ones are), the absorptions multiply,
// and the reflected linear RGB goes to Lab (D50). Rendering its files as if CMYK were
// complementary RGB (the naive conversion) comes out too saturated, as with real profiles.
func CMYK() []byte {
	const g = 9
	b := []byte("mft2\x00\x00\x00\x00")
	b = append(b, 4, 3, g, 0)
	for i := range 9 { // the identity matrix (used only for XYZ input)
		v := 0.0
		if i%4 == 0 {
			v = 1
		}
		b = append(b, s15(v)...)
	}
	b = binary.BigEndian.AppendUint16(b, 2)
	b = binary.BigEndian.AppendUint16(b, 2)
	for range 4 {
		b = binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(b, 0), 0xFFFF)
	}
	for i := range g * g * g * g {
		c, m, y, k := float64(i/(g*g*g))/(g-1), float64(i/(g*g)%g)/(g-1), float64(i/g%g)/(g-1), float64(i%g)/(g-1)
		L, A, B := labOfLinear(press(c, m, y, k))
		for _, v := range []float64{L * 652.8, (A + 128) * 256, (B + 128) * 256} {
			b = binary.BigEndian.AppendUint16(b, uint16(math.Round(min(max(v, 0), 65535))))
		}
	}
	for range 3 {
		b = binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(b, 0), 0xFFFF)
	}
	return Profile("CMYK", "Lab ", map[string][]byte{"desc": Desc("sluice test CMYK"), "A2B0": b})
}

// CMYKv4 is CMYK's press as a v4 profile: an A2B0 lutAtoBType (mAB) with identity A, M and B
// curves, an identity matrix and a 16-bit CLUT of 9 points per channel, PCS Lab in v4 encoding.
func CMYKv4() []byte {
	const g = 9
	identity := Para(0, 1)
	pad := func(b []byte) []byte {
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		return b
	}
	b := []byte("mAB \x00\x00\x00\x00")
	b = append(b, 4, 3, 0, 0)
	offsets := len(b)
	b = append(b, make([]byte, 20)...) // B, matrix, M, CLUT, A offsets, set below
	put := func(slot int) { binary.BigEndian.PutUint32(b[offsets+4*slot:], uint32(len(b))) }
	put(0)
	for range 3 {
		b = pad(append(b, identity...))
	}
	put(1)
	for i := range 12 {
		v := 0.0
		if i < 9 && i%4 == 0 {
			v = 1
		}
		b = append(b, s15(v)...)
	}
	put(2)
	for range 3 {
		b = pad(append(b, identity...))
	}
	put(3)
	grid := make([]byte, 16)
	copy(grid, []byte{g, g, g, g})
	b = append(append(b, grid...), 2, 0, 0, 0)
	for i := range g * g * g * g {
		c, m, y, k := float64(i/(g*g*g))/(g-1), float64(i/(g*g)%g)/(g-1), float64(i/g%g)/(g-1), float64(i%g)/(g-1)
		L, A, B := labOfLinear(press(c, m, y, k))
		for _, v := range []float64{L / 100 * 65535, (A + 128) / 255 * 65535, (B + 128) / 255 * 65535} {
			b = binary.BigEndian.AppendUint16(b, uint16(math.Round(min(max(v, 0), 65535))))
		}
	}
	b = pad(b)
	put(4)
	for range 4 {
		b = pad(append(b, identity...))
	}
	p := Profile("CMYK", "Lab ", map[string][]byte{"desc": MLUC("sluice test CMYK v4"), "A2B0": b})
	binary.BigEndian.PutUint32(p[8:], 0x04300000)
	return p
}

// press is the linear RGB a sheet reflects under inks c, m, y, k (each in [0, 1]).
func press(c, m, y, k float64) (r, g, b float64) {
	absorb := [4][3]float64{{0.92, 0.30, 0.08}, {0.10, 0.88, 0.30}, {0.02, 0.08, 0.85}, {0.90, 0.90, 0.88}}
	r, g, b = 0.95, 0.95, 0.93 // paper
	for i, v := range []float64{c, m, y, k} {
		d := 1 - math.Pow(1-v, 1.3) // dot gain
		r, g, b = r*(1-absorb[i][0]*d), g*(1-absorb[i][1]*d), b*(1-absorb[i][2]*d)
	}
	return r, g, b
}

// labOfLinear is CIELAB (D50) of a linear sRGB colour (components in [0, 1]).
func labOfLinear(R, G, Bl float64) (L, A, B float64) {
	lab := labOf(
		(0.4360747*R+0.3850649*G+0.1430804*Bl)/0.9642,
		0.2225045*R+0.7168786*G+0.0606169*Bl,
		(0.0139322*R+0.0971045*G+0.7141733*Bl)/0.8249)
	return lab[0], lab[1], lab[2]
}
