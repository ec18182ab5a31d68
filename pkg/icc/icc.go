// Package icc reads ICC colour profiles (ICC.1:2010, v2 and v4) and converts RGB pixels
// described by a matrix/TRC profile (Display P3, Adobe RGB, ProPhoto, Rec. 2020 and the like)
// to sRGB, the colour space every rendition is written in. It is ours because no pure-Go
// colour-management library is served here and a cgo binding (LittleCMS) would end the static
// build; what it needs of the specification is small: the header, the tag table, XYZ colorants,
// tone curves (curv, para) and the description. Profiles are untrusted bytes: every offset and
// count is checked against the data.
package icc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode/utf16"
)

// MaxSize bounds a profile: real ones are under 1 MB (CMYK tables); anything larger is refused.
const MaxSize = 4 << 20

// Profile is the part of a profile a conversion needs.
type Profile struct {
	Class       string // device class: "mntr", "scnr", "prtr", ...
	ColorSpace  string // "RGB ", "GRAY", "CMYK", ...
	PCS         string // "XYZ " or "Lab "
	Version     int    // major version: 2 or 4
	Description string

	// For an RGB matrix/TRC profile: the colorants (columns of the RGB→XYZ(D50) matrix) and the
	// tone curves; Matrix is false for any other profile.
	Matrix bool
	XYZ    [3][3]float64 // XYZ[c] is colorant c (r, g, b)
	TRC    [3]Curve

	// For a CMYK profile: its device → PCS table (A2B1, else A2B0), or why it could not be read.
	lut    *lut
	lutErr error
}

// Curve is a tone curve, device value → linear, on [0, 1].
type Curve struct {
	Gamma  float64   // a pure power (Table and Params empty)
	Table  []float64 // sampled, evenly spaced on [0, 1]
	Kind   int       // parametric function type (0–4) when Params is set
	Params []float64 // g, a, b, c, d, e, f as the function type uses them
}

// ErrUnsupported: a valid profile this package does not evaluate (a LUT-based or grey profile).
var ErrUnsupported = errors.New("icc: profile kind not supported")

// Parse reads a profile.
func Parse(b []byte) (*Profile, error) {
	if len(b) < 132 {
		return nil, fmt.Errorf("icc: %d bytes is shorter than a header and tag count", len(b))
	}
	if len(b) > MaxSize {
		return nil, fmt.Errorf("icc: %d bytes is over the %d a profile may have", len(b), MaxSize)
	}
	if string(b[36:40]) != "acsp" {
		return nil, errors.New("icc: no 'acsp' signature")
	}
	if size := binary.BigEndian.Uint32(b); size < 132 || int64(size) > int64(len(b)) {
		return nil, fmt.Errorf("icc: the header's size %d does not fit the %d bytes", size, len(b))
	}
	p := &Profile{Class: string(b[12:16]), ColorSpace: string(b[16:20]), PCS: string(b[20:24]), Version: int(b[8])}
	tags, err := tagTable(b)
	if err != nil {
		return nil, err
	}
	if d, ok := tags["desc"]; ok {
		p.Description = description(d)
	}
	if p.ColorSpace == "CMYK" {
		// Relative colorimetric, as for RGB: A2B1, or A2B0 where there is no A2B1 (ICC.1 8.4.2).
		t, ok := tags["A2B1"]
		if !ok {
			t, ok = tags["A2B0"]
		}
		if ok {
			p.lut, p.lutErr = parseLUT(t, p.PCS == "Lab ")
		} else {
			p.lutErr = errors.New("icc: a CMYK profile without an A2B0 or A2B1 table")
		}
		if p.lut != nil && p.lut.in != 4 {
			p.lut, p.lutErr = nil, fmt.Errorf("icc: a CMYK profile whose A2B0 takes %d channels", p.lut.in)
		}
		return p, nil
	}
	if p.ColorSpace != "RGB " || p.PCS != "XYZ " {
		return p, nil
	}
	var ok [6]bool
	for c, sig := range []string{"rXYZ", "gXYZ", "bXYZ"} {
		p.XYZ[c], ok[c] = xyz(tags[sig])
	}
	for c, sig := range []string{"rTRC", "gTRC", "bTRC"} {
		p.TRC[c], ok[3+c] = curve(tags[sig])
	}
	p.Matrix = ok == [6]bool{true, true, true, true, true, true}
	return p, nil
}

// tagTable maps each tag signature to its data.
func tagTable(b []byte) (map[string][]byte, error) {
	n := int64(binary.BigEndian.Uint32(b[128:]))
	if 132+12*n > int64(len(b)) {
		return nil, fmt.Errorf("icc: %d tags do not fit the profile", n)
	}
	tags := make(map[string][]byte, n)
	for i := range n {
		e := b[132+12*i:]
		off, size := int64(binary.BigEndian.Uint32(e[4:])), int64(binary.BigEndian.Uint32(e[8:]))
		if off+size > int64(len(b)) || size < 8 {
			return nil, fmt.Errorf("icc: tag %q at %d+%d is outside the profile", e[:4], off, size)
		}
		tags[string(e[:4])] = b[off : off+size]
	}
	return tags, nil
}

// s15 reads an s15Fixed16Number.
func s15(b []byte) float64 { return float64(int32(binary.BigEndian.Uint32(b))) / 65536 }

func xyz(t []byte) ([3]float64, bool) {
	if len(t) < 20 || string(t[:4]) != "XYZ " {
		return [3]float64{}, false
	}
	return [3]float64{s15(t[8:]), s15(t[12:]), s15(t[16:])}, true
}

// paramCounts is how many parameters each parametric function type has.
var paramCounts = []int{1, 3, 4, 5, 7}

func curve(t []byte) (Curve, bool) {
	if len(t) < 12 {
		return Curve{}, false
	}
	switch string(t[:4]) {
	case "curv":
		n := int64(binary.BigEndian.Uint32(t[8:]))
		if 12+2*n > int64(len(t)) {
			return Curve{}, false
		}
		switch n {
		case 0:
			return Curve{Gamma: 1}, true
		case 1:
			return Curve{Gamma: float64(binary.BigEndian.Uint16(t[12:])) / 256}, true
		}
		table := make([]float64, n)
		for i := range table {
			table[i] = float64(binary.BigEndian.Uint16(t[12+2*i:])) / 65535
		}
		return Curve{Table: table}, true
	case "para":
		kind := int(binary.BigEndian.Uint16(t[8:]))
		if kind >= len(paramCounts) || len(t) < 12+4*paramCounts[kind] {
			return Curve{}, false
		}
		params := make([]float64, paramCounts[kind])
		for i := range params {
			params[i] = s15(t[12+4*i:])
		}
		return Curve{Kind: kind, Params: params}, true
	}
	return Curve{}, false
}

// Eval is the curve at x in [0, 1].
func (c Curve) Eval(x float64) float64 {
	switch {
	case c.Params != nil:
		return parametric(c.Kind, c.Params, x)
	case c.Table != nil:
		if len(c.Table) == 1 {
			return c.Table[0]
		}
		pos := min(max(x, 0), 1) * float64(len(c.Table)-1)
		i := min(int(pos), len(c.Table)-2)
		f := pos - float64(i)
		return c.Table[i]*(1-f) + c.Table[i+1]*f
	default:
		return math.Pow(max(x, 0), c.Gamma)
	}
}

// parametric evaluates ICC.1 parametricCurveType's functions (table 68).
func parametric(kind int, p []float64, x float64) float64 {
	pow := func(v, g float64) float64 { return math.Pow(max(v, 0), g) }
	g := p[0]
	switch kind {
	case 0:
		return pow(x, g)
	case 1:
		if a, b := p[1], p[2]; a != 0 && x >= -b/a {
			return pow(a*x+b, g)
		}
		return 0
	case 2:
		if a, b, c := p[1], p[2], p[3]; a != 0 && x >= -b/a {
			return pow(a*x+b, g) + c
		} else {
			return c
		}
	case 3:
		if a, b, c, d := p[1], p[2], p[3], p[4]; x >= d {
			return pow(a*x+b, g)
		} else {
			return c * x
		}
	default:
		if a, b, c, d, e, f := p[1], p[2], p[3], p[4], p[5], p[6]; x >= d {
			return pow(a*x+b, g) + e
		} else {
			return c*x + f
		}
	}
}

// description reads a v2 textDescriptionType or a v4 multiLocalizedUnicodeType (its first
// record).
func description(t []byte) string {
	switch string(t[:4]) {
	case "desc":
		if len(t) < 12 {
			return ""
		}
		n := int64(binary.BigEndian.Uint32(t[8:]))
		if 12+n > int64(len(t)) {
			return ""
		}
		return strings.TrimRight(string(t[12:12+n]), "\x00")
	case "mluc":
		if len(t) < 28 {
			return ""
		}
		size, off := int64(binary.BigEndian.Uint32(t[20:])), int64(binary.BigEndian.Uint32(t[24:]))
		if off+size > int64(len(t)) || size%2 != 0 {
			return ""
		}
		u := make([]uint16, size/2)
		for i := range u {
			u[i] = binary.BigEndian.Uint16(t[off+2*int64(i):])
		}
		return string(utf16.Decode(u))
	}
	return ""
}

// FromCICP describes, as a matrix/TRC profile, the colour space that ITU-T H.273 code points
// name (a HEIF nclx colour box): primaries 1 (BT.709/sRGB), 9 (BT.2020) or 12 (Display P3), all
// with a D65 white, adapted to D50 as ICC profiles are (Bradford); transfer 13 (sRGB), 1, 6, 14
// and 15 (BT.709's), 8 (linear), 4 and 5 (gamma 2.2, 2.8). Unspecified (2) means sRGB's; HDR
// transfers (PQ, HLG) and other primaries are ErrUnsupported.
func FromCICP(primaries, transfer uint16) (*Profile, error) {
	prim, ok := cicpPrimaries[primaries]
	if !ok {
		return nil, fmt.Errorf("%w: colour primaries %d (ITU-T H.273)", ErrUnsupported, primaries)
	}
	trc, ok := cicpTransfer[transfer]
	if !ok {
		return nil, fmt.Errorf("%w: transfer characteristics %d (ITU-T H.273)", ErrUnsupported, transfer)
	}
	return matrixProfile(fmt.Sprintf("nclx primaries %d, transfer %d", primaries, transfer), prim, trc), nil
}

// FromChromaticities describes, as a matrix/TRC profile, a PNG's cHRM (the chromaticities of
// red, green, blue and white) and gAMA (the file gamma g: samples are linear light to the power
// g, so decoding raises them to 1/g).
func FromChromaticities(prim [4][2]float64, gamma float64) (*Profile, error) {
	if gamma <= 0 || gamma > 10 {
		return nil, fmt.Errorf("%w: a gamma of %g", ErrUnsupported, gamma)
	}
	for _, c := range prim {
		if c[0] <= 0 || c[1] <= 0 || c[0]+c[1] > 1 {
			return nil, fmt.Errorf("%w: chromaticities %v", ErrUnsupported, prim)
		}
	}
	p := matrixProfile(fmt.Sprintf("cHRM and gAMA %.5f", gamma), prim, Curve{Gamma: 1 / gamma})
	if _, ok := invert(columns(p.XYZ)); !ok {
		return nil, fmt.Errorf("%w: chromaticities %v", ErrUnsupported, prim)
	}
	return p, nil
}

func matrixProfile(desc string, prim [4][2]float64, trc Curve) *Profile {
	return &Profile{Class: "mntr", ColorSpace: "RGB ", PCS: "XYZ ", Version: 4, Matrix: true, Description: desc,
		XYZ: colorantsD50(prim), TRC: [3]Curve{trc, trc, trc}}
}

// cicpPrimaries are the chromaticities (x, y) of red, green, blue and white.
var cicpPrimaries = map[uint16][4][2]float64{
	1:  {{0.640, 0.330}, {0.300, 0.600}, {0.150, 0.060}, {0.3127, 0.3290}},
	2:  {{0.640, 0.330}, {0.300, 0.600}, {0.150, 0.060}, {0.3127, 0.3290}},
	9:  {{0.708, 0.292}, {0.170, 0.797}, {0.131, 0.046}, {0.3127, 0.3290}},
	12: {{0.680, 0.320}, {0.265, 0.690}, {0.150, 0.060}, {0.3127, 0.3290}},
}

var (
	srgbCurve    = Curve{Kind: 3, Params: []float64{2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045}}
	bt709Curve   = Curve{Kind: 3, Params: []float64{1 / 0.45, 1 / 1.099, 0.099 / 1.099, 1 / 4.5, 0.081}}
	cicpTransfer = map[uint16]Curve{
		1: bt709Curve, 2: srgbCurve, 4: {Gamma: 2.2}, 5: {Gamma: 2.8}, 6: bt709Curve,
		8: {Gamma: 1}, 13: srgbCurve, 14: bt709Curve, 15: bt709Curve,
	}
)

// colorantsD50 computes the RGB → XYZ colorants of primaries (with their white) and adapts
// them from that white to D50 with the Bradford transform.
func colorantsD50(prim [4][2]float64) [3][3]float64 {
	xyz := func(c [2]float64) [3]float64 { return [3]float64{c[0] / c[1], 1, (1 - c[0] - c[1]) / c[1]} }
	var m [3][3]float64 // columns: the primaries' XYZ at Y = 1
	for c := range 3 {
		v := xyz(prim[c])
		for k := range 3 {
			m[k][c] = v[k]
		}
	}
	inv, _ := invert(m)
	w := xyz(prim[3])
	var s [3]float64 // each primary's scale so that RGB (1,1,1) is the white
	for i := range 3 {
		s[i] = inv[i][0]*w[0] + inv[i][1]*w[1] + inv[i][2]*w[2]
	}
	bradford := [3][3]float64{{0.8951, 0.2664, -0.1614}, {-0.7502, 1.7135, 0.0367}, {0.0389, -0.0685, 1.0296}}
	bInv, _ := invert(bradford)
	d50 := [3]float64{0.9642, 1, 0.8249}
	src, dst := mul(bradford, w), mul(bradford, d50)
	var adapt [3][3]float64
	for i := range 3 {
		for j := range 3 {
			for k := range 3 {
				adapt[i][j] += bInv[i][k] * dst[k] / src[k] * bradford[k][j]
			}
		}
	}
	var out [3][3]float64
	for c := range 3 {
		col := [3]float64{m[0][c] * s[c], m[1][c] * s[c], m[2][c] * s[c]}
		out[c] = mul(adapt, col)
	}
	return out
}

func mul(m [3][3]float64, v [3]float64) [3]float64 {
	return [3]float64{
		m[0][0]*v[0] + m[0][1]*v[1] + m[0][2]*v[2],
		m[1][0]*v[0] + m[1][1]*v[1] + m[1][2]*v[2],
		m[2][0]*v[0] + m[2][1]*v[1] + m[2][2]*v[2],
	}
}
