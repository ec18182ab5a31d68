package media

import "image"

// wasmFreedHead is how much of a HEIC decode's output the decoder itself overwrites:
// gen2brain/heic v0.4.5 frees its output buffer on the WebAssembly heap (a deferred free) before
// handing back a view of it, and the allocator writes its free-list links over the buffer's
// first 24 bytes, the first 24 pixels of the top row. They are rebuilt from the row below; the
// rest of the buffer is intact (TestHEIFFirstRowIsRepaired compares with libheif's own decode;
// gen2brain/avif has the same deferred free, but its output shows no damage there).
const wasmFreedHead = 24

// repairFreedHead rebuilds the first wasmFreedHead bytes of img's first plane from its second
// row.
func repairFreedHead(img image.Image) {
	var pix []byte
	var stride int
	switch m := img.(type) {
	case *image.YCbCr:
		pix, stride = m.Y, m.YStride
	case *image.RGBA:
		pix, stride = m.Pix, m.Stride
	case *image.NRGBA:
		pix, stride = m.Pix, m.Stride
	case *image.RGBA64:
		pix, stride = m.Pix, m.Stride
	case *image.Gray:
		pix, stride = m.Pix, m.Stride
	default:
		return
	}
	if len(pix) >= 2*stride && stride >= wasmFreedHead {
		copy(pix[:wasmFreedHead], pix[stride:stride+wasmFreedHead])
	}
}
