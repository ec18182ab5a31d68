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
