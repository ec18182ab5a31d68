package render

import (
	"image"
	"math"
	"runtime"

	"github.com/sluice-dev/sluice/pkg/workgroup"
)

// This file resizes 8-bit planes (a JPEG's Y, Cb and Cr, or its grey) with the same Lanczos-3
// filter and pixel-centre geometry as imaging.Resize, in fixed point: the weights are integers
// that sum to 1<<fracBits, each pass accumulates in int32 and rounds to 8 bits (as imaging
// rounds between its passes). Working on the planes the decoder made skips the per-pixel
// YCbCr→RGBA conversion and the alpha weighting imaging does on four float64 channels.

const fracBits = 14

// taps is one pass's filter: output i reads n source samples from start[i], weighted by
// weight[i*n:(i+1)*n] (zero-padded where the filter is cut by an edge).
type taps struct {
	n      int
	start  []int
	weight []int32
}

// lanczos3 is imaging.Lanczos's kernel: sinc(x)·sinc(x/3) on |x| < 3.
func lanczos3(x float64) float64 {
	x = math.Abs(x)
	if x >= 3 {
		return 0
	}
	return sinc(x) * sinc(x/3)
}

func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	return math.Sin(math.Pi*x) / (math.Pi * x)
}

// newTaps is the filter from a row of src samples standing for srcPx pixels to a row of dst
// samples standing for dstPx pixels. A sample stands for up pixels (chroma subsampling:
// up = 2 for 4:2:0) and an output sample is the mean of down pixels. So it is, in one pass,
// what imaging does to an RGB picture that the JPEG encoder then subsamples: each sample
// repeated up times (how Go's YCbCr image reads its chroma), Lanczos-3 from srcPx pixels to
// dstPx, pixel centres aligned (output pixel v centred on (v+0.5)·srcPx/dstPx − 0.5, the
// kernel stretched by srcPx/dstPx when shrinking), then down pixels averaged into a sample.
// For luma, up = down = 1: plain Lanczos.
func newTaps(src, srcPx, dst, dstPx int) taps {
	up, down := (srcPx+src-1)/src, (dstPx+dst-1)/dst
	scale := float64(srcPx) / float64(dstPx)
	stretch := max(scale, 1)
	support := 3 * stretch
	// First the exact weights of each output over the samples it touches.
	first, end := make([]int, dst), make([]int, dst) // output i's weights: exact[end[i-1]:end[i]]
	exact := make([]float64, 0, dst*int(2*support/float64(up)+float64(down)+2))
	acc := make([]float64, src)
	var kv []float64 // kernel values of one output pixel
	n := 0
	for i := range dst {
		lo, hi, count := src, -1, 0
		for v := i * down; v < min((i+1)*down, dstPx); v++ {
			count++
			centre := (float64(v)+0.5)*scale - 0.5
			// The pixels strictly inside (centre − support, centre + support).
			p0 := max(0, int(math.Floor(centre-support))+1)
			p1 := min(srcPx-1, int(math.Ceil(centre+support))-1)
			kv = kv[:0]
			var sum float64
			for p := p0; p <= p1; p++ {
				kv = append(kv, lanczos3((float64(p)-centre)/stretch))
				sum += kv[len(kv)-1]
			}
			for k, w := range kv {
				s := min((p0+k)/up, src-1)
				acc[s] += w / sum
				lo, hi = min(lo, s), max(hi, s)
			}
		}
		first[i] = lo
		for s := lo; s <= hi; s++ {
			exact = append(exact, acc[s]/float64(count))
			acc[s] = 0
		}
		end[i] = len(exact)
		n = max(n, hi-lo+1)
	}
	// Then the same n taps for every output (zeros where it needs fewer), in fixed point.
	t := taps{n: n, start: make([]int, dst), weight: make([]int32, dst*n)}
	from := 0
	for i := range dst {
		span := exact[from:end[i]]
		from = end[i]
		// Keep the window inside the row: slide it left at the right edge.
		start := min(first[i], src-n)
		t.start[i] = start
		row := t.weight[i*n : (i+1)*n]
		// Round each weight, then give the rounding remainder to the largest so the row sums
		// to exactly one: flat areas stay flat.
		var total int32
		big := 0
		for k, w := range span {
			at := first[i] - start + k
			row[at] = int32(math.Round(w * (1 << fracBits)))
			total += row[at]
			if row[at] > row[big] {
				big = at
			}
		}
		row[big] += 1<<fracBits - total
	}
	return t
}

// clip8 rounds a fixed-point sum to a byte.
func clip8(v int32) uint8 {
	v = (v + 1<<(fracBits-1)) >> fracBits
	if uint32(v) > 255 {
		if v < 0 {
			return 0
		}
		return 255
	}
	return uint8(v)
}

// plane is one channel of 8-bit samples: row y is pix[y*stride : y*stride+w]. Its w×h
// samples stand for a px×py picture (more pixels than samples for subsampled chroma).
type plane struct {
	pix          []uint8
	stride, w, h int
	px, py       int
}

// newPlane is a w×h plane standing for px×py pixels.
func newPlane(w, h, px, py int) plane {
	return plane{pix: make([]uint8, w*h), stride: w, w: w, h: h, px: px, py: py}
}

func (p plane) row(y int) []uint8 { return p.pix[y*p.stride : y*p.stride+p.w] }

// resizePlane resamples src into dst (whose size is set), horizontally and vertically in
// whichever order costs fewer multiplications.
func resizePlane(dst, src plane) {
	sameW := dst.w == src.w && dst.px == src.px
	sameH := dst.h == src.h && dst.py == src.py
	if sameW && sameH {
		for y := range src.h {
			copy(dst.row(y), src.row(y))
		}
		return
	}
	h, v := newTaps(src.w, src.px, dst.w, dst.px), newTaps(src.h, src.py, dst.h, dst.py)
	switch {
	case sameW:
		vertical(dst, src, v)
	case sameH:
		horizontal(dst, src, h)
	case dst.w*src.h*h.n+dst.w*dst.h*v.n <= src.w*dst.h*v.n+dst.w*dst.h*h.n:
		mid := newPlane(dst.w, src.h, dst.px, src.py)
		horizontal(mid, src, h)
		vertical(dst, mid, v)
	default:
		mid := newPlane(src.w, dst.h, src.px, dst.py)
		vertical(mid, src, v)
		horizontal(dst, mid, h)
	}
}

// horizontal resamples each row of src into the row of dst.
func horizontal(dst, src plane, t taps) {
	n := t.n
	inParallel(src.h, func(y0, y1 int) {
		y := y0
		// Four rows at a time: each output's taps and weights are loaded once for all four.
		for ; y+4 <= y1; y += 4 {
			i0, i1, i2, i3 := src.row(y), src.row(y+1), src.row(y+2), src.row(y+3)
			o0, o1, o2, o3 := dst.row(y), dst.row(y+1), dst.row(y+2), dst.row(y+3)
			o1, o2, o3 = o1[:len(o0)], o2[:len(o0)], o3[:len(o0)]
			for x := range o0 {
				at := t.start[x]
				w := t.weight[x*n:][:n]
				a0, a1, a2, a3 := i0[at:][:n], i1[at:][:n], i2[at:][:n], i3[at:][:n]
				var s0, s1, s2, s3 int32
				for k, wk := range w {
					s0 += int32(a0[k]) * wk
					s1 += int32(a1[k]) * wk
					s2 += int32(a2[k]) * wk
					s3 += int32(a3[k]) * wk
				}
				o0[x], o1[x], o2[x], o3[x] = clip8(s0), clip8(s1), clip8(s2), clip8(s3)
			}
		}
		for ; y < y1; y++ {
			in, out := src.row(y), dst.row(y)
			for x := range out {
				a := in[t.start[x]:][:n]
				var sum int32
				for k, wk := range t.weight[x*n:][:n] {
					sum += int32(a[k]) * wk
				}
				out[x] = clip8(sum)
			}
		}
	})
}

// vertical makes each row of dst from the weighted rows of src it covers.
func vertical(dst, src plane, t taps) {
	inParallel(dst.h, func(y0, y1 int) {
		acc := make([]int32, dst.w)
		for y := y0; y < y1; y++ {
			clear(acc)
			ws, first := t.weight[y*t.n:(y+1)*t.n], t.start[y]
			k := 0
			// Four source rows per sweep over the accumulator: a quarter of its loads and stores.
			for ; k+4 <= len(ws); k += 4 {
				r0 := src.row(first + k)[:len(acc)]
				r1 := src.row(first + k + 1)[:len(acc)]
				r2 := src.row(first + k + 2)[:len(acc)]
				r3 := src.row(first + k + 3)[:len(acc)]
				w0, w1, w2, w3 := ws[k], ws[k+1], ws[k+2], ws[k+3]
				for x := range acc {
					acc[x] += int32(r0[x])*w0 + int32(r1[x])*w1 + int32(r2[x])*w2 + int32(r3[x])*w3
				}
			}
			for ; k < len(ws); k++ {
				r, w := src.row(first + k)[:len(acc)], ws[k]
				for x := range acc {
					acc[x] += int32(r[x]) * w
				}
			}
			out := dst.row(y)[:len(acc)]
			for x, v := range acc {
				out[x] = clip8(v)
			}
		}
	})
}

// inParallel splits rows [0, n) into one band per CPU and runs fn on each band.
func inParallel(n int, fn func(lo, hi int)) {
	workers := min(runtime.GOMAXPROCS(0), max(1, n/16))
	if workers == 1 {
		fn(0, n)
		return
	}
	var wg workgroup.Group
	for i := range workers {
		lo, hi := n*i/workers, n*(i+1)/workers
		wg.Go(func() { fn(lo, hi) })
	}
	wg.Wait()
}

// lumaPlane is the Y plane of m's visible rectangle.
func lumaPlane(m *image.YCbCr) plane {
	r := m.Rect
	return plane{pix: m.Y[m.YOffset(r.Min.X, r.Min.Y):], stride: m.YStride, w: r.Dx(), h: r.Dy(), px: r.Dx(), py: r.Dy()}
}

// chromaPlanes are the Cb and Cr planes covering m's visible rectangle.
func chromaPlanes(m *image.YCbCr) (cb, cr plane) {
	r := m.Rect
	x0, x1, y0, y1 := r.Min.X, r.Max.X, r.Min.Y, r.Max.Y
	switch m.SubsampleRatio {
	case image.YCbCrSubsampleRatio422:
		x0, x1 = x0/2, (x1+1)/2
	case image.YCbCrSubsampleRatio420:
		x0, x1, y0, y1 = x0/2, (x1+1)/2, y0/2, (y1+1)/2
	case image.YCbCrSubsampleRatio440:
		y0, y1 = y0/2, (y1+1)/2
	case image.YCbCrSubsampleRatio411:
		x0, x1 = x0/4, (x1+3)/4
	case image.YCbCrSubsampleRatio410:
		x0, x1, y0, y1 = x0/4, (x1+3)/4, y0/2, (y1+1)/2
	}
	off := m.COffset(r.Min.X, r.Min.Y)
	cb = plane{pix: m.Cb[off:], stride: m.CStride, w: x1 - x0, h: y1 - y0, px: r.Dx(), py: r.Dy()}
	cr = plane{pix: m.Cr[off:], stride: m.CStride, w: x1 - x0, h: y1 - y0, px: r.Dx(), py: r.Dy()}
	return cb, cr
}

// resizePlanar resizes a YCbCr or grey image to w×h on its planes. A YCbCr result is 4:2:0,
// what the JPEG encoder writes anyway, so chroma costs a quarter of luma. ok is false for any
// other kind of image.
func resizePlanar(src image.Image, w, h int) (image.Image, bool) {
	switch m := src.(type) {
	case *image.YCbCr:
		out := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
		cw, ch := (w+1)/2, (h+1)/2
		cb, cr := chromaPlanes(m)
		var wg workgroup.Group
		wg.Go(func() { resizePlane(plane{pix: out.Cb, stride: out.CStride, w: cw, h: ch, px: w, py: h}, cb) })
		wg.Go(func() { resizePlane(plane{pix: out.Cr, stride: out.CStride, w: cw, h: ch, px: w, py: h}, cr) })
		resizePlane(plane{pix: out.Y, stride: out.YStride, w: w, h: h, px: w, py: h}, lumaPlane(m))
		wg.Wait()
		return out, true
	case *image.Gray:
		out := image.NewGray(image.Rect(0, 0, w, h))
		r := m.Rect
		resizePlane(plane{pix: out.Pix, stride: out.Stride, w: w, h: h, px: w, py: h},
			plane{pix: m.Pix[m.PixOffset(r.Min.X, r.Min.Y):], stride: m.Stride, w: r.Dx(), h: r.Dy(), px: r.Dx(), py: r.Dy()})
		return out, true
	}
	return nil, false
}
