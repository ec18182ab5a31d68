package jpegscale

import (
	"math/bits"

	"github.com/sluice-dev/sluice/pkg/workgroup"
)

// scan decodes one SOS segment and the entropy-coded data after it (T.81 B.2.3, F.2, G.2). A
// progressive image's scans of one component each go to that component's worker, so the
// components' scans decode at the same time; a scan of several components waits for the workers
// and decodes here.
func (d *decoder) scan(seg []byte) error {
	s, err := d.parseScan(seg)
	if err != nil || s == nil {
		return err
	}
	if d.arith {
		// Find where the data ends; the QM-coder reads it byte by byte up to there.
		start := d.pos
		if err := d.skipEntropyData(); err != nil {
			return err
		}
		s.arith = newArithDecoder(d.data[start:d.pos])
		if !d.progressive {
			return s.run()
		}
		return d.workers().do(s)
	}
	if !d.progressive {
		err := s.run()
		d.pos = s.bits.pos
		return err
	}
	// Find where this scan's data ends (the next marker that is not a restart marker), so that
	// the next segments can be read while the scan decodes.
	start := d.pos
	if err := d.skipEntropyData(); err != nil {
		return err
	}
	s.bits = bitReader{data: d.data[:d.pos], pos: start}
	return d.workers().do(s)
}

// parseScan reads a scan header into a scanState that owns everything the scan's decoding
// reads or changes (copies of its components and Huffman tables), or nil for a scan whose data
// is skipped.
func (d *decoder) parseScan(seg []byte) (*scanState, error) {
	if len(seg) < 1 {
		return nil, FormatError("short SOS")
	}
	ns := int(seg[0])
	if ns < 1 || ns > len(d.comps) || len(seg) != 4+2*ns {
		return nil, FormatError("bad SOS length")
	}
	s := &scanState{d: d, restart: d.restart, dcL: d.dcL, dcU: d.dcU, acK: d.acK} // a later DAC may redefine them
	for i := range ns {
		id, tables := seg[1+2*i], seg[2+2*i]
		ci := -1
		for j := range d.comps {
			if d.comps[j].id == id {
				ci = j
			}
		}
		if ci < 0 {
			return nil, FormatError("scan names an unknown component")
		}
		for _, prev := range s.ci {
			if prev == ci {
				return nil, FormatError("scan repeats a component")
			}
		}
		td, ta := tables>>4, tables&15
		if td > 3 || ta > 3 {
			return nil, FormatError("bad Huffman table selector")
		}
		if !d.quantSet[d.comps[ci].tq] {
			return nil, FormatError("missing quantisation table")
		}
		s.ci = append(s.ci, ci)
		s.dcTabs[i], s.acTabs[i] = d.dcTabs[td], d.acTabs[ta] // a later DHT may redefine them
	}
	ss, se := int(seg[1+2*ns]), int(seg[2+2*ns])
	ah, al := int(seg[3+2*ns]>>4), int(seg[3+2*ns]&15)
	switch {
	case !d.progressive:
		s.kind, ss, se, ah, al = sequential, 0, 63, 0, 0
	case ss == 0 && se != 0, ss > se, se > 63, al > 13, ss > 0 && ns != 1:
		return nil, FormatError("bad progressive scan parameters")
	case ss == 0 && ah == 0:
		s.kind = dcFirst
	case ss == 0:
		s.kind = dcRefine
	case ah == 0:
		s.kind = acFirst
	default:
		s.kind = acRefine
	}
	s.ss, s.se, s.al = ss, se, al
	for i := range ns {
		if d.arith {
			break // statistics, not Huffman tables
		}
		if (s.kind == sequential || s.kind == dcFirst) && !s.dcTabs[i].defined || (s.kind == sequential || s.kind >= acFirst) && !s.acTabs[i].defined {
			return nil, FormatError("scan uses an undefined Huffman table")
		}
	}
	if s.kind >= acFirst && d.n == 1 {
		// At 1/8 only DC reaches the output: skip AC scans' data without decoding it. (At 1/2
		// and 1/4 an invisible band cannot be skipped: a later refinement scan of a wider band
		// needs to know which of its coefficients are already non-zero.)
		return nil, d.skipEntropyData()
	}
	for i, ci := range s.ci {
		c := d.comps[ci] // a copy: its slices share the image's arrays, its predictor is the scan's
		c.pred, c.dc, c.ac = 0, &s.dcTabs[i], &s.acTabs[i]
		c.td, c.ta, c.actx = int(seg[2+2*i]>>4), int(seg[2+2*i]&15), 0
		s.comps = append(s.comps, c)
	}
	s.bits = bitReader{data: d.data, pos: d.pos}
	return s, nil
}

// run decodes the scan's entropy-coded data.
func (s *scanState) run() error {
	d := s.d
	sc := s.comps
	across, down := d.mcusX, d.mcusY
	if len(sc) == 1 {
		across, down = sc[0].sw, sc[0].sh
	}
	for m := range across * down {
		if s.restart > 0 && m > 0 && m%s.restart == 0 {
			if err := s.restartMarker(); err != nil {
				return err
			}
			for i := range sc {
				sc[i].pred, sc[i].actx = 0, 0
			}
		}
		mx, my := m%across, m/across
		if len(sc) == 1 {
			if err := s.block(&sc[0], mx, my); err != nil {
				return err
			}
			continue
		}
		for i := range sc {
			c := &sc[i]
			for v := range c.v {
				for h := range c.h {
					if err := s.block(c, mx*c.h+h, my*c.v+v); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

type scanKind int

const (
	sequential scanKind = iota
	dcFirst
	dcRefine
	acFirst
	acRefine
)

type scanState struct {
	d       *decoder
	ci      []int       // the scan's components, as indexes into d.comps
	comps   []component // copies of them, with this scan's tables and predictors
	dcTabs  [4]huffTable
	acTabs  [4]huffTable
	restart int
	bits    bitReader
	kind    scanKind
	ss, se  int
	al      int
	eobrun  int32
	blk     [64]int16     // sequential scans decode here, then reconstruct at once
	arith   *arithDecoder // an arithmetic-coded scan's decoder; nil for Huffman coding
	// An arithmetic-coded scan's conditioning (copies of the decoder's, as for Huffman tables).
	dcL, dcU, acK [4]int
}

// skipEntropyData moves past a scan's data to the next marker that is not a restart marker.
func (d *decoder) skipEntropyData() error {
	for p := d.pos; p+1 < len(d.data); p++ {
		if d.data[p] == 0xFF && d.data[p+1] != 0 && d.data[p+1] != 0xFF && (d.data[p+1] < markRST0 || d.data[p+1] > markRST7) {
			d.pos = p
			return nil
		}
	}
	return errShortData
}

// restartMarker expects an RSTn marker after the bits of the previous interval.
func (s *scanState) restartMarker() error {
	if s.arith != nil {
		return s.arith.restart()
	}
	data := s.d.data
	for p := s.bits.pos; p+1 < len(data); p++ {
		if data[p] != 0xFF || data[p+1] == 0 || data[p+1] == 0xFF {
			continue
		}
		if data[p+1] < markRST0 || data[p+1] > markRST7 {
			return FormatError("missing restart marker")
		}
		s.bits.reset()
		s.bits.pos = p + 2
		s.eobrun = 0
		return nil
	}
	return errShortData
}

func (s *scanState) block(c *component, bx, by int) error {
	if s.kind == sequential {
		s.blk = [64]int16{}
		decode := s.sequentialBlock
		if s.arith != nil {
			decode = s.arithSequentialBlock
		}
		if err := decode(c, &s.blk); err != nil {
			return err
		}
		s.d.reconstruct(c, bx, by, &s.blk)
		return nil
	}
	b := by*c.bw + bx
	blk := (*[64]int16)(c.coef[b*64 : b*64+64])
	if s.arith != nil {
		return s.arithProgressiveBlock(c, blk, &c.nz[b])
	}
	switch s.kind {
	case dcFirst:
		return s.dcFirstBlock(c, blk)
	case dcRefine:
		bit, err := s.bits.bit()
		if bit {
			blk[0] |= 1 << s.al
		}
		return err
	case acFirst:
		return s.acFirstBlock(c, blk, &c.nz[b])
	default:
		return s.acRefineBlock(c, blk, &c.nz[b])
	}
}

func (s *scanState) dc(c *component) (int32, error) {
	t, err := s.bits.decode(c.dc)
	if err != nil {
		return 0, err
	}
	if t > 16 {
		return 0, FormatError("bad DC magnitude category")
	}
	diff, err := s.bits.receiveExtend(int(t))
	c.pred += diff
	return c.pred, err
}

func (s *scanState) sequentialBlock(c *component, blk *[64]int16) error {
	dc, err := s.dc(c)
	if err != nil {
		return err
	}
	blk[0] = int16(dc)
	for k := 1; k < 64; k++ {
		rs, err := s.bits.decode(c.ac)
		if err != nil {
			return err
		}
		r, size := int(rs>>4), int(rs&15)
		if size == 0 {
			if r != 15 {
				return nil // end of block
			}
			k += 15 // sixteen zeros
			continue
		}
		k += r
		if k > 63 {
			return FormatError("AC coefficient past the end of the block")
		}
		v, err := s.bits.receiveExtend(size)
		if err != nil {
			return err
		}
		blk[zigzag[k]] = int16(v)
	}
	return nil
}

func (s *scanState) dcFirstBlock(c *component, blk *[64]int16) error {
	dc, err := s.dc(c)
	blk[0] = int16(dc << s.al)
	return err
}

func (s *scanState) acFirstBlock(c *component, blk *[64]int16, nz *uint64) error {
	if s.eobrun > 0 {
		s.eobrun--
		return nil
	}
	for k := s.ss; k <= s.se; k++ {
		rs, err := s.bits.decode(c.ac)
		if err != nil {
			return err
		}
		r, size := int(rs>>4), int(rs&15)
		if size == 0 {
			if r == 15 {
				k += 15
				continue
			}
			// An end-of-band run covering this block and 2^r - 1 + extra bits more.
			s.eobrun = 1<<r - 1
			if r > 0 {
				extra, err := s.bits.bits(r)
				if err != nil {
					return err
				}
				s.eobrun += int32(extra)
			}
			return nil
		}
		k += r
		if k > s.se {
			return FormatError("AC coefficient past the end of the band")
		}
		v, err := s.bits.receiveExtend(size)
		if err != nil {
			return err
		}
		blk[zigzag[k]] = int16(v << s.al)
		*nz |= 1 << k
	}
	return nil
}

// acRefineBlock adds one bit of precision to the band (T.81 G.1.2.3): each new coefficient
// (magnitude 1 at this bit) is placed after skipping r zero-history coefficients, and every
// coefficient that is already non-zero on the way receives a correction bit. The block's
// non-zero mask (bit k for zigzag position k) finds both without scanning the band.
func (s *scanState) acRefineBlock(c *component, blk *[64]int16, nz *uint64) error {
	p1 := int16(1) << s.al
	m1 := int16(-1) << s.al
	// Positions ss..se. (A Go shift by 64 gives 0, so se = 63 yields all ones.)
	band := (uint64(1)<<(s.se+1) - 1) &^ (uint64(1)<<s.ss - 1)
	k := s.ss
	if s.eobrun == 0 {
		for k <= s.se {
			rs, err := s.bits.decode(c.ac)
			if err != nil {
				return err
			}
			r, size := int(rs>>4), int(rs&15)
			var value int16
			if size != 0 {
				if size != 1 {
					return FormatError("refinement coefficient is not ±1")
				}
				bit, err := s.bits.bit()
				if err != nil {
					return err
				}
				value = m1
				if bit {
					value = p1
				}
			} else if r != 15 {
				s.eobrun = 1 << r
				if r > 0 {
					extra, err := s.bits.bits(r)
					if err != nil {
						return err
					}
					s.eobrun += int32(extra)
				}
				break
			}
			// The target is the (r+1)-th zero-history position from k on; every non-zero
			// coefficient before it gets a correction bit.
			from := band &^ (uint64(1)<<k - 1)
			zeros := from &^ *nz
			for ; r > 0 && zeros != 0; r-- {
				zeros &= zeros - 1
			}
			target := s.se + 1
			if zeros != 0 {
				target = bits.TrailingZeros64(zeros)
			}
			if m := from & *nz & (uint64(1)<<target - 1); m != 0 {
				if err := s.refineAll(blk, m, p1); err != nil {
					return err
				}
			}
			if value != 0 {
				if target > s.se {
					return FormatError("refinement coefficient past the end of the band")
				}
				blk[zigzag[target]] = value
				*nz |= 1 << target
			}
			k = target + 1
		}
	}
	if s.eobrun > 0 {
		// Inside an end-of-band run: only correction bits for the non-zero coefficients left.
		if m := band &^ (uint64(1)<<k - 1) & *nz; m != 0 {
			if err := s.refineAll(blk, m, p1); err != nil {
				return err
			}
		}
		s.eobrun--
	}
	return nil
}

// refineAll applies one correction bit to each coefficient in mask (zigzag positions, all
// already non-zero), in increasing order. The bits are read up to 32 at a time.
func (s *scanState) refineAll(blk *[64]int16, mask uint64, p1 int16) error {
	for n := bits.OnesCount64(mask); n > 0; {
		take := min(n, 32)
		v, err := s.bits.bits(take)
		if err != nil {
			return err
		}
		n -= take
		if v == 0 && n == 0 {
			return nil
		}
		for i := take - 1; i >= 0; i-- {
			// Branch-free, as the bits are unpredictable: add ±p1 when the bit is 1 and the
			// coefficient does not have that bit yet.
			z := zigzag[bits.TrailingZeros64(mask)]
			mask &= mask - 1
			c := blk[z]
			sign := c >> 15 // 0 or -1
			apply := int16(v>>i&1) &^ (c >> s.al & 1)
			blk[z] = c + apply*((p1^sign)-sign)
		}
	}
	return nil
}

// reconstructAll turns a progressive image's coefficients into samples once every scan is in,
// one goroutine per component (each writes only its own plane).
func (d *decoder) reconstructAll() {
	var wg workgroup.Group
	for i := range d.comps {
		c := &d.comps[i]
		wg.Go(func() {
			for by := range c.bh {
				for bx := range c.bw {
					j := (by*c.bw + bx) * 64
					d.reconstruct(c, bx, by, (*[64]int16)(c.coef[j:j+64]))
				}
			}
			c.coef, c.nz = nil, nil
		})
	}
	wg.Wait()
}
