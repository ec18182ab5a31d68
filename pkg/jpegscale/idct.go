package jpegscale

import "math"

// The inverse DCT at n points per block edge, in fixed point with constBits fraction bits.
//
// JPEG's 8-point transform is orthonormal: f(x) = ½ Σ_u C(u) F(u) cos((2x+1)uπ/16), C(0) = 1/√2.
// Keeping only u < n and evaluating the n-point basis, g(y) = ½ Σ_{u<n} C(u) F(u)
// cos((2y+1)uπ/2n), gives the block's n-sample low-pass version: the frequencies an n-sample
// grid can hold, sampled at the centre of each (8/n)-wide group of pixels. At n = 1 it is the
// DC term over 8, the block's mean. At n = 2 and 4 each block is filtered on its own, with
// sharper edges than a resize filter: callers leave a margin before the final resize.
const constBits = 13

// basis[n][x][u] = round(½ C(u) cos((2x+1)uπ/2n) · 2^constBits) for n = 2, 4, 8.
var basis = func() (b [9][8][8]int) {
	for _, n := range []int{2, 4, 8} {
		for x := range n {
			for u := range n {
				c := 1.0
				if u == 0 {
					c = 1 / math.Sqrt2
				}
				b[n][x][u] = int(math.Round(0.5 * c * math.Cos(float64((2*x+1)*u)*math.Pi/float64(2*n)) * (1 << constBits)))
			}
		}
	}
	return b
}()

// round adds ½ for rounding and the level shift of 128 before the final descale.
const round = 1<<(2*constBits-1) + 128<<(2*constBits)

// coefLimit bounds a dequantised coefficient. Real 8-bit data stays within ±2^11; the bound
// only keeps hostile quantisation tables from overflowing the arithmetic.
const coefLimit = 1 << 14

// reconstruct dequantises block (bx, by) of c, inverse-transforms it at d.n points and stores
// the level-shifted, clamped samples in c's plane.
func (d *decoder) reconstruct(c *component, bx, by int, blk *[64]int16) {
	n := d.n
	stride := c.bw * n
	out := c.pix[by*n*stride+bx*n:]
	q := &d.quant[c.tq]
	if d.twelve {
		blk, q = to8Bits(blk, q)
	}
	switch n {
	case 1:
		v := clampCoef(int(blk[0]) * int(q[0]))
		out[0] = clamp((v+4)>>3 + 128) // DC/8 is the block mean
	case 2:
		reconstruct2(blk, q, out, stride)
	case 4:
		reconstruct4(blk, q, out, stride)
	default:
		reconstruct8(blk, q, out, stride)
	}
}

// descale turns a two-pass fixed-point result into a sample: rounded, level-shifted, clamped.
func descale(v int) byte {
	return clamp((v + round) >> (2 * constBits))
}

func fill(out []byte, stride, n int, v byte) {
	for y := range n {
		row := out[y*stride : y*stride+n]
		for x := range row {
			row[x] = v
		}
	}
}

func reconstruct2(blk *[64]int16, q *[64]int32, out []byte, stride int) {
	b := &basis[2]
	a00 := clampCoef(int(blk[0]) * int(q[0]))
	a01 := clampCoef(int(blk[1]) * int(q[1]))
	a10 := clampCoef(int(blk[8]) * int(q[8]))
	a11 := clampCoef(int(blk[9]) * int(q[9]))
	// Columns, then rows: o = B·a·Bᵀ with B = [[k, h], [k, -h]].
	k, h := b[0][0], b[0][1]
	c0, c1 := k*a00+h*a10, k*a00-h*a10 // column 0 at y = 0, 1
	d0, d1 := k*a01+h*a11, k*a01-h*a11 // column 1
	out[0], out[1] = descale(k*c0+h*d0), descale(k*c0-h*d0)
	out[stride], out[stride+1] = descale(k*c1+h*d1), descale(k*c1-h*d1)
}

func reconstruct4(blk *[64]int16, q *[64]int32, out []byte, stride int) {
	var in [4][4]int
	ac := false
	for v := range 4 {
		for u := range 4 {
			if x := blk[v*8+u]; x != 0 {
				in[v][u] = clampCoef(int(x) * int(q[v*8+u]))
				ac = ac || v|u != 0
			}
		}
	}
	if !ac {
		fill(out, stride, 4, descale(in[0][0]*basis[4][0][0]*basis[4][0][0]))
		return
	}
	var t [4][4]int
	for u := range 4 {
		t[0][u], t[1][u], t[2][u], t[3][u] = idct4(in[0][u], in[1][u], in[2][u], in[3][u])
	}
	for y := range 4 {
		o0, o1, o2, o3 := idct4(t[y][0], t[y][1], t[y][2], t[y][3])
		row := out[y*stride : y*stride+4]
		row[0], row[1], row[2], row[3] = descale(o0), descale(o1), descale(o2), descale(o3)
	}
}

// idct4 is the 4-point transform by symmetry: basis[4][3-x][u] = (-1)^u basis[4][x][u].
func idct4(a0, a1, a2, a3 int) (o0, o1, o2, o3 int) {
	b := &basis[4]
	e0 := b[0][0]*a0 + b[0][2]*a2
	e1 := b[1][0]*a0 + b[1][2]*a2
	d0 := b[0][1]*a1 + b[0][3]*a3
	d1 := b[1][1]*a1 + b[1][3]*a3
	return e0 + d0, e1 + d1, e1 - d1, e0 - d0
}

func reconstruct8(blk *[64]int16, q *[64]int32, out []byte, stride int) {
	var in [64]int
	cols := 0 // bit u set: column u has a non-zero coefficient
	ac := false
	for i, x := range blk {
		if x != 0 {
			in[i] = clampCoef(int(x) * int(q[i]))
			cols |= 1 << (i & 7)
			ac = ac || i != 0
		}
	}
	if !ac {
		fill(out, stride, 8, descale(in[0]*basis[8][0][0]*basis[8][0][0]))
		return
	}
	// Pass 1: each column of coefficients to 8 vertical samples.
	var tmp [64]int
	for u := range 8 {
		if cols&(1<<u) == 0 {
			continue
		}
		var col, res [8]int
		for v := range 8 {
			col[v] = in[v*8+u]
		}
		idct8(&col, &res)
		for y := range 8 {
			tmp[y*8+u] = res[y]
		}
	}
	// Pass 2: each row to 8 horizontal samples.
	for y := range 8 {
		var res [8]int
		idct8((*[8]int)(tmp[y*8:y*8+8]), &res)
		o := out[y*stride : y*stride+8]
		for x := range o {
			o[x] = descale(res[x])
		}
	}
}

// idct8 is the 8-point transform split by symmetry: basis[8][7-x][u] = (-1)^u basis[8][x][u],
// so out[x] = even[x] + odd[x] and out[7-x] = even[x] - odd[x]; the even half is itself split
// the same way. 22 products instead of 64.
func idct8(in, out *[8]int) {
	b := &basis[8]
	a := b[0][0] * (in[0] + in[4])
	c := b[0][0] * (in[0] - in[4])
	p := b[0][2]*in[2] + b[0][6]*in[6]
	q := b[1][2]*in[2] + b[1][6]*in[6]
	e0, e3 := a+p, a-p
	e1, e2 := c+q, c-q
	o0 := b[0][1]*in[1] + b[0][3]*in[3] + b[0][5]*in[5] + b[0][7]*in[7]
	o1 := b[1][1]*in[1] + b[1][3]*in[3] + b[1][5]*in[5] + b[1][7]*in[7]
	o2 := b[2][1]*in[1] + b[2][3]*in[3] + b[2][5]*in[5] + b[2][7]*in[7]
	o3 := b[3][1]*in[1] + b[3][3]*in[3] + b[3][5]*in[5] + b[3][7]*in[7]
	out[0], out[7] = e0+o0, e0-o0
	out[1], out[6] = e1+o1, e1-o1
	out[2], out[5] = e2+o2, e2-o2
	out[3], out[4] = e3+o3, e3-o3
}

// unitQuant is the quantisation table of coefficients already dequantised.
var unitQuant = func() (q [64]int32) {
	for i := range q {
		q[i] = 1
	}
	return q
}()

// to8Bits turns a 12-bit image's block into the 8-bit one of the same picture: the transform is
// linear, so its dequantised coefficients over 16 (rounded) give samples over 16, the 8-bit
// level shift included. The rounding costs under half an 8-bit level.
func to8Bits(blk *[64]int16, q *[64]int32) (*[64]int16, *[64]int32) {
	var out [64]int16
	for i, v := range blk {
		x := int(v) * int(q[i])
		if x < 0 {
			x = -((-x + 8) >> 4)
		} else {
			x = (x + 8) >> 4
		}
		out[i] = int16(clampCoef(x))
	}
	return &out, &unitQuant
}

func clampCoef(v int) int {
	return min(max(v, -coefLimit), coefLimit)
}

func clamp(v int) byte {
	return byte(min(max(v, 0), 255))
}
