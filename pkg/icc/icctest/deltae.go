package icctest

import (
	"image"
	"math"
	"slices"
)

// DeltaE compares two sRGB images of one size pixel by pixel: the mean and the 99th percentile
// of CIEDE2000.
func DeltaE(a, b image.Image) (mean, p99 float64) {
	ab, bb := a.Bounds(), b.Bounds()
	ds := make([]float64, 0, ab.Dx()*ab.Dy())
	for y := range min(ab.Dy(), bb.Dy()) {
		for x := range min(ab.Dx(), bb.Dx()) {
			ds = append(ds, CIEDE2000(Lab(a.At(ab.Min.X+x, ab.Min.Y+y).RGBA()), Lab(b.At(bb.Min.X+x, bb.Min.Y+y).RGBA())))
		}
	}
	if len(ds) == 0 {
		return 0, 0
	}
	slices.Sort(ds)
	var sum float64
	for _, d := range ds {
		sum += d
	}
	return sum / float64(len(ds)), ds[len(ds)*99/100]
}

// Lab is CIELAB (D65) of a 16-bit-per-channel sRGB colour, as color.Color.RGBA returns it.
func Lab(r, g, b, _ uint32) [3]float64 {
	lin := func(v uint32) float64 {
		c := float64(v) / 65535
		if c <= 0.04045 {
			return c / 12.92
		}
		return math.Pow((c+0.055)/1.055, 2.4)
	}
	R, G, B := lin(r), lin(g), lin(b)
	return labOf(
		(0.4124564*R+0.3575761*G+0.1804375*B)/0.95047,
		0.2126729*R+0.7151522*G+0.0721750*B,
		(0.0193339*R+0.1191920*G+0.9503041*B)/1.08883)
}

// labOf is CIELAB of XYZ already divided by the white's.
func labOf(x, y, z float64) [3]float64 {
	f := func(v float64) float64 {
		if v > 216.0/24389 {
			return math.Cbrt(v)
		}
		return (24389.0/27*v + 16) / 116
	}
	return [3]float64{116*f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))}
}

// CIEDE2000 is the CIEDE2000 colour difference (Sharma, Wu, Dalal 2005), kL = kC = kH = 1.
func CIEDE2000(l1, l2 [3]float64) float64 {
	rad, deg := math.Pi/180, 180/math.Pi
	c1, c2 := math.Hypot(l1[1], l1[2]), math.Hypot(l2[1], l2[2])
	cm := (c1 + c2) / 2
	g := 0.5 * (1 - math.Sqrt(math.Pow(cm, 7)/(math.Pow(cm, 7)+math.Pow(25, 7))))
	a1, a2 := (1+g)*l1[1], (1+g)*l2[1]
	C1, C2 := math.Hypot(a1, l1[2]), math.Hypot(a2, l2[2])
	hue := func(b, a float64) float64 {
		if a == 0 && b == 0 {
			return 0
		}
		h := math.Atan2(b, a) * deg
		if h < 0 {
			h += 360
		}
		return h
	}
	h1, h2 := hue(l1[2], a1), hue(l2[2], a2)
	dL, dC := l2[0]-l1[0], C2-C1
	dh := 0.0
	if C1*C2 != 0 {
		dh = h2 - h1
		if dh > 180 {
			dh -= 360
		} else if dh < -180 {
			dh += 360
		}
	}
	dH := 2 * math.Sqrt(C1*C2) * math.Sin(dh/2*rad)
	Lm, Cm := (l1[0]+l2[0])/2, (C1+C2)/2
	hm := h1 + h2
	if C1*C2 != 0 {
		switch {
		case math.Abs(h1-h2) <= 180:
			hm /= 2
		case h1+h2 < 360:
			hm = (hm + 360) / 2
		default:
			hm = (hm - 360) / 2
		}
	}
	T := 1 - 0.17*math.Cos((hm-30)*rad) + 0.24*math.Cos(2*hm*rad) + 0.32*math.Cos((3*hm+6)*rad) - 0.20*math.Cos((4*hm-63)*rad)
	dTheta := 30 * math.Exp(-math.Pow((hm-275)/25, 2))
	Rc := 2 * math.Sqrt(math.Pow(Cm, 7)/(math.Pow(Cm, 7)+math.Pow(25, 7)))
	Sl := 1 + 0.015*math.Pow(Lm-50, 2)/math.Sqrt(20+math.Pow(Lm-50, 2))
	Sc, Sh := 1+0.045*Cm, 1+0.015*Cm*T
	Rt := -math.Sin(2*dTheta*rad) * Rc
	return math.Sqrt(math.Pow(dL/Sl, 2) + math.Pow(dC/Sc, 2) + math.Pow(dH/Sh, 2) + Rt*(dC/Sc)*(dH/Sh))
}
