package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"math"

	xwebp "golang.org/x/image/webp"
)

// Lossy WebP stores VP8's Y'CbCr in limited range (studio swing: Y' 16–235, Cb and Cr 16–240,
// BT.601), and golang.org/x/image/webp hands the planes back as an image.YCbCr, which Go (and
// our planar path) read as full-range JFIF: black came out 16 and white 235 (golang/go#40173).
// fullRange rescales the planes in place, so the image stays planar (the fast path) and reads
// as libwebp decodes it, within ±1. Lossless WebP decodes to NRGBA and is left alone.
func fullRange(img image.Image) {
	var m *image.YCbCr
	switch v := img.(type) {
	case *image.YCbCr:
		m = v
	case *image.NYCbCrA: // lossy with an alpha plane
		m = &v.YCbCr
	default:
		return
	}
	for i, v := range m.Y {
		m.Y[i] = studioLuma[v]
	}
	for i, v := range m.Cb {
		m.Cb[i] = studioChroma[v]
	}
	for i, v := range m.Cr {
		m.Cr[i] = studioChroma[v]
	}
}

// studioLuma and studioChroma map limited-range samples to full range (clamped).
var studioLuma, studioChroma = studioTables()

func studioTables() (luma, chroma [256]uint8) {
	for v := range 256 {
		luma[v] = clamp8(float64(v-16) * 255 / 219)
		chroma[v] = clamp8(float64(v-128)*255/224 + 128)
	}
	return luma, chroma
}

func clamp8(x float64) uint8 {
	return uint8(math.Round(max(0, min(255, x))))
}

// riffChunks calls f with each chunk of a RIFF chunk list (the payload of a RIFF file after its
// 12-byte header, or of an ANMF chunk after its 16-byte frame header) until f returns false or a
// chunk overruns the data.
func riffChunks(data []byte, f func(typ string, body []byte) bool) {
	for at := 0; at+8 <= len(data); {
		n := int64(binary.LittleEndian.Uint32(data[at+4:]))
		end := int64(at) + 8 + n
		if end > int64(len(data)) || !f(string(data[at:at+4]), data[at+8:end]) {
			return
		}
		at = int(end + n%2) // chunks are padded to even sizes
	}
}

// riffChunk is the data of the first top-level chunk of type typ in a RIFF file, or nil.
func riffChunk(data []byte, typ string) []byte {
	if len(data) < 12 {
		return nil
	}
	var found []byte
	riffChunks(data[12:], func(t string, body []byte) bool {
		if t == typ {
			found = body
		}
		return found == nil
	})
	return found
}

// webpFrame is an animated WebP's first frame as a still WebP file of its own, and where it
// sits on the canvas.
type webpFrame struct {
	file   []byte
	at     image.Point
	canvas image.Point
}

// firstFrame extracts the first frame of an animated WebP (VP8X with the animation flag, then
// ANMF chunks, each a frame header and its ALPH and VP8, or VP8L, chunks). ok is false for a
// still WebP.
func firstFrame(data []byte) (webpFrame, bool, error) {
	vp8x := riffChunk(data, "VP8X")
	if len(vp8x) < 10 || vp8x[0]&0x02 == 0 {
		return webpFrame{}, false, nil
	}
	anmf := riffChunk(data, "ANMF")
	if anmf == nil {
		return webpFrame{}, true, errors.New("animated WebP without a frame")
	}
	fr, err := frameFile(anmf)
	fr.canvas = image.Pt(u24(vp8x[4:])+1, u24(vp8x[7:])+1)
	return fr, true, err
}

// frameFile makes one ANMF frame a still WebP file of its own, and says where it sits.
func frameFile(anmf []byte) (webpFrame, error) {
	if len(anmf) < 16 {
		return webpFrame{}, errors.New("animated WebP: a frame header too short")
	}
	fr := webpFrame{at: image.Pt(2*u24(anmf[0:]), 2*u24(anmf[3:]))}
	w, h := u24(anmf[6:])+1, u24(anmf[9:])+1
	var alph, bitstream []byte
	var kind string
	riffChunks(anmf[16:], func(t string, body []byte) bool {
		switch t {
		case "ALPH":
			alph = body
		case "VP8 ", "VP8L":
			kind, bitstream = t, body
		}
		return bitstream == nil
	})
	if bitstream == nil {
		return webpFrame{}, errors.New("animated WebP: a frame without VP8 or VP8L data")
	}
	var chunks []byte
	if alph != nil && kind == "VP8 " {
		head := []byte{0x10, 0, 0, 0} // the alpha flag
		head = append(append(head, le24(w-1)...), le24(h-1)...)
		chunks = append(riffChunkBytes("VP8X", head), riffChunkBytes("ALPH", alph)...)
	}
	chunks = append(chunks, riffChunkBytes(kind, bitstream)...)
	fr.file = append(append([]byte("RIFF"), binary.LittleEndian.AppendUint32(nil, uint32(4+len(chunks)))...), "WEBP"...)
	fr.file = append(fr.file, chunks...)
	return fr, nil
}

func u24(b []byte) int { return int(b[0]) | int(b[1])<<8 | int(b[2])<<16 }

func le24(v int) []byte { return []byte{byte(v), byte(v >> 8), byte(v >> 16)} }

// riffChunkBytes encodes one chunk, padded to an even size.
func riffChunkBytes(typ string, body []byte) []byte {
	b := append([]byte(typ), binary.LittleEndian.AppendUint32(nil, uint32(len(body)))...)
	b = append(b, body...)
	if len(body)%2 == 1 {
		b = append(b, 0)
	}
	return b
}

// decodeWebP decodes a still WebP, or an animated one's first frame placed on its canvas (the
// rest of the canvas transparent), with lossy data in full range.
func decodeWebP(data []byte) (image.Image, error) {
	fr, animated, err := firstFrame(data)
	if err != nil {
		return nil, err
	}
	if !animated {
		img, err := xwebp.Decode(bytes.NewReader(data))
		fullRange(img)
		return img, err
	}
	img, err := xwebp.Decode(bytes.NewReader(fr.file))
	if err != nil {
		return nil, fmt.Errorf("animated WebP, first frame: %w", err)
	}
	fullRange(img)
	if fr.at == (image.Point{}) && img.Bounds().Size() == fr.canvas {
		return img, nil
	}
	canvas := image.NewNRGBA(image.Rectangle{Max: fr.canvas})
	draw.Draw(canvas, img.Bounds().Add(fr.at), img, img.Bounds().Min, draw.Src)
	return canvas, nil
}
