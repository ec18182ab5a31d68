package icc

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"
	"runtime"
	"strings"
	"sync"

	"github.com/sluice-dev/sluice/pkg/workgroup"
)

// sRGBColorants are sRGB's colorants adapted to D50 (Bradford), as the sRGB IEC61966-2.1
// profile states them: the columns of linear sRGB → XYZ(D50).
var sRGBColorants = [3][3]float64{
	{0.4360747, 0.2225045, 0.0139322},
	{0.3850649, 0.7168786, 0.0971045},
	{0.1430804, 0.0606169, 0.7141733},
}

// sRGBDecode is the sRGB tone curve: encoded value → linear.
func sRGBDecode(v float64) float64 {
	if v <= 0.04045 {
		return v / 12.92
	}
	return math.Pow((v+0.055)/1.055, 2.4)
}

func sRGBEncode(l float64) float64 {
	if l <= 0.0031308 {
		return l * 12.92
	}
	return 1.055*math.Pow(l, 1/2.4) - 0.055
}

// encodeSteps is the resolution of the linear → sRGB table: fine enough that the steep start
// of the curve (12.92 codes per unit) moves less than a quarter of an 8-bit level per step.
const encodeSteps = 1 << 14

// encodeTable maps linear [0, 1] in encodeSteps steps to 8-bit sRGB; the same for every
// profile.
var encodeTable = sync.OnceValue(func() *[encodeSteps + 1]uint8 {
	var t [encodeSteps + 1]uint8
	for i := range t {
		t[i] = uint8(math.Round(255 * sRGBEncode(float64(i)/encodeSteps)))
	}
	return &t
})

// IsSRGB reports whether a matrix/TRC profile describes sRGB (its colorants and tone curves
// within what 8 bits can tell): such a source needs no conversion.
func (p *Profile) IsSRGB() bool {
	if !p.Matrix {
		return false
	}
	for c := range 3 {
		for k := range 3 {
			if math.Abs(p.XYZ[c][k]-sRGBColorants[c][k]) > 0.002 {
				return false
			}
		}
		for v := range 256 {
			x := float64(v) / 255
			if math.Abs(p.TRC[c].Eval(x)-sRGBDecode(x)) > 0.5/255 {
				return false
			}
		}
	}
	return true
}

// Transform converts 8-bit RGB described by a matrix/TRC profile to 8-bit sRGB: device values
// to linear light through the profile's curves (tables), to linear sRGB by one matrix (the
// profile's colorants, then sRGB's inverse; both D50, so relative colorimetric, which is every
// intent for such profiles), out-of-gamut values clipped, then sRGB's curve (a table).
//
// A CMYK profile's transform evaluates its A2B1 (or A2B0) table instead (device → PCS, by
// multilinear interpolation), then PCS XYZ → linear sRGB → sRGB's curve.
type Transform struct {
	linear [3][256]float32
	m      [3][3]float32
	enc    *[encodeSteps + 1]uint8

	lut     *lut          // a CMYK profile's
	fromXYZ [3][3]float64 // PCS XYZ (D50) → linear sRGB
}

// NewTransform builds the conversion of p to sRGB; ErrUnsupported for a profile that is neither
// RGB matrix/TRC nor CMYK with an A2B1 or A2B0 table.
func NewTransform(p *Profile) (*Transform, error) {
	inv, ok := invert(columns(sRGBColorants))
	if !ok {
		panic("icc: sRGB's colorants are singular")
	}
	if p.ColorSpace == "CMYK" {
		if p.lut == nil {
			return nil, fmt.Errorf("%w: %v", ErrUnsupported, p.lutErr)
		}
		return &Transform{lut: p.lut, fromXYZ: inv, enc: encodeTable()}, nil
	}
	if !p.Matrix {
		return nil, fmt.Errorf("%w: a %s %s profile without RGB colorants and tone curves", ErrUnsupported, strings.TrimSpace(p.ColorSpace), strings.TrimSpace(p.Class))
	}
	src := columns(p.XYZ)
	if _, ok := invert(src); !ok {
		return nil, fmt.Errorf("%w: the profile's colorants are singular", ErrUnsupported)
	}
	t := &Transform{enc: encodeTable(), fromXYZ: inv}
	for i := range 3 {
		for j := range 3 {
			var s float64
			for k := range 3 {
				s += inv[i][k] * src[k][j]
			}
			t.m[i][j] = float32(s)
		}
	}
	for c := range 3 {
		for v := range 256 {
			l := p.TRC[c].Eval(float64(v) / 255)
			if math.IsNaN(l) || math.IsInf(l, 0) {
				return nil, fmt.Errorf("%w: its tone curve gives %v at %d", ErrUnsupported, l, v)
			}
			t.linear[c][v] = float32(l)
		}
	}
	return t, nil
}

// columns makes a matrix whose columns are the colorants.
func columns(c [3][3]float64) [3][3]float64 {
	var m [3][3]float64
	for i := range 3 {
		for j := range 3 {
			m[i][j] = c[j][i]
		}
	}
	return m
}

func invert(m [3][3]float64) ([3][3]float64, bool) {
	det := m[0][0]*(m[1][1]*m[2][2]-m[1][2]*m[2][1]) - m[0][1]*(m[1][0]*m[2][2]-m[1][2]*m[2][0]) + m[0][2]*(m[1][0]*m[2][1]-m[1][1]*m[2][0])
	if math.Abs(det) < 1e-9 {
		return m, false
	}
	var r [3][3]float64
	for i := range 3 {
		for j := range 3 {
			a, b := (j+1)%3, (j+2)%3
			c, d := (i+1)%3, (i+2)%3
			r[i][j] = (m[a][c]*m[b][d] - m[a][d]*m[b][c]) / det
		}
	}
	return r, true
}

// RGB converts one pixel.
func (t *Transform) RGB(r, g, b uint8) (uint8, uint8, uint8) {
	lr, lg, lb := t.linear[0][r], t.linear[1][g], t.linear[2][b]
	return t.encode(t.m[0][0]*lr + t.m[0][1]*lg + t.m[0][2]*lb),
		t.encode(t.m[1][0]*lr + t.m[1][1]*lg + t.m[1][2]*lb),
		t.encode(t.m[2][0]*lr + t.m[2][1]*lg + t.m[2][2]*lb)
}

// encode clips l to [0, 1] (NaN to 0) and encodes it.
func (t *Transform) encode(l float32) uint8 {
	switch {
	case !(l > 0):
		return t.enc[0]
	case l >= 1:
		return t.enc[encodeSteps]
	}
	return t.enc[int(l*encodeSteps+0.5)]
}

// Image converts img to sRGB. A Y'CbCr image is converted in place and stays Y'CbCr with the
// same subsampling (each chroma sample becomes the mean of the converted pixels that share
// it), so it keeps the planar path; anything else comes back as NRGBA (alpha kept). A CMYK
// profile's transform takes CMYK images only (ErrUnsupported otherwise).
func (t *Transform) Image(img image.Image) (image.Image, error) {
	if t.lut != nil {
		m, ok := img.(*image.CMYK)
		if !ok {
			return nil, fmt.Errorf("%w: a CMYK profile on a %T image", ErrUnsupported, img)
		}
		return t.cmyk(m), nil
	}
	switch m := img.(type) {
	case *image.YCbCr:
		t.yCbCr(m)
		return m, nil
	case *image.NYCbCrA:
		t.yCbCr(&m.YCbCr)
		return m, nil
	case *image.CMYK:
		return nil, fmt.Errorf("%w: an RGB profile on a CMYK image", ErrUnsupported)
	}
	n, ok := img.(*image.NRGBA)
	if !ok {
		n = image.NewNRGBA(img.Bounds())
		draw.Draw(n, n.Rect, img, img.Bounds().Min, draw.Src)
	}
	for y := range n.Rect.Dy() {
		row := n.Pix[y*n.Stride : y*n.Stride+4*n.Rect.Dx()]
		for i := 0; i < len(row); i += 4 {
			row[i], row[i+1], row[i+2] = t.RGB(row[i], row[i+1], row[i+2])
		}
	}
	return n, nil
}

// cmyk converts a CMYK image (0 is no ink) through the profile's table, in parallel bands of
// rows; each band remembers the colours it has converted (flat areas repeat them).
func (t *Transform) cmyk(m *image.CMYK) *image.NRGBA {
	out := image.NewNRGBA(m.Rect)
	h := max(1, m.Rect.Dy()/runtime.GOMAXPROCS(0))
	var wg workgroup.Group
	for y0 := 0; y0 < m.Rect.Dy(); y0 += h {
		lo, hi := y0, min(y0+h, m.Rect.Dy())
		wg.Go(func() {
			seen := make(map[uint32][3]uint8)
			dev, scratch := make([]float64, 4), make([]float64, 8)
			for y := lo; y < hi; y++ {
				src := m.Pix[y*m.Stride : y*m.Stride+4*m.Rect.Dx()]
				dst := out.Pix[y*out.Stride : y*out.Stride+4*m.Rect.Dx()]
				for i := 0; i < len(src); i += 4 {
					key := uint32(src[i])<<24 | uint32(src[i+1])<<16 | uint32(src[i+2])<<8 | uint32(src[i+3])
					rgb, ok := seen[key]
					if !ok {
						for c := range 4 {
							dev[c] = float64(src[i+c]) / 255
						}
						rgb = t.fromPCS(t.lut.eval(dev, scratch))
						if len(seen) < 1<<16 {
							seen[key] = rgb
						}
					}
					dst[i], dst[i+1], dst[i+2], dst[i+3] = rgb[0], rgb[1], rgb[2], 255
				}
			}
		})
	}
	wg.Wait()
	return out
}

// fromPCS encodes PCS XYZ (D50) as 8-bit sRGB, clipped.
func (t *Transform) fromPCS(xyz [3]float64) [3]uint8 {
	var rgb [3]uint8
	for i := range 3 {
		rgb[i] = t.encode(float32(t.fromXYZ[i][0]*xyz[0] + t.fromXYZ[i][1]*xyz[1] + t.fromXYZ[i][2]*xyz[2]))
	}
	return rgb
}

// yCbCr converts m in place, in horizontal bands run in parallel; a band's edges fall between
// chroma rows, so no two bands share a chroma sample.
func (t *Transform) yCbCr(m *image.YCbCr) {
	acc := chromaSums{cb: make([]int32, len(m.Cb)), cr: make([]int32, len(m.Cr)), n: make([]uint16, len(m.Cb))}
	step := 1
	if m.SubsampleRatio == image.YCbCrSubsampleRatio420 || m.SubsampleRatio == image.YCbCrSubsampleRatio440 {
		step = 2
	}
	b := m.Rect
	h := max(step, b.Dy()/runtime.GOMAXPROCS(0))
	var wg workgroup.Group
	for y0 := b.Min.Y; y0 < b.Max.Y; {
		y1 := y0 + h
		if step == 2 && y1&1 != 0 {
			y1++
		}
		y1 = min(y1, b.Max.Y)
		lo, hi := y0, y1
		wg.Go(func() { t.band(m, lo, hi, acc) })
		y0 = y1
	}
	wg.Wait()
	for i, k := range acc.n {
		if k > 0 {
			m.Cb[i] = uint8((acc.cb[i] + int32(k)/2) / int32(k))
			m.Cr[i] = uint8((acc.cr[i] + int32(k)/2) / int32(k))
		}
	}
}

// chromaSums accumulates, per chroma sample, the converted chroma of the pixels that share it.
type chromaSums struct {
	cb, cr []int32
	n      []uint16
}

// band converts the luma of rows [y0, y1) in place and adds their converted chroma to acc.
func (t *Transform) band(m *image.YCbCr, y0, y1 int, acc chromaSums) {
	for y := y0; y < y1; y++ {
		for x := m.Rect.Min.X; x < m.Rect.Max.X; x++ {
			yi, ci := m.YOffset(x, y), m.COffset(x, y)
			r, g, b := color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
			r, g, b = t.RGB(r, g, b)
			yy, u, v := color.RGBToYCbCr(r, g, b)
			m.Y[yi] = yy
			acc.cb[ci] += int32(u)
			acc.cr[ci] += int32(v)
			acc.n[ci]++
		}
	}
}
