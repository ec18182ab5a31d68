// Package jpegenc writes baseline JPEGs straight from the planes of a 4:2:0 *image.YCbCr or
// an *image.Gray: no per-pixel colour conversion or chroma averaging (the planes are already
// what a JPEG holds), quantisation by multiplying with reciprocals, and the image cut into
// stripes of MCU rows separated by restart markers, so the stripes are entropy-coded in
// parallel. The stripe height is fixed, so the bytes never depend on the number of CPUs.
//
// The tables are those of ITU-T T.81 Annex K (the same image/jpeg uses), scaled by quality
// as libjpeg and image/jpeg scale them, so at the same quality the output matches
// image/jpeg's in size and fidelity.
package jpegenc

import (
	"bufio"
	"errors"
	"image"
	"io"
	"math"
	"math/bits"
	"runtime"

	"github.com/sluice-dev/sluice/pkg/workgroup"
)

// stripeRows is the number of MCU rows between restart markers (fewer for images so wide
// that the restart interval, counted in MCUs, would not fit in 16 bits).
const stripeRows = 8

// Supports reports whether Encode can write m.
func Supports(m image.Image) bool {
	switch m := m.(type) {
	case *image.YCbCr:
		return m.SubsampleRatio == image.YCbCrSubsampleRatio420
	case *image.Gray:
		return true
	}
	return false
}

// component is one plane of the image and how it is coded.
type component struct {
	pix          []uint8
	stride, w, h int // the plane's samples
	hv           int // blocks per MCU along each axis (2 for 4:2:0 luma, else 1)
	table        int // 0 luminance, 1 chrominance: quantisation and Huffman tables
}

// Encode writes m (see Supports) as a baseline JPEG of the given quality (clamped to 1–100).
func Encode(w io.Writer, m image.Image, quality int) error {
	var comps []component
	var r image.Rectangle
	switch m := m.(type) {
	case *image.YCbCr:
		if m.SubsampleRatio != image.YCbCrSubsampleRatio420 {
			return errors.New("jpegenc: only 4:2:0 YCbCr images")
		}
		r = m.Rect
		cx0, cy0 := r.Min.X/2, r.Min.Y/2
		cw, ch := (r.Max.X+1)/2-cx0, (r.Max.Y+1)/2-cy0
		co := m.COffset(r.Min.X, r.Min.Y)
		comps = []component{
			{pix: m.Y[m.YOffset(r.Min.X, r.Min.Y):], stride: m.YStride, w: r.Dx(), h: r.Dy(), hv: 2, table: 0},
			{pix: m.Cb[co:], stride: m.CStride, w: cw, h: ch, hv: 1, table: 1},
			{pix: m.Cr[co:], stride: m.CStride, w: cw, h: ch, hv: 1, table: 1},
		}
	case *image.Gray:
		r = m.Rect
		comps = []component{{pix: m.Pix[m.PixOffset(r.Min.X, r.Min.Y):], stride: m.Stride, w: r.Dx(), h: r.Dy(), hv: 1}}
	default:
		return errors.New("jpegenc: only 4:2:0 YCbCr and grey images")
	}
	width, height := r.Dx(), r.Dy()
	if width <= 0 || height <= 0 || width > 0xffff || height > 0xffff {
		return errors.New("jpegenc: image size out of JPEG's range")
	}
	e := newEncoder(comps, width, height, quality)
	stripes := e.encodeStripes()
	bw := bufio.NewWriter(w)
	e.writeHeaders(bw, len(stripes) > 1)
	for i, s := range stripes {
		if i > 0 {
			bw.Write([]byte{0xff, 0xd0 + byte((i-1)%8)}) // RSTn
		}
		bw.Write(s)
	}
	bw.Write([]byte{0xff, 0xd9}) // EOI
	return bw.Flush()
}

type encoder struct {
	comps         []component
	width, height int
	mcuSize       int // pixels per MCU edge: 16 for 4:2:0, 8 for grey
	mcusX, mcusY  int
	quant         [2][64]uint8   // natural order
	recip         [2][64]float32 // 1 / (quant × the FDCT's scale), natural order
	dc, ac        [2]huffTable
	stripeRows    int // MCU rows per stripe
	restartMCUs   int // MCUs per stripe
}

func newEncoder(comps []component, width, height, quality int) *encoder {
	e := &encoder{comps: comps, width: width, height: height, mcuSize: 8 * comps[0].hv}
	e.mcusX = (width + e.mcuSize - 1) / e.mcuSize
	e.mcusY = (height + e.mcuSize - 1) / e.mcuSize
	e.stripeRows = stripeRows
	for e.mcusX*e.stripeRows > 0xffff {
		e.stripeRows /= 2
	}
	e.restartMCUs = e.mcusX * e.stripeRows
	quality = min(100, max(1, quality))
	scale := 200 - 2*quality
	if quality < 50 {
		scale = 5000 / quality
	}
	for t := range 2 {
		for k := range 64 {
			q := min(255, max(1, (int(baseQuant[t][k])*scale+50)/100))
			e.quant[t][k] = uint8(q)
			u, v := k%8, k/8
			e.recip[t][k] = float32(1 / (float64(q) * aanScale[u] * aanScale[v] * 8))
		}
		e.dc[t] = newHuffTable(huffSpecs[2*t])
		e.ac[t] = newHuffTable(huffSpecs[2*t+1])
	}
	return e
}

// encodeStripes entropy-codes each stripe of MCU rows on its own (DC predictions
// restart at each), one stripe per CPU at a time, and returns their bytes in order.
func (e *encoder) encodeStripes() [][]byte {
	n := (e.mcusY + e.stripeRows - 1) / e.stripeRows
	out := make([][]byte, n)
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	var wg workgroup.Group
	for range min(n, runtime.GOMAXPROCS(0)) {
		wg.Go(func() {
			for i := range next {
				out[i] = e.encodeStripe(i)
			}
		})
	}
	wg.Wait()
	return out
}

func (e *encoder) encodeStripe(s int) []byte {
	bw := bitWriter{buf: make([]byte, 0, e.restartMCUs*64)}
	var pred [3]int32
	var blk [64]float32
	var q [64]int32
	for my := s * e.stripeRows; my < min(e.mcusY, (s+1)*e.stripeRows); my++ {
		for mx := range e.mcusX {
			for ci := range e.comps {
				c := &e.comps[ci]
				for by := range c.hv {
					for bx := range c.hv {
						c.load(&blk, (mx*c.hv+bx)*8, (my*c.hv+by)*8)
						fdct(&blk)
						e.quantize(&q, &blk, c.table)
						pred[ci] = e.writeBlock(&bw, &q, pred[ci], c.table)
					}
				}
			}
		}
	}
	return bw.flush()
}

// load copies the 8×8 block at (x, y) of the plane, level-shifted, repeating the last row and
// column where the block runs past the edge.
func (c *component) load(blk *[64]float32, x, y int) {
	for j := range 8 {
		row := c.pix[min(y+j, c.h-1)*c.stride:][:c.w]
		if x+8 <= c.w {
			src := row[x : x+8 : x+8]
			for i, v := range src {
				blk[j*8+i] = float32(v) - 128
			}
			continue
		}
		for i := range 8 {
			blk[j*8+i] = float32(row[min(x+i, c.w-1)]) - 128
		}
	}
}

// quantize divides each coefficient by its step (multiplying by the reciprocal, which also
// undoes the FDCT's scale), rounding to nearest, into zig-zag order.
func (e *encoder) quantize(q *[64]int32, blk *[64]float32, t int) {
	r := &e.recip[t]
	for k, n := range zigzag {
		// Adding an offset keeps the value positive, so truncation rounds to nearest.
		q[k] = int32(blk[n]*r[n]+16384.5) - 16384
	}
}

// writeBlock codes one quantised block and returns its DC value, the next block's prediction.
func (e *encoder) writeBlock(w *bitWriter, q *[64]int32, pred int32, t int) int32 {
	dc, ac := &e.dc[t], &e.ac[t]
	diff := q[0] - pred
	size, v := magnitude(diff)
	w.put(dc.code[size], dc.size[size])
	w.put(v, size)
	run := uint32(0)
	for k := 1; k < 64; k++ {
		if q[k] == 0 {
			run++
			continue
		}
		for run > 15 {
			w.put(ac.code[0xf0], ac.size[0xf0]) // ZRL: sixteen zeros
			run -= 16
		}
		size, v := magnitude(q[k])
		sym := run<<4 | size
		w.put(ac.code[sym], ac.size[sym])
		w.put(v, size)
		run = 0
	}
	if run > 0 {
		w.put(ac.code[0], ac.size[0]) // EOB
	}
	return q[0]
}

// magnitude is v's size category and the bits that code it (one's complement for negatives).
func magnitude(v int32) (size, bitsOut uint32) {
	a := v
	if v < 0 {
		a = -v
		v--
	}
	size = uint32(bits.Len32(uint32(a)))
	return size, uint32(v) & (1<<size - 1)
}

// bitWriter packs Huffman codes into bytes, stuffing a zero after every 0xff.
type bitWriter struct {
	buf   []byte
	acc   uint64
	nbits uint32
}

func (w *bitWriter) put(code, size uint32) {
	w.acc = w.acc<<size | uint64(code)
	w.nbits += size
	for w.nbits >= 8 {
		w.nbits -= 8
		b := byte(w.acc >> w.nbits)
		w.buf = append(w.buf, b)
		if b == 0xff {
			w.buf = append(w.buf, 0)
		}
	}
}

// flush pads the last byte with one bits, as T.81 asks before a marker.
func (w *bitWriter) flush() []byte {
	if w.nbits > 0 {
		pad := 8 - w.nbits
		w.put(1<<pad-1, pad)
	}
	return w.buf
}

func (e *encoder) writeHeaders(w *bufio.Writer, restarts bool) {
	color := len(e.comps) == 3
	ntables := 1
	if color {
		ntables = 2
	}
	w.Write([]byte{0xff, 0xd8}) // SOI
	// JFIF APP0: version 1.01, no density, no thumbnail.
	w.Write([]byte{0xff, 0xe0, 0, 16, 'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0})
	// DQT, in zig-zag order.
	marker(w, 0xdb, 65*ntables)
	for t := range ntables {
		w.WriteByte(byte(t))
		for _, n := range zigzag {
			w.WriteByte(e.quant[t][n])
		}
	}
	// SOF0: 8-bit samples, the size, each component's id, sampling and table.
	marker(w, 0xc0, 6+3*len(e.comps))
	w.Write([]byte{8, byte(e.height >> 8), byte(e.height), byte(e.width >> 8), byte(e.width), byte(len(e.comps))})
	for i, c := range e.comps {
		w.Write([]byte{byte(i + 1), byte(c.hv<<4 | c.hv), byte(c.table)})
	}
	// DHT.
	n := 0
	for _, s := range huffSpecs[:2*ntables] {
		n += 17 + len(s.values)
	}
	marker(w, 0xc4, n)
	for i, s := range huffSpecs[:2*ntables] {
		w.WriteByte(byte((i%2)<<4 | i/2)) // class (0 DC, 1 AC) and table number
		w.Write(s.counts[:])
		w.Write(s.values)
	}
	if restarts {
		marker(w, 0xdd, 2)
		w.Write([]byte{byte(e.restartMCUs >> 8), byte(e.restartMCUs)})
	}
	// SOS: every component, all 64 coefficients in one scan.
	marker(w, 0xda, 4+2*len(e.comps))
	w.WriteByte(byte(len(e.comps)))
	for i, c := range e.comps {
		w.Write([]byte{byte(i + 1), byte(c.table<<4 | c.table)})
	}
	w.Write([]byte{0, 63, 0})
}

// marker writes a marker segment's header for a payload of n bytes.
func marker(w *bufio.Writer, code byte, n int) {
	w.Write([]byte{0xff, code, byte((n + 2) >> 8), byte(n + 2)})
}

// huffTable maps a symbol to its code and code length.
type huffTable struct {
	code, size [256]uint32
}

// newHuffTable assigns canonical codes (T.81 Annex C): shortest first, consecutive within a
// length, doubling when the length grows.
func newHuffTable(s huffSpec) huffTable {
	var t huffTable
	code, k := uint32(0), 0
	for l, count := range s.counts {
		for range count {
			t.code[s.values[k]] = code
			t.size[s.values[k]] = uint32(l + 1)
			code++
			k++
		}
		code <<= 1
	}
	return t
}

// aanScale[k] is the factor the AAN FDCT leaves on output k: 1 for DC, √2·cos(kπ/16) else.
var aanScale = func() (s [8]float64) {
	s[0] = 1
	for k := 1; k < 8; k++ {
		s[k] = math.Sqrt2 * math.Cos(float64(k)*math.Pi/16)
	}
	return s
}()

// fdct is the forward DCT of Arai, Agui and Nakajima (5 multiplications per 8 points),
// rows then columns, in place; output (u, v) comes out scaled by 8·aanScale[u]·aanScale[v].
func fdct(b *[64]float32) {
	for i := range 8 {
		fdct8(b[i*8:i*8+8:i*8+8], 1)
	}
	for i := range 8 {
		fdct8(b[i:], 8)
	}
}

// fdct8 transforms the 8 values d[0], d[s], …, d[7s].
func fdct8(d []float32, s int) {
	_ = d[7*s]
	t0, t7 := d[0]+d[7*s], d[0]-d[7*s]
	t1, t6 := d[s]+d[6*s], d[s]-d[6*s]
	t2, t5 := d[2*s]+d[5*s], d[2*s]-d[5*s]
	t3, t4 := d[3*s]+d[4*s], d[3*s]-d[4*s]
	// Even part.
	t10, t13 := t0+t3, t0-t3
	t11, t12 := t1+t2, t1-t2
	d[0], d[4*s] = t10+t11, t10-t11
	z1 := (t12 + t13) * 0.707106781
	d[2*s], d[6*s] = t13+z1, t13-z1
	// Odd part.
	t10, t11, t12 = t4+t5, t5+t6, t6+t7
	z5 := (t10 - t12) * 0.382683433
	z2 := 0.541196100*t10 + z5
	z4 := 1.306562965*t12 + z5
	z3 := t11 * 0.707106781
	z11, z13 := t7+z3, t7-z3
	d[5*s], d[3*s] = z13+z2, z13-z2
	d[s], d[7*s] = z11+z4, z11-z4
}
