package icc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// lut is a device → PCS table (an A2B tag: lut8Type mft1, lut16Type mft2 or lutAtoBType mAB, with
// the PCS's three outputs):
// per-channel input curves, a multidimensional table (CLUT), per-channel output curves, and for
// mAB a matrix and curves after them. Values are normalised to [0, 1] between the stages.
type lut struct {
	in, out   int
	inCurves  []Curve // A curves (mAB) or input tables
	grid      []int   // CLUT points along each input dimension
	clut      []float64
	mCurves   []Curve      // mAB only
	matrix    *[12]float64 // mAB only: 3×3 and an offset
	outCurves []Curve      // B curves (mAB) or output tables
	// pcs tells how to read the PCS values: pcsLab16v2 for mft2's legacy encoding, pcsLab8 for
	// mft1, pcsLabV4 for mAB; pcsXYZ otherwise.
	pcs pcsEncoding
}

type pcsEncoding int

const (
	pcsXYZ pcsEncoding = iota
	pcsLab8
	pcsLab16v2
	pcsLabV4
)

// maxCLUT bounds a CLUT's entries (a 33^4 × 3 table is 3.6 million).
const maxCLUT = 1 << 23

func tableCurve(vals []float64) Curve {
	if len(vals) == 2 && vals[0] == 0 && vals[1] == 1 {
		return Curve{Gamma: 1}
	}
	return Curve{Table: vals}
}

// parseLUT reads an A2B tag whose PCS is pcsLab (else XYZ).
func parseLUT(t []byte, pcsLab bool) (*lut, error) {
	if len(t) < 12 {
		return nil, errors.New("icc: LUT tag too short")
	}
	switch string(t[:4]) {
	case "mft1", "mft2":
		return parseMFT(t, pcsLab)
	case "mAB ":
		return parseMAB(t, pcsLab)
	}
	return nil, fmt.Errorf("icc: LUT type %q", t[:4])
}

func parseMFT(t []byte, pcsLab bool) (*lut, error) {
	if len(t) < 52 {
		return nil, errors.New("icc: mft tag too short")
	}
	l := &lut{in: int(t[8]), out: int(t[9])}
	g := int(t[10])
	wide := string(t[:4]) == "mft2"
	n, m, size, p := 256, 256, 1, 48
	if wide {
		n, m, size, p = int(binary.BigEndian.Uint16(t[48:])), int(binary.BigEndian.Uint16(t[50:])), 2, 52
	}
	if l.in < 1 || l.in > 8 || l.out != 3 || g < 2 || n < 2 || m < 2 {
		return nil, fmt.Errorf("icc: mft with %d inputs, %d outputs, %d grid points, %d/%d table entries", l.in, l.out, g, n, m)
	}
	cells := l.out
	for range l.in {
		cells *= g
		if cells > maxCLUT {
			return nil, errors.New("icc: CLUT too large")
		}
	}
	need := p + size*(l.in*n+cells+l.out*m)
	if len(t) < need {
		return nil, fmt.Errorf("icc: mft needs %d bytes, has %d", need, len(t))
	}
	read := func(count int) []float64 {
		v := make([]float64, count)
		for i := range v {
			if wide {
				v[i] = float64(binary.BigEndian.Uint16(t[p+2*i:])) / 65535
			} else {
				v[i] = float64(t[p+i]) / 255
			}
		}
		p += size * count
		return v
	}
	for range l.in {
		l.inCurves = append(l.inCurves, tableCurve(read(n)))
	}
	for range l.in {
		l.grid = append(l.grid, g)
	}
	l.clut = read(cells)
	for range l.out {
		l.outCurves = append(l.outCurves, tableCurve(read(m)))
	}
	switch {
	case !pcsLab:
		l.pcs = pcsXYZ
	case wide:
		l.pcs = pcsLab16v2
	default:
		l.pcs = pcsLab8
	}
	return l, nil
}

func parseMAB(t []byte, pcsLab bool) (*lut, error) {
	if len(t) < 32 {
		return nil, errors.New("icc: mAB tag too short")
	}
	l := &lut{in: int(t[8]), out: int(t[9]), pcs: pcsXYZ}
	if pcsLab {
		l.pcs = pcsLabV4
	}
	if l.in < 1 || l.in > 8 || l.out != 3 {
		return nil, fmt.Errorf("icc: mAB with %d inputs and %d outputs", l.in, l.out)
	}
	off := func(at int) int { return int(binary.BigEndian.Uint32(t[at:])) }
	var err error
	if l.outCurves, err = curveList(t, off(12), l.out); err != nil || l.outCurves == nil {
		return nil, fmt.Errorf("icc: mAB B curves: %v", err)
	}
	if o := off(16); o != 0 {
		if o+48 > len(t) {
			return nil, errors.New("icc: mAB matrix outside the tag")
		}
		var mtx [12]float64
		for i := range mtx {
			mtx[i] = s15(t[o+4*i:])
		}
		l.matrix = &mtx
	}
	if l.mCurves, err = curveList(t, off(20), l.out); err != nil {
		return nil, fmt.Errorf("icc: mAB M curves: %v", err)
	}
	if l.inCurves, err = curveList(t, off(28), l.in); err != nil {
		return nil, fmt.Errorf("icc: mAB A curves: %v", err)
	}
	if o := off(24); o != 0 {
		if o+20 > len(t) {
			return nil, errors.New("icc: mAB CLUT outside the tag")
		}
		cells := l.out
		for i := range l.in {
			g := int(t[o+i])
			if g < 2 {
				return nil, errors.New("icc: mAB CLUT grid under 2 points")
			}
			l.grid = append(l.grid, g)
			if cells *= g; cells > maxCLUT {
				return nil, errors.New("icc: CLUT too large")
			}
		}
		precision := int(t[o+16])
		if (precision != 1 && precision != 2) || o+20+precision*cells > len(t) {
			return nil, errors.New("icc: mAB CLUT data outside the tag")
		}
		l.clut = make([]float64, cells)
		for i := range l.clut {
			if precision == 2 {
				l.clut[i] = float64(binary.BigEndian.Uint16(t[o+20+2*i:])) / 65535
			} else {
				l.clut[i] = float64(t[o+20+i]) / 255
			}
		}
	} else if l.in != l.out {
		return nil, errors.New("icc: mAB without a CLUT changes the channel count")
	}
	return l, nil
}

// curveList reads n curves (curv or para, each padded to 4 bytes) at offset o; nil for o 0.
func curveList(t []byte, o, n int) ([]Curve, error) {
	if o == 0 {
		return nil, nil
	}
	var cs []Curve
	for range n {
		if o < 0 || o+12 > len(t) {
			return nil, errors.New("curve outside the tag")
		}
		c, ok := curve(t[o:])
		if !ok {
			return nil, errors.New("unreadable curve")
		}
		cs = append(cs, c)
		o += (curveSize(t[o:]) + 3) &^ 3
	}
	return cs, nil
}

// curveSize is the byte size of the curv or para tag at the start of t.
func curveSize(t []byte) int {
	if string(t[:4]) == "para" {
		return 12 + 4*paramCounts[binary.BigEndian.Uint16(t[8:])]
	}
	return 12 + 2*int(binary.BigEndian.Uint32(t[8:]))
}

// eval maps device values in [0, 1] (len in) to PCS XYZ (D50, Y of white 1).
func (l *lut) eval(dev []float64, scratch []float64) [3]float64 {
	x := scratch[:l.in]
	for i, v := range dev {
		x[i] = v
		if l.inCurves != nil {
			x[i] = clamp01(l.inCurves[i].Eval(v))
		}
	}
	var o [3]float64
	if l.clut != nil {
		l.interpolate(x, o[:])
	} else {
		copy(o[:], x)
	}
	if l.mCurves != nil {
		for i := range o {
			o[i] = l.mCurves[i].Eval(clamp01(o[i]))
		}
	}
	if m := l.matrix; m != nil {
		o = [3]float64{
			m[0]*o[0] + m[1]*o[1] + m[2]*o[2] + m[9],
			m[3]*o[0] + m[4]*o[1] + m[5]*o[2] + m[10],
			m[6]*o[0] + m[7]*o[1] + m[8]*o[2] + m[11],
		}
	}
	for i := range o {
		o[i] = l.outCurves[i].Eval(clamp01(o[i]))
	}
	return l.toXYZ(o)
}

// interpolate evaluates the CLUT at x (each in [0, 1]) by multilinear interpolation over the
// 2^in corners of the cell around it.
func (l *lut) interpolate(x []float64, out []float64) {
	var base, stride [8]int
	var frac [8]float64
	s := l.out
	for d := l.in - 1; d >= 0; d-- {
		g := l.grid[d]
		pos := x[d] * float64(g-1)
		i := min(int(pos), g-2)
		base[d], frac[d], stride[d] = i, pos-float64(i), s
		s *= g
	}
	for c := range out {
		out[c] = 0
	}
	for corner := range 1 << l.in {
		w, at := 1.0, 0
		for d := range l.in {
			if corner>>d&1 == 1 {
				w *= frac[d]
				at += (base[d] + 1) * stride[d]
			} else {
				w *= 1 - frac[d]
				at += base[d] * stride[d]
			}
		}
		if w == 0 {
			continue
		}
		for c := range out {
			out[c] += w * l.clut[at+c]
		}
	}
}

// d50 is the PCS white.
var d50 = [3]float64{0.9642, 1, 0.8249}

// toXYZ decodes normalised PCS values.
func (l *lut) toXYZ(v [3]float64) [3]float64 {
	var L, a, b float64
	switch l.pcs {
	case pcsXYZ:
		k := 65535.0 / 32768 // u1Fixed15: 0x8000 is 1.0
		return [3]float64{v[0] * k, v[1] * k, v[2] * k}
	case pcsLab8:
		L, a, b = v[0]*100, v[1]*255-128, v[2]*255-128
	case pcsLab16v2:
		L, a, b = v[0]*65535/652.8, v[1]*65535/256-128, v[2]*65535/256-128
	default:
		L, a, b = v[0]*100, v[1]*255-128, v[2]*255-128
	}
	f := func(t float64) float64 {
		if t > 6.0/29 {
			return t * t * t
		}
		return 3 * (6.0 / 29) * (6.0 / 29) * (t - 4.0/29)
	}
	fy := (L + 16) / 116
	return [3]float64{d50[0] * f(fy+a/500), d50[1] * f(fy), d50[2] * f(fy-b/200)}
}

func clamp01(v float64) float64 {
	if math.IsNaN(v) {
		return 0
	}
	return min(max(v, 0), 1)
}
