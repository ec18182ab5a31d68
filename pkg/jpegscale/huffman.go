package jpegscale

import "encoding/binary"

// lutBits is how many leading bits the fast Huffman lookup resolves; longer codes (rare in
// practice) take the canonical-code walk of ITU T.81 F.2.2.3.
const lutBits = 9

type huffTable struct {
	defined bool
	// lut[next lutBits bits] = code length << 8 | symbol, or 0 when the code is longer.
	lut     [1 << lutBits]uint16
	maxcode [17]int32 // largest code of each length, -1 when there is none
	valptr  [17]int32 // symbols[valptr[l] + code] is the symbol of an l-bit code
	symbols [256]byte
}

func (t *huffTable) build(counts [16]int, symbols []byte) error {
	*t = huffTable{defined: true}
	copy(t.symbols[:], symbols)
	code, k := int32(0), int32(0)
	for l := 1; l <= 16; l++ {
		t.valptr[l] = k - code
		for range counts[l-1] {
			if code >= 1<<l {
				return FormatError("Huffman table has more codes than bits allow")
			}
			if l <= lutBits {
				shift := lutBits - l
				base := code << shift
				for pad := range int32(1) << shift {
					t.lut[base|pad] = uint16(l)<<8 | uint16(t.symbols[k])
				}
			}
			code++
			k++
		}
		t.maxcode[l] = code - 1
		if counts[l-1] == 0 {
			t.maxcode[l] = -1
		}
		code <<= 1
	}
	return nil
}

// bitReader reads entropy-coded data: bits MSB first, with 0xFF00 unstuffed, stopping at the
// next marker.
type bitReader struct {
	data   []byte
	pos    int
	acc    uint64 // valid bits left-aligned; the rest are zero
	nbits  int
	marker bool // a marker (or the end of data) stopped filling
}

// fill tops the accumulator up to at least 57 bits unless a marker comes first.
func (b *bitReader) fill() {
	for b.nbits <= 56 && !b.marker {
		if b.pos+8 <= len(b.data) {
			// Fast path: when the next eight bytes hold no 0xFF, take as many whole bytes as fit.
			if v := binary.BigEndian.Uint64(b.data[b.pos:]); hasFF(v) == 0 {
				k := (64 - b.nbits) >> 3
				b.acc |= v >> (64 - 8*k) << (64 - 8*k - b.nbits)
				b.nbits += 8 * k
				b.pos += k
				return
			}
		}
		if b.pos >= len(b.data) {
			b.marker = true
			return
		}
		c := b.data[b.pos]
		if c == 0xFF {
			if b.pos+1 < len(b.data) && b.data[b.pos+1] == 0 {
				b.pos += 2
			} else {
				b.marker = true
				return
			}
		} else {
			b.pos++
		}
		b.acc |= uint64(c) << (56 - b.nbits)
		b.nbits += 8
	}
}

// hasFF is non-zero when any byte of v is 0xFF.
func hasFF(v uint64) uint64 {
	x := ^v // 0xFF bytes become zero bytes
	return (x - 0x0101010101010101) & ^x & 0x8080808080808080
}

var errShortData = FormatError("entropy-coded data ends early")

func (b *bitReader) decode(t *huffTable) (byte, error) {
	if b.nbits < 16 {
		b.fill()
	}
	if e := t.lut[b.acc>>(64-lutBits)]; e != 0 {
		l := int(e >> 8)
		if l > b.nbits {
			return 0, errShortData
		}
		b.acc <<= l
		b.nbits -= l
		return byte(e), nil
	}
	for l := lutBits + 1; l <= 16; l++ {
		code := int32(b.acc >> (64 - l))
		if code <= t.maxcode[l] {
			if l > b.nbits {
				return 0, errShortData
			}
			b.acc <<= l
			b.nbits -= l
			return t.symbols[(t.valptr[l]+code)&255], nil
		}
	}
	return 0, FormatError("bad Huffman code")
}

// bits returns the next n (1 to 32) bits.
func (b *bitReader) bits(n int) (uint32, error) {
	if b.nbits < n {
		b.fill()
		if b.nbits < n {
			return 0, errShortData
		}
	}
	v := uint32(b.acc >> (64 - n))
	b.acc <<= n
	b.nbits -= n
	return v, nil
}

func (b *bitReader) bit() (bool, error) {
	if b.nbits < 1 {
		b.fill()
		if b.nbits < 1 {
			return false, errShortData
		}
	}
	v := b.acc>>63 != 0
	b.acc <<= 1
	b.nbits--
	return v, nil
}

// receiveExtend reads an s-bit magnitude and sign-extends it (T.81 F.2.2.1).
func (b *bitReader) receiveExtend(s int) (int32, error) {
	if s == 0 {
		return 0, nil
	}
	u, err := b.bits(s)
	if err != nil {
		return 0, err
	}
	v := int32(u)
	if v < 1<<(s-1) {
		v += -1<<s + 1
	}
	return v, nil
}

// reset drops buffered bits; used at restart markers and scan ends.
func (b *bitReader) reset() {
	b.acc, b.nbits, b.marker = 0, 0, false
}
