package jpegscale

// Arithmetic-coded JPEG (ITU T.81 Annex D: the QM-coder; F.1.4.4 and G.1.3: the statistical
// models for sequential and progressive coefficients). libjpeg-turbo writes it (cjpeg
// -arithmetic), and a valid file must not be refused. Only the entropy decoding differs from
// Huffman coding: the coefficients go to the same blocks, reconstructed the same way.

// qe is T.81 table D.3: per state, the LPS probability estimate, the next state after an LPS
// and after an MPS, and whether an LPS switches the MPS sense. State 113 is not in the table:
// it is a fixed estimate of one half that never moves, which the sign of an AC coefficient and
// a DC refinement bit use (F.1.4.4.2, G.1.3.2).
var qe = [114]struct {
	qe         uint16
	nlps, nmps uint8
	swtch      bool
}{
	{0x5a1d, 1, 1, true}, {0x2586, 14, 2, false}, {0x1114, 16, 3, false}, {0x080b, 18, 4, false},
	{0x03d8, 20, 5, false}, {0x01da, 23, 6, false}, {0x00e5, 25, 7, false}, {0x006f, 28, 8, false},
	{0x0036, 30, 9, false}, {0x001a, 33, 10, false}, {0x000d, 35, 11, false}, {0x0006, 9, 12, false},
	{0x0003, 10, 13, false}, {0x0001, 12, 13, false}, {0x5a7f, 15, 15, true}, {0x3f25, 36, 16, false},
	{0x2cf2, 38, 17, false}, {0x207c, 39, 18, false}, {0x17b9, 40, 19, false}, {0x1182, 42, 20, false},
	{0x0cef, 43, 21, false}, {0x09a1, 45, 22, false}, {0x072f, 46, 23, false}, {0x055c, 48, 24, false},
	{0x0406, 49, 25, false}, {0x0303, 51, 26, false}, {0x0240, 52, 27, false}, {0x01b1, 54, 28, false},
	{0x0144, 56, 29, false}, {0x00f5, 57, 30, false}, {0x00b7, 59, 31, false}, {0x008a, 60, 32, false},
	{0x0068, 62, 33, false}, {0x004e, 63, 34, false}, {0x003b, 32, 35, false}, {0x002c, 33, 9, false},
	{0x5ae1, 37, 37, true}, {0x484c, 64, 38, false}, {0x3a0d, 65, 39, false}, {0x2ef1, 67, 40, false},
	{0x261f, 68, 41, false}, {0x1f33, 69, 42, false}, {0x19a8, 70, 43, false}, {0x1518, 72, 44, false},
	{0x1177, 73, 45, false}, {0x0e74, 74, 46, false}, {0x0bfb, 75, 47, false}, {0x09f8, 77, 48, false},
	{0x0861, 78, 49, false}, {0x0706, 79, 50, false}, {0x05cd, 48, 51, false}, {0x04de, 50, 52, false},
	{0x040f, 50, 53, false}, {0x0363, 51, 54, false}, {0x02d4, 52, 55, false}, {0x025c, 53, 56, false},
	{0x01f8, 54, 57, false}, {0x01a4, 55, 58, false}, {0x0160, 56, 59, false}, {0x0125, 57, 60, false},
	{0x00f6, 58, 61, false}, {0x00cb, 59, 62, false}, {0x00ab, 61, 63, false}, {0x008f, 61, 32, false},
	{0x5b12, 65, 65, true}, {0x4d04, 80, 66, false}, {0x412c, 81, 67, false}, {0x37d8, 82, 68, false},
	{0x2fe8, 83, 69, false}, {0x293c, 84, 70, false}, {0x2379, 86, 71, false}, {0x1edf, 87, 72, false},
	{0x1aa9, 87, 73, false}, {0x174e, 72, 74, false}, {0x1424, 72, 75, false}, {0x119c, 74, 76, false},
	{0x0f6b, 74, 77, false}, {0x0d51, 75, 78, false}, {0x0bb6, 77, 79, false}, {0x0a40, 77, 48, false},
	{0x5832, 80, 81, true}, {0x4d1c, 88, 82, false}, {0x438e, 89, 83, false}, {0x3bdd, 90, 84, false},
	{0x34ee, 91, 85, false}, {0x2eae, 92, 86, false}, {0x299a, 93, 87, false}, {0x2516, 86, 71, false},
	{0x5570, 88, 89, true}, {0x4ca9, 95, 90, false}, {0x44d9, 96, 91, false}, {0x3e22, 97, 92, false},
	{0x3824, 99, 93, false}, {0x32b4, 99, 94, false}, {0x2e17, 93, 86, false}, {0x56a8, 95, 96, true},
	{0x4f46, 101, 97, false}, {0x47e5, 102, 98, false}, {0x41cf, 103, 99, false}, {0x3c3d, 104, 100, false},
	{0x375e, 99, 93, false}, {0x5231, 105, 102, false}, {0x4c0f, 106, 103, false}, {0x4639, 107, 104, false},
	{0x415e, 103, 99, false}, {0x5627, 105, 106, true}, {0x50e7, 108, 107, false}, {0x4b85, 109, 103, false},
	{0x5597, 110, 109, false}, {0x504f, 111, 107, false}, {0x5a10, 110, 111, true}, {0x5522, 112, 109, false},
	{0x59eb, 112, 111, true},
	{0x5a1d, 113, 113, false}, // the fixed one-half estimate
}

// fixedHalf is the state of the fixed estimate.
const fixedHalf = 113

// arithDecoder is the QM-coder's decoder over one scan's entropy-coded data, with the scan's
// statistics: a state per context (bit 7 the MPS, bits 0–6 the table index), 64 for each DC
// table and 256 for each AC table (F.1.4.4).
type arithDecoder struct {
	data   []byte
	pos    int
	marker bool  // a marker was met: zeros are supplied from then on (D.2.6)
	c, a   int64 // the code and interval registers
	ct     int   // bits left in c before the next byte; below zero while starting
	dc     [4][64]uint8
	ac     [4][256]uint8
	fixed  uint8
}

func newArithDecoder(data []byte) *arithDecoder {
	a := &arithDecoder{data: data}
	a.reset()
	return a
}

// reset starts decoding anew (a scan, or after a restart marker): zero statistics, and the
// registers set to read two bytes before the first decision (INITDEC).
func (a *arithDecoder) reset() {
	a.dc, a.ac = [4][64]uint8{}, [4][256]uint8{}
	a.fixed = fixedHalf
	a.c, a.a, a.ct = 0, 0, -16
}

// byteIn reads the next byte of entropy-coded data: a 0xFF is followed by a stuffed zero, fill
// bytes are skipped, and at a marker (or the end) zeros are supplied.
func (a *arithDecoder) byteIn() int64 {
	if a.marker || a.pos >= len(a.data) {
		return 0
	}
	b := a.data[a.pos]
	a.pos++
	if b != 0xFF {
		return int64(b)
	}
	for a.pos < len(a.data) && a.data[a.pos] == 0xFF {
		a.pos++
	}
	if a.pos < len(a.data) && a.data[a.pos] == 0 {
		a.pos++
		return 0xFF
	}
	a.marker, a.pos = true, a.pos-1 // at the 0xFF before the marker's code
	return 0
}

// decode decodes one binary decision in the context whose state st holds (D.2.4, D.2.5).
func (a *arithDecoder) decode(st *uint8) int {
	for a.a < 0x8000 { // RENORMD, with BYTEIN as the C register empties
		if a.ct--; a.ct < 0 {
			a.c = a.c<<8 | a.byteIn()
			if a.ct += 8; a.ct < 0 {
				if a.ct++; a.ct == 0 { // two bytes in: the interval starts at one
					a.a = 0x8000
				}
			}
		}
		a.a <<= 1
	}
	sv := *st
	e := &qe[sv&0x7f]
	q := int64(e.qe)
	mps := int(sv >> 7)
	afterLPS := sv&0x80 | e.nlps
	if e.swtch {
		afterLPS ^= 0x80
	}
	afterMPS := sv&0x80 | e.nmps
	t := a.a - q
	a.a = t
	t <<= a.ct
	if a.c >= t {
		a.c -= t
		if a.a < q { // the conditional exchange: the interval that was LPS's is the MPS's
			a.a = q
			*st = afterMPS
			return mps
		}
		a.a = q
		*st = afterLPS
		return mps ^ 1
	}
	if a.a < 0x8000 {
		if a.a < q {
			*st = afterLPS
			return mps ^ 1
		}
		*st = afterMPS
	}
	return mps
}

// restart moves past the restart marker ending an interval and starts decoding anew.
func (a *arithDecoder) restart() error {
	for p := a.pos; p+1 < len(a.data); p++ {
		if a.data[p] == 0xFF && a.data[p+1] >= markRST0 && a.data[p+1] <= markRST7 {
			a.pos, a.marker = p+2, false
			a.reset()
			return nil
		}
	}
	return FormatError("missing restart marker")
}

// magnitude finishes a coefficient's magnitude after its first category decision m (0 or 1;
// T.81 Figures F.23 and F.24): while X decisions (from context x of st) say so, the category
// doubles; then the bits below its top come from the M contexts, 14 after where the X decisions
// ended (tables F.4 and F.5). It returns |v| − 1 and the category's top bit.
func (a *arithDecoder) magnitude(st []uint8, m, i, x int) (v, top int, err error) {
	if m != 0 {
		i = x
		for a.decode(&st[i]) != 0 {
			if m <<= 1; m == 0x8000 {
				return 0, 0, FormatError("arithmetic-coded magnitude too large")
			}
			i++
		}
	}
	v, top = m, m
	i += 14
	for m >>= 1; m != 0; m >>= 1 {
		if a.decode(&st[i]) != 0 {
			v |= m
		}
	}
	return v, top, nil
}

// arithDC decodes a DC difference and returns the new DC value (F.1.4.4.1): the context is
// chosen by the previous difference's category, against the table's conditioning bounds L and U
// (the DAC marker; 0 and 1 by default).
func (s *scanState) arithDC(c *component) (int32, error) {
	a := s.arith
	st := a.dc[c.td][:]
	ctx := c.actx
	if a.decode(&st[ctx]) == 0 {
		c.actx = 0
		return c.pred, nil
	}
	sign := a.decode(&st[ctx+1])
	i := ctx + 2 + sign
	v, m, err := a.magnitude(st, a.decode(&st[i]), i, 20)
	if err != nil {
		return 0, err
	}
	// This difference's category conditions the next one's decisions (F.1.4.4.1.2).
	switch l, u := s.dcL[c.td], s.dcU[c.td]; {
	case m < (1<<l)>>1:
		c.actx = 0
	case m > (1<<u)>>1:
		c.actx = 12 + 4*sign
	default:
		c.actx = 4 + 4*sign
	}
	v++
	if sign != 0 {
		v = -v
	}
	c.pred = int32(int16(c.pred + int32(v)))
	return c.pred, nil
}

// arithAC decodes the coefficients ss..se of a block's band (F.1.4.4.2 for a sequential scan,
// G.1.3.2 for a first progressive one): an end-of-band decision, the zero run, a sign on the
// fixed estimate, then the magnitude: a first decision (|v| ≥ 2), the same context again
// (|v| ≥ 3), then X and M decisions in contexts split at the table's K (the DAC marker; 5 by
// default). Each coefficient is stored shifted left by al.
func (s *scanState) arithAC(c *component, blk *[64]int16, nz *uint64, ss, se int) error {
	a := s.arith
	st := a.ac[c.ta][:]
	for k := ss; k <= se; k++ {
		i := 3 * (k - 1)
		if a.decode(&st[i]) != 0 {
			return nil // end of band
		}
		for a.decode(&st[i+1]) == 0 {
			i += 3
			if k++; k > se {
				return FormatError("arithmetic-coded coefficient past the end of the band")
			}
		}
		sign := a.decode(&a.fixed)
		i += 2
		v := 0
		if a.decode(&st[i]) != 0 {
			v = 1
			if a.decode(&st[i]) != 0 {
				x := 217
				if k <= s.acK[c.ta] {
					x = 189
				}
				var err error
				if v, _, err = a.magnitude(st, 2, i, x); err != nil {
					return err
				}
			}
		}
		v++
		if sign != 0 {
			v = -v
		}
		blk[zigzag[k]] = int16(v << s.al)
		*nz |= 1 << k
	}
	return nil
}

// arithACRefine adds one bit of precision to a block's band (G.1.3.3): past the last
// coefficient that was non-zero before this scan an end-of-band decision comes first; a
// coefficient already non-zero gets a correction decision, one that was zero may become ±1 (its
// sign on the fixed estimate).
func (s *scanState) arithACRefine(c *component, blk *[64]int16, nz *uint64) error {
	a := s.arith
	st := a.ac[c.ta][:]
	p1, m1 := int16(1)<<s.al, int16(-1)<<s.al
	kex := 0 // the last coefficient non-zero before this scan
	for k := s.se; k > 0; k-- {
		if blk[zigzag[k]] != 0 {
			kex = k
			break
		}
	}
	for k := s.ss; k <= s.se; k++ {
		i := 3 * (k - 1)
		if k > kex && a.decode(&st[i]) != 0 {
			return nil // end of band
		}
		for {
			z := zigzag[k]
			if blk[z] != 0 {
				if a.decode(&st[i+2]) != 0 {
					if blk[z] < 0 {
						blk[z] += m1
					} else {
						blk[z] += p1
					}
				}
				break
			}
			if a.decode(&st[i+1]) != 0 {
				blk[z] = p1
				if a.decode(&a.fixed) != 0 {
					blk[z] = m1
				}
				*nz |= 1 << k
				break
			}
			i += 3
			if k++; k > s.se {
				return FormatError("arithmetic-coded refinement past the end of the band")
			}
		}
	}
	return nil
}

// arithSequentialBlock decodes one block of a sequential arithmetic-coded scan.
func (s *scanState) arithSequentialBlock(c *component, blk *[64]int16) error {
	dc, err := s.arithDC(c)
	if err != nil {
		return err
	}
	blk[0] = int16(dc)
	var nz uint64 // a sequential scan keeps no mask
	return s.arithAC(c, blk, &nz, 1, 63)
}

// arithProgressiveBlock decodes one block's part of a progressive arithmetic-coded scan.
func (s *scanState) arithProgressiveBlock(c *component, blk *[64]int16, nz *uint64) error {
	switch s.kind {
	case dcFirst:
		dc, err := s.arithDC(c)
		blk[0] = int16(dc << s.al)
		return err
	case dcRefine:
		if s.arith.decode(&s.arith.fixed) != 0 {
			blk[0] |= 1 << s.al
		}
		return nil
	case acFirst:
		return s.arithAC(c, blk, nz, s.ss, s.se)
	default:
		return s.arithACRefine(c, blk, nz)
	}
}
