package icc_test

import (
	"image"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/pkg/icc"
	"github.com/sluice-dev/sluice/pkg/icc/icctest"
)

func p3(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/p3.icc")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Display P3 (libvips' built-in profile) converts to sRGB as LittleCMS converts it (transicc
// -t1 -s, 8-bit), within 1: wide-gamut colours clip, sRGB's primaries expressed in P3 come back.
func TestP3ToSRGBMatchesLittleCMS(t *testing.T) {
	p, err := icc.Parse(p3(t))
	if err != nil {
		t.Fatal(err)
	}
	if !p.Matrix || p.IsSRGB() || p.Description != "sP3C" || p.ColorSpace != "RGB " {
		t.Fatalf("parsed %+v", p)
	}
	tr, err := icc.NewTransform(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ in, want [3]uint8 }{
		{[3]uint8{0, 255, 0}, [3]uint8{0, 255, 0}},
		{[3]uint8{255, 0, 0}, [3]uint8{255, 0, 0}},
		{[3]uint8{0, 0, 255}, [3]uint8{2, 0, 255}},
		{[3]uint8{117, 251, 76}, [3]uint8{3, 255, 0}}, // sRGB's green, written in P3
		{[3]uint8{128, 128, 128}, [3]uint8{128, 128, 128}},
		{[3]uint8{10, 20, 30}, [3]uint8{7, 20, 31}},
		{[3]uint8{255, 255, 255}, [3]uint8{255, 255, 255}},
	} {
		r, g, b := tr.RGB(c.in[0], c.in[1], c.in[2])
		for i, v := range [3]uint8{r, g, b} {
			if d := int(v) - int(c.want[i]); d < -1 || d > 1 {
				t.Errorf("P3 %v → %v, LittleCMS %v", c.in, [3]uint8{r, g, b}, c.want)
				break
			}
		}
	}
}

// sRGB however it is written (v2 curve table, v4 parametric) needs no conversion; a profile
// close to it but not it (gamma 2.2) does.
func TestIsSRGB(t *testing.T) {
	table := make([]uint16, 1024)
	for i := range table {
		x := float64(i) / 1023
		l := x / 12.92
		if x > 0.04045 {
			l = math.Pow((x+0.055)/1.055, 2.4)
		}
		table[i] = uint16(math.Round(l * 65535))
	}
	asTable := icctest.Profile("RGB ", "XYZ ", map[string][]byte{
		"desc": icctest.MLUC("sRGB v4"),
		"rXYZ": icctest.XYZ(0.4360747, 0.2225045, 0.0139322), "gXYZ": icctest.XYZ(0.3850649, 0.7168786, 0.0971045), "bXYZ": icctest.XYZ(0.1430804, 0.0606169, 0.7141733),
		"rTRC": icctest.Curv(table...), "gTRC": icctest.Curv(table...), "bTRC": icctest.Curv(table...),
	})
	gamma22 := icctest.Profile("RGB ", "XYZ ", map[string][]byte{
		"rXYZ": icctest.XYZ(0.4360747, 0.2225045, 0.0139322), "gXYZ": icctest.XYZ(0.3850649, 0.7168786, 0.0971045), "bXYZ": icctest.XYZ(0.1430804, 0.0606169, 0.7141733),
		"rTRC": icctest.Curv(563), "gTRC": icctest.Curv(563), "bTRC": icctest.Curv(563), // 2.2 in u8.8
	})
	for name, c := range map[string]struct {
		b    []byte
		want bool
		desc string
	}{
		"parametric": {icctest.SRGB(), true, "sRGB IEC61966-2.1"},
		"table":      {asTable, true, "sRGB v4"},
		"gamma 2.2":  {gamma22, false, ""},
		"P3":         {p3(t), false, "sP3C"},
	} {
		p, err := icc.Parse(c.b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if p.IsSRGB() != c.want || p.Description != c.desc {
			t.Errorf("%s: IsSRGB %v (want %v), description %q (want %q)", name, p.IsSRGB(), c.want, p.Description, c.desc)
		}
	}
}

// The parametric curves of ICC.1 table 68, at a point on each branch.
func TestParametricCurves(t *testing.T) {
	for _, c := range []struct {
		kind    int
		params  []float64
		x, want float64
	}{
		{0, []float64{2}, 0.5, 0.25},
		{1, []float64{2, 2, -0.5}, 0.5, 0.25},
		{1, []float64{2, 2, -0.5}, 0.2, 0},
		{2, []float64{1, 1, -0.5, 0.25}, 0.75, 0.5},
		{2, []float64{1, 1, -0.5, 0.25}, 0.25, 0.25},
		{3, []float64{2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045}, 0.5, 0.21404},
		{3, []float64{2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045}, 0.02, 0.02 / 12.92},
		{4, []float64{1, 1, 0, 0.5, 0.5, 0.1, 0.2}, 0.75, 0.85},
		{4, []float64{1, 1, 0, 0.5, 0.5, 0.1, 0.2}, 0.25, 0.325},
	} {
		p, err := icc.Parse(icctest.Profile("RGB ", "XYZ ", map[string][]byte{"rTRC": icctest.Para(c.kind, c.params...)}))
		if err != nil {
			t.Fatal(err)
		}
		if got := p.TRC[0].Eval(c.x); math.Abs(got-c.want) > 1e-4 {
			t.Errorf("type %d %v at %g: %g, want %g", c.kind, c.params, c.x, got, c.want)
		}
	}
}

// Hostile or broken profiles are errors or unsupported, never a panic or a wrong conversion.
func TestParseRejects(t *testing.T) {
	good := icctest.SRGB()
	cut := func(n int) []byte { return good[:n] }
	tagPastEnd := append([]byte(nil), good...)
	tagPastEnd[132+4] = 0x7f // the first tag's offset
	noACSP := append([]byte(nil), good...)
	copy(noACSP[36:], "nope")
	for name, b := range map[string][]byte{
		"empty":            nil,
		"header only":      cut(128),
		"truncated tags":   cut(140),
		"no acsp":          noACSP,
		"tag past the end": tagPastEnd,
		"too large":        make([]byte, icc.MaxSize+1),
	} {
		if _, err := icc.Parse(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	lut := icctest.Profile("RGB ", "Lab ", map[string][]byte{"A2B0": []byte("mft2\x00\x00\x00\x00")})
	p, err := icc.Parse(lut)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := icc.NewTransform(p); err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Errorf("a LUT profile: %v, want unsupported", err)
	}
}

// A curve that overflows (a huge gamma on a value above 1) is refused, not turned into NaN.
func TestNonFiniteCurveIsUnsupported(t *testing.T) {
	huge := icctest.Para(1, 30000, 30000, 0)
	p, err := icc.Parse(icctest.Profile("RGB ", "XYZ ", map[string][]byte{
		"rXYZ": icctest.XYZ(0.4360747, 0.2225045, 0.0139322), "gXYZ": icctest.XYZ(0.3850649, 0.7168786, 0.0971045), "bXYZ": icctest.XYZ(0.1430804, 0.0606169, 0.7141733),
		"rTRC": huge, "gTRC": huge, "bTRC": huge,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := icc.NewTransform(p); err == nil {
		t.Error("a curve reaching +Inf was accepted")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(icctest.SRGB())
	f.Add(p3(f))
	f.Add(icctest.CMYK())
	f.Add(icctest.CMYKv4())
	cmyk := image.NewCMYK(image.Rect(0, 0, 2, 1))
	copy(cmyk.Pix, []byte{0, 64, 128, 255, 255, 255, 255, 255})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := icc.Parse(b)
		if err != nil {
			return
		}
		_ = p.IsSRGB()
		if tr, err := icc.NewTransform(p); err == nil {
			tr.RGB(0, 128, 255)
			_, _ = tr.Image(cmyk)
		}
	})
}

// HEIF's nclx code points become the profile they name: BT.709 primaries with sRGB's transfer
// are sRGB; Display P3's (12, 13) convert as libvips' P3 ICC profile does; HDR transfers are
// not supported.
func TestFromCICP(t *testing.T) {
	srgb, err := icc.FromCICP(1, 13)
	if err != nil || !srgb.IsSRGB() {
		t.Fatalf("BT.709 + sRGB transfer: %v, IsSRGB %v", err, srgb != nil && srgb.IsSRGB())
	}
	nclx, err := icc.FromCICP(12, 13)
	if err != nil {
		t.Fatal(err)
	}
	prof, err := icc.Parse(p3(t))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := icc.NewTransform(nclx)
	b, _ := icc.NewTransform(prof)
	for _, v := range [][3]uint8{{0, 255, 0}, {255, 0, 0}, {0, 0, 255}, {117, 251, 76}, {200, 120, 40}, {10, 20, 30}} {
		r1, g1, b1 := a.RGB(v[0], v[1], v[2])
		r2, g2, b2 := b.RGB(v[0], v[1], v[2])
		for i, d := range []int{int(r1) - int(r2), int(g1) - int(g2), int(b1) - int(b2)} {
			if d < -2 || d > 2 { // the profile's colorants are rounded to s15.16; near 0 sRGB's curve is steep
				t.Errorf("%v: nclx P3 gives %v, the ICC profile %v (channel %d)", v, [3]uint8{r1, g1, b1}, [3]uint8{r2, g2, b2}, i)
				break
			}
		}
	}
	for _, c := range [][2]uint16{{9, 16}, {9, 18}, {22, 13}} {
		if _, err := icc.FromCICP(c[0], c[1]); err == nil {
			t.Errorf("primaries %d, transfer %d accepted", c[0], c[1])
		}
	}
}

// A CMYK profile's table, as lut16 (v2, legacy Lab encoding) or lutAtoB (v4: curves, matrix,
// CLUT, v4 Lab encoding), converts alike: the same press, the same sRGB within a level; both
// as LittleCMS converts the v2 one (transicc -t1 -i test-cmyk.icc -o*sRGB, rounded).
func TestCMYKTables(t *testing.T) {
	var tr [2]*icc.Transform
	for i, b := range [][]byte{icctest.CMYK(), icctest.CMYKv4()} {
		p, err := icc.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		if tr[i], err = icc.NewTransform(p); err != nil {
			t.Fatalf("%q: %v", p.Description, err)
		}
	}
	for _, c := range []struct {
		cmyk [4]uint8
		want [3]uint8
	}{
		{[4]uint8{0, 0, 0, 0}, [3]uint8{249, 249, 247}},
		{[4]uint8{255, 0, 0, 0}, [3]uint8{78, 213, 238}},
		{[4]uint8{0, 255, 0, 0}, [3]uint8{238, 95, 211}},
		{[4]uint8{0, 0, 0, 255}, [3]uint8{87, 87, 94}},
		{[4]uint8{128, 51, 0, 26}, [3]uint8{164, 194, 221}},
	} {
		img := image.NewCMYK(image.Rect(0, 0, 1, 1))
		copy(img.Pix, c.cmyk[:])
		for i, tr := range tr {
			out, err := tr.Image(img)
			if err != nil {
				t.Fatal(err)
			}
			r, g, b, _ := out.At(0, 0).RGBA()
			got := [3]uint8{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8)}
			for k := range 3 {
				if d := int(got[k]) - int(c.want[k]); d < -1 || d > 1 {
					t.Errorf("table %d: CMYK %v → %v, LittleCMS %v", i, c.cmyk, got, c.want)
					break
				}
			}
		}
	}
}
