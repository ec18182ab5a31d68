package media

import (
	"image"

	"github.com/disintegration/imaging"
)

// orient turns an image upright per its EXIF orientation tag, as imaging.AutoOrientation
// does. A JPEG's YCbCr or grey image is turned plane by plane and stays YCbCr or grey (the
// renderer resizes those planes without converting them); anything else becomes NRGBA.
func orient(img image.Image, orientation int) image.Image {
	if orientation < 2 || orientation > 8 {
		return img
	}
	if out, ok := orientPlanes(img, orientation); ok {
		return out
	}
	switch orientation {
	case 2:
		return imaging.FlipH(img)
	case 3:
		return imaging.Rotate180(img)
	case 4:
		return imaging.FlipV(img)
	case 5:
		return imaging.Transpose(img)
	case 6:
		return imaging.Rotate270(img)
	case 7:
		return imaging.Transverse(img)
	default: // 8
		return imaging.Rotate90(img)
	}
}

// transposed is the chroma subsampling of an image once its axes are swapped; ok is false
// for those with no swapped counterpart in package image.
var transposed = map[image.YCbCrSubsampleRatio]image.YCbCrSubsampleRatio{
	image.YCbCrSubsampleRatio444: image.YCbCrSubsampleRatio444,
	image.YCbCrSubsampleRatio420: image.YCbCrSubsampleRatio420,
	image.YCbCrSubsampleRatio422: image.YCbCrSubsampleRatio440,
	image.YCbCrSubsampleRatio440: image.YCbCrSubsampleRatio422,
}

// orientPlanes turns a YCbCr (with a subsampling that survives the turn) or grey image.
func orientPlanes(img image.Image, orientation int) (image.Image, bool) {
	swap := orientation >= 5
	switch m := img.(type) {
	case *image.YCbCr:
		ratio := m.SubsampleRatio
		if swap {
			var ok bool
			if ratio, ok = transposed[ratio]; !ok {
				return nil, false
			}
		}
		b := m.Rect
		w, h := b.Dx(), b.Dy()
		if swap {
			w, h = h, w
		}
		out := image.NewYCbCr(image.Rect(0, 0, w, h), ratio)
		turn(out.Y, out.YStride, m.Y[m.YOffset(b.Min.X, b.Min.Y):], m.YStride, b.Dx(), b.Dy(), orientation)
		// The chroma samples covering the source's rectangle.
		x0, x1, y0, y1 := b.Min.X, b.Max.X, b.Min.Y, b.Max.Y
		if m.SubsampleRatio == image.YCbCrSubsampleRatio422 || m.SubsampleRatio == image.YCbCrSubsampleRatio420 {
			x0, x1 = x0/2, (x1+1)/2
		}
		if m.SubsampleRatio == image.YCbCrSubsampleRatio440 || m.SubsampleRatio == image.YCbCrSubsampleRatio420 {
			y0, y1 = y0/2, (y1+1)/2
		}
		cw, ch := x1-x0, y1-y0
		off := m.COffset(b.Min.X, b.Min.Y)
		turn(out.Cb, out.CStride, m.Cb[off:], m.CStride, cw, ch, orientation)
		turn(out.Cr, out.CStride, m.Cr[off:], m.CStride, cw, ch, orientation)
		return out, true
	case *image.Gray:
		b := m.Rect
		w, h := b.Dx(), b.Dy()
		if swap {
			w, h = h, w
		}
		out := image.NewGray(image.Rect(0, 0, w, h))
		turn(out.Pix, out.Stride, m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride, b.Dx(), b.Dy(), orientation)
		return out, true
	}
	return nil, false
}

// turn writes the sw×sh plane src, turned per orientation, into dst: dst's sample (x, y) is
// src's sample at the position the orientation maps it from.
func turn(dst []uint8, dstStride int, src []uint8, srcStride, sw, sh, orientation int) {
	dw, dh := sw, sh
	if orientation >= 5 {
		dw, dh = sh, sw
	}
	for y := range dh {
		row := dst[y*dstStride:][:dw]
		for x := range row {
			var sx, sy int
			switch orientation {
			case 2: // mirrored
				sx, sy = sw-1-x, y
			case 3: // upside down
				sx, sy = sw-1-x, sh-1-y
			case 4: // mirrored upside down
				sx, sy = x, sh-1-y
			case 5: // transposed
				sx, sy = y, x
			case 6: // turned a quarter anticlockwise: turn it clockwise
				sx, sy = y, sh-1-x
			case 7: // transversed
				sx, sy = sw-1-y, sh-1-x
			default: // 8, turned a quarter clockwise: turn it anticlockwise
				sx, sy = sw-1-y, x
			}
			row[x] = src[sy*srcStride+sx]
		}
	}
}
