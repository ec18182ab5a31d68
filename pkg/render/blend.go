package render

import (
	"image"
	"image/color"
	"slices"
)

// blend420 returns a copy of m with mark laid over it, its top-left corner at at, each mark
// pixel's alpha scaled by opacity/255: "over" compositing done on the planes. Blending is a
// weighted average and Y, Cb and Cr are affine in R, G and B, so mixing in YCbCr is mixing in
// RGB. Each chroma sample mixes in the mean of the four pixels it covers (pixels outside the
// mark count as transparent).
func blend420(m *image.YCbCr, mark *image.NRGBA, at image.Point, opacity uint8) *image.YCbCr {
	out := &image.YCbCr{
		Y: slices.Clone(m.Y), Cb: slices.Clone(m.Cb), Cr: slices.Clone(m.Cr),
		YStride: m.YStride, CStride: m.CStride, SubsampleRatio: m.SubsampleRatio, Rect: m.Rect,
	}
	box := image.Rectangle{Min: at, Max: at.Add(mark.Rect.Size())}.Intersect(m.Rect)
	if box.Empty() {
		return out
	}
	const one = 255 * 255 // full coverage: alpha 255 at opacity 255
	// Chroma accumulators over the chroma samples the box touches.
	c0 := image.Pt(box.Min.X/2, box.Min.Y/2)
	cw, ch := (box.Max.X+1)/2-c0.X, (box.Max.Y+1)/2-c0.Y
	sumA := make([]uint32, cw*ch)
	sumCb := make([]uint32, cw*ch)
	sumCr := make([]uint32, cw*ch)
	for y := box.Min.Y; y < box.Max.Y; y++ {
		for x := box.Min.X; x < box.Max.X; x++ {
			p := mark.PixOffset(x-at.X+mark.Rect.Min.X, y-at.Y+mark.Rect.Min.Y)
			a := uint32(mark.Pix[p+3]) * uint32(opacity)
			if a == 0 {
				continue
			}
			yy, cb, cr := color.RGBToYCbCr(mark.Pix[p], mark.Pix[p+1], mark.Pix[p+2])
			i := out.YOffset(x, y)
			out.Y[i] = uint8((uint32(out.Y[i])*(one-a) + uint32(yy)*a + one/2) / one)
			j := (y/2-c0.Y)*cw + x/2 - c0.X
			sumA[j] += a
			sumCb[j] += uint32(cb) * a
			sumCr[j] += uint32(cr) * a
		}
	}
	for cy := range ch {
		for cx := range cw {
			j := cy*cw + cx
			if sumA[j] == 0 {
				continue
			}
			i := out.COffset(2*(c0.X+cx), 2*(c0.Y+cy))
			keep := 4*one - sumA[j]
			out.Cb[i] = uint8((uint32(out.Cb[i])*keep + sumCb[j] + 2*one) / (4 * one))
			out.Cr[i] = uint8((uint32(out.Cr[i])*keep + sumCr[j] + 2*one) / (4 * one))
		}
	}
	return out
}
