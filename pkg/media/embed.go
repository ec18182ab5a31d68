package media

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// EmbedProfile writes the ICC profile icc into an encoded image of format f (a rendition): as
// APP2 ICC_PROFILE segments after a JPEG's SOI, an iCCP chunk after a PNG's IHDR, an ICCP chunk
// in a WebP's extended (VP8X) container. The pixels are not touched.
func EmbedProfile(f Format, body, icc []byte) ([]byte, error) {
	switch f {
	case JPEG:
		return embedJPEG(body, icc)
	case PNG:
		return embedPNG(body, icc)
	case WebP:
		return embedWebP(body, icc)
	}
	return nil, fmt.Errorf("embed a colour profile: no way to in %s", f)
}

// maxICCSegment is the profile bytes one APP2 segment holds (65535 − 2 length − 14 header).
const maxICCSegment = 65519

func embedJPEG(body, icc []byte) ([]byte, error) {
	const tag = "ICC_PROFILE\x00"
	count := (len(icc) + maxICCSegment - 1) / maxICCSegment
	if len(body) < 2 || body[0] != 0xFF || body[1] != 0xD8 || count > 255 {
		return nil, errors.New("embed a colour profile: not a JPEG, or a profile over 255 segments")
	}
	out := append(make([]byte, 0, len(body)+len(icc)+18*count), body[:2]...)
	for i := range count {
		part := icc[i*maxICCSegment : min(len(icc), (i+1)*maxICCSegment)]
		n := 2 + len(tag) + 2 + len(part)
		out = append(out, 0xFF, 0xE2, byte(n>>8), byte(n))
		out = append(append(out, tag...), byte(i+1), byte(count))
		out = append(out, part...)
	}
	return append(out, body[2:]...), nil
}

func embedPNG(body, icc []byte) ([]byte, error) {
	const ihdrEnd = 8 + 8 + 13 + 4 // signature, IHDR header, data, CRC
	if len(body) < ihdrEnd || string(body[12:16]) != "IHDR" {
		return nil, errors.New("embed a colour profile: not a PNG")
	}
	var z bytes.Buffer
	w := zlib.NewWriter(&z)
	_, _ = w.Write(icc) // a bytes.Buffer does not fail
	_ = w.Close()
	data := append([]byte("ICC profile\x00\x00"), z.Bytes()...)
	chunk := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	chunk = append(append(chunk, "iCCP"...), data...)
	chunk = binary.BigEndian.AppendUint32(chunk, crc32.ChecksumIEEE(chunk[4:]))
	return append(append(append(make([]byte, 0, len(body)+len(chunk)), body[:ihdrEnd]...), chunk...), body[ihdrEnd:]...), nil
}

// embedWebP moves a simple (VP8 or VP8L) WebP into the extended container, or uses the VP8X it
// has, setting the ICC flag and putting the ICCP chunk right after VP8X, where the format
// wants it.
func embedWebP(body, icc []byte) ([]byte, error) {
	if len(body) < 12 || string(body[:4]) != "RIFF" || string(body[8:12]) != "WEBP" {
		return nil, errors.New("embed a colour profile: not a WebP")
	}
	var vp8x []byte
	var rest [][]byte // the other chunks, encoded, in order
	var w, h int
	riffChunks(body[12:], func(t string, c []byte) bool {
		switch t {
		case "VP8X":
			vp8x = append([]byte(nil), c...)
		case "VP8 ":
			if len(c) >= 10 {
				w, h = int(binary.LittleEndian.Uint16(c[6:])&0x3fff), int(binary.LittleEndian.Uint16(c[8:])&0x3fff)
			}
		case "VP8L":
			if len(c) >= 5 {
				bits := binary.LittleEndian.Uint32(c[1:])
				w, h = int(bits&0x3fff)+1, int(bits>>14&0x3fff)+1
				if bits>>28&1 == 1 && vp8x == nil {
					vp8x = make([]byte, 10)
					vp8x[0] = 0x10 // alpha
				}
			}
		}
		if t != "VP8X" && t != "ICCP" {
			rest = append(rest, riffChunkBytes(t, c))
		}
		return true
	})
	if vp8x == nil {
		vp8x = make([]byte, 10)
	}
	if len(vp8x) < 10 || (w == 0 && vp8x[4]|vp8x[5]|vp8x[6]|vp8x[7]|vp8x[8]|vp8x[9] == 0) {
		return nil, errors.New("embed a colour profile: a WebP without its size")
	}
	vp8x[0] |= 0x20 // ICC profile
	if w > 0 && vp8x[4]|vp8x[5]|vp8x[6]|vp8x[7]|vp8x[8]|vp8x[9] == 0 {
		copy(vp8x[4:], le24(w-1))
		copy(vp8x[7:], le24(h-1))
	}
	chunks := append(riffChunkBytes("VP8X", vp8x), riffChunkBytes("ICCP", icc)...)
	for _, c := range rest {
		chunks = append(chunks, c...)
	}
	out := append([]byte("RIFF"), binary.LittleEndian.AppendUint32(nil, uint32(4+len(chunks)))...)
	return append(append(out, "WEBP"...), chunks...), nil
}
