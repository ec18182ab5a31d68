// Package jpegscale decodes JPEG images at 1/1, 1/2, 1/4 or 1/8 of their size. A reduced size
// costs far less than a full decode followed by a resize: each 8×8 block's inverse DCT uses only
// its low-frequency coefficients and yields 4×4, 2×2 or 1×1 samples, so the full-resolution
// image never exists in memory.
//
// It handles what cameras and encoders write: 8-bit baseline, extended and progressive JPEGs,
// Huffman- or arithmetic-coded (arith.go), greyscale or YCbCr with the chroma subsamplings
// image.YCbCr knows, restart intervals, and the EXIF orientation tag; 12-bit ones come out in 8
// bits. Anything else (lossless, hierarchical, CMYK, RGB-coded) returns ErrUnsupported, so the
// caller can fall back to image/jpeg.
package jpegscale

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"

	"github.com/sluice-dev/sluice/pkg/exif"
)

// ErrUnsupported means a valid-looking JPEG uses a feature this package does not decode.
var ErrUnsupported = errors.New("jpegscale: unsupported JPEG variant")

// FormatError reports corrupt or truncated data.
type FormatError string

func (e FormatError) Error() string { return "jpegscale: invalid JPEG: " + string(e) }

// Options control Decode.
type Options struct {
	// Shrink divides both dimensions: 1, 2, 4 or 8 (0 means 1). The result is
	// ceil(width/Shrink) × ceil(height/Shrink).
	Shrink int
	// MaxPixels, when positive, rejects a frame of more pixels (width × height at full size)
	// before anything is allocated for it.
	MaxPixels int64
}

// Image is a decoded picture.
type Image struct {
	// Image is an *image.YCbCr, or an *image.Gray for a one-component JPEG.
	Image image.Image
	// Width and Height are the full-size dimensions from the frame header.
	Width, Height int
	// Orientation is the EXIF orientation tag (1–8), 1 when absent or invalid. It is not
	// applied to Image.
	Orientation int
}

// Config is what the headers say, read without decoding any pixels.
type Config struct {
	Width, Height int
	Orientation   int // EXIF orientation (1–8), 1 when absent
}

// DecodeConfig reads the headers up to the frame header. It returns ErrUnsupported for what
// Decode would not decode.
func DecodeConfig(data []byte) (Config, error) {
	d := &decoder{data: data, n: 8, orientation: 1, configOnly: true, dcU: defaultDCUs, acK: defaultACKs}
	if err := d.decode(); err != nil {
		return Config{}, err
	}
	return Config{Width: d.width, Height: d.height, Orientation: d.orientation}, nil
}

// Decode decodes data at the requested reduction.
func Decode(data []byte, opts Options) (Image, error) {
	shrink := opts.Shrink
	if shrink == 0 {
		shrink = 1
	}
	if shrink != 1 && shrink != 2 && shrink != 4 && shrink != 8 {
		return Image{}, fmt.Errorf("jpegscale: shrink must be 1, 2, 4 or 8, not %d", shrink)
	}
	d := &decoder{data: data, n: 8 / shrink, maxPixels: opts.MaxPixels, orientation: 1, dcU: defaultDCUs, acK: defaultACKs}
	if err := d.decode(); err != nil {
		return Image{}, err
	}
	return Image{Image: d.image(shrink), Width: d.width, Height: d.height, Orientation: d.orientation}, nil
}

// Marker codes (ITU T.81, table B.1).
const (
	markSOF0  = 0xC0 // baseline
	markSOF1  = 0xC1 // extended sequential, Huffman
	markSOF2  = 0xC2 // progressive, Huffman
	markDHT   = 0xC4
	markSOF9  = 0xC9 // sequential, arithmetic
	markSOF10 = 0xCA // progressive, arithmetic
	markDAC   = 0xCC
	markRST0  = 0xD0
	markRST7  = 0xD7
	markSOI   = 0xD8
	markEOI   = 0xD9
	markSOS   = 0xDA
	markDQT   = 0xDB
	markDNL   = 0xDC
	markDRI   = 0xDD
	markAPP1  = 0xE1
	markAPPE  = 0xEE
)

type component struct {
	id     byte
	h, v   int // sampling factors
	tq     int // quantisation table
	bw, bh int // blocks across and down, padded to whole MCUs
	// Blocks a single-component scan covers (the component's own size, not padded).
	sw, sh int
	coef   []int16  // progressive only: bw*bh blocks of 64 quantised coefficients, natural order
	nz     []uint64 // progressive only: per block, bit k set when zigzag coefficient k is non-zero
	pix    []byte   // output plane, stride bw*n
	pred   int32    // DC predictor of the current scan
	dc, ac *huffTable
	td, ta int // an arithmetic-coded scan's table numbers (its statistics and conditioning)
	actx   int // an arithmetic-coded scan's DC context (F.1.4.4.1.2)
}

type decoder struct {
	data []byte
	pos  int

	n           int // output samples per block edge: 8, 4, 2 or 1
	maxPixels   int64
	orientation int
	configOnly  bool // stop after the frame header

	width, height int
	progressive   bool
	frameSeen     bool
	comps         []component
	hmax, vmax    int
	mcusX, mcusY  int
	restart       int
	quant         [4][64]int32 // natural order
	quantSet      [4]bool
	dcTabs        [4]huffTable
	acTabs        [4]huffTable
	adobe         bool
	adobeXform    byte
	arith         bool   // arithmetic-coded (SOF9, SOF10)
	twelve        bool   // 12-bit samples (extended or progressive)
	dcL, dcU      [4]int // arithmetic coding's DC conditioning bounds, per table (DAC)
	acK           [4]int // and its AC conditioning split

	jfif bool
	par  *scanWorkers // a progressive image's scan workers, started by its first scan
}

func (d *decoder) decode() (err error) {
	defer func() {
		// On an early return, let the workers finish what they hold (the image is discarded).
		if err != nil {
			_ = d.par.close()
		}
	}()
	if len(d.data) < 2 || d.data[0] != 0xFF || d.data[1] != markSOI {
		return FormatError("missing SOI marker")
	}
	d.pos = 2
	for {
		m, err := d.nextMarker()
		if err != nil {
			return err
		}
		if m == markEOI {
			break
		}
		if m >= markRST0 && m <= markRST7 || m == markSOI || m == 0x01 {
			continue // stray parameterless markers
		}
		if d.pos+2 > len(d.data) {
			return FormatError("truncated marker segment")
		}
		n := int(binary.BigEndian.Uint16(d.data[d.pos:]))
		if n < 2 || d.pos+n > len(d.data) {
			return FormatError("truncated marker segment")
		}
		seg := d.data[d.pos+2 : d.pos+n]
		d.pos += n
		switch {
		case m == markSOF0 || m == markSOF1 || m == markSOF2 || m == markSOF9 || m == markSOF10:
			if d.frameSeen {
				return FormatError("more than one frame")
			}
			d.progressive = m == markSOF2 || m == markSOF10
			d.arith = m == markSOF9 || m == markSOF10
			if err := d.parseSOF(seg); err != nil {
				return err
			}
			if d.configOnly {
				return nil
			}
			d.allocate()
		case m >= 0xC3 && m <= 0xCF && m != markDHT && m != markDAC && m != 0xC8:
			return ErrUnsupported // lossless or hierarchical frames
		case m == markDAC:
			if err := d.parseDAC(seg); err != nil {
				return err
			}
		case m == markDNL:
			return ErrUnsupported
		case m == markDHT:
			if err := d.parseDHT(seg); err != nil {
				return err
			}
		case m == markDQT:
			if err := d.parseDQT(seg); err != nil {
				return err
			}
		case m == markDRI:
			if len(seg) != 2 {
				return FormatError("bad DRI length")
			}
			d.restart = int(binary.BigEndian.Uint16(seg))
		case m == 0xE0:
			d.jfif = len(seg) >= 5 && string(seg[:5]) == "JFIF\x00"
		case m == markAPP1 && bytes.HasPrefix(seg, []byte(exif.Prefix)):
			if o := exif.Orientation(seg); o != 0 {
				d.orientation = o
			}
		case m == markAPPE:
			if len(seg) >= 12 && string(seg[:5]) == "Adobe" {
				d.adobe, d.adobeXform = true, seg[11]
			}
		case m == markSOS:
			if !d.frameSeen {
				return FormatError("scan before frame header")
			}
			if err := d.scan(seg); err != nil {
				return err
			}
		}
	}
	if !d.frameSeen {
		return FormatError("no frame")
	}
	if err := d.par.close(); err != nil {
		return err
	}
	if d.progressive {
		d.reconstructAll()
	}
	return nil
}

// nextMarker skips to the next marker, tolerating fill bytes and stray data as libjpeg does.
func (d *decoder) nextMarker() (byte, error) {
	for {
		for d.pos < len(d.data) && d.data[d.pos] != 0xFF {
			d.pos++
		}
		for d.pos < len(d.data) && d.data[d.pos] == 0xFF {
			d.pos++
		}
		if d.pos >= len(d.data) {
			return 0, FormatError("unexpected end of data (no EOI marker)")
		}
		m := d.data[d.pos]
		d.pos++
		if m != 0 {
			return m, nil
		}
	}
}

func (d *decoder) parseSOF(seg []byte) error {
	if len(seg) < 6 {
		return FormatError("short SOF")
	}
	switch seg[0] {
	case 8:
	case 12:
		d.twelve = true // brought to 8 bits as the blocks are reconstructed
	default:
		return ErrUnsupported // 16-bit (lossless) samples
	}
	d.height = int(binary.BigEndian.Uint16(seg[1:]))
	d.width = int(binary.BigEndian.Uint16(seg[3:]))
	nc := int(seg[5])
	if d.width == 0 || d.height == 0 {
		return ErrUnsupported // height from a DNL marker
	}
	if len(seg) != 6+3*nc {
		return FormatError("bad SOF length")
	}
	if nc != 1 && nc != 3 {
		return ErrUnsupported // CMYK / YCCK and others
	}
	if d.maxPixels > 0 && int64(d.width)*int64(d.height) > d.maxPixels {
		return FormatError(fmt.Sprintf("%d×%d pixels is over the limit of %d", d.width, d.height, d.maxPixels))
	}
	d.comps = make([]component, nc)
	for i := range d.comps {
		c := &d.comps[i]
		c.id = seg[6+3*i]
		c.h, c.v = int(seg[7+3*i]>>4), int(seg[7+3*i]&15)
		c.tq = int(seg[8+3*i])
		if c.h < 1 || c.h > 4 || c.v < 1 || c.v > 4 || c.tq > 3 {
			return FormatError("bad component parameters")
		}
		for j := range i {
			if d.comps[j].id == c.id {
				return FormatError("repeated component id")
			}
		}
	}
	if nc == 1 {
		// One component: an MCU is one block whatever the sampling factors say.
		d.comps[0].h, d.comps[0].v = 1, 1
	} else {
		if d.isRGB() {
			return ErrUnsupported
		}
		// image.YCbCr knows only these: luma at (h, v), both chroma at 1×1.
		y, cb, cr := d.comps[0], d.comps[1], d.comps[2]
		if cb.h != 1 || cb.v != 1 || cr.h != 1 || cr.v != 1 || subsampleRatio(y.h, y.v) < 0 {
			return ErrUnsupported
		}
	}
	d.hmax, d.vmax = 1, 1
	for _, c := range d.comps {
		d.hmax, d.vmax = max(d.hmax, c.h), max(d.vmax, c.v)
	}
	d.mcusX = (d.width + 8*d.hmax - 1) / (8 * d.hmax)
	d.mcusY = (d.height + 8*d.vmax - 1) / (8 * d.vmax)
	for i := range d.comps {
		c := &d.comps[i]
		c.bw, c.bh = d.mcusX*c.h, d.mcusY*c.v
		cw := (d.width*c.h + d.hmax - 1) / d.hmax
		ch := (d.height*c.v + d.vmax - 1) / d.vmax
		c.sw, c.sh = (cw+7)/8, (ch+7)/8
	}
	d.frameSeen = true
	return nil
}

// allocate makes the output planes and, for a progressive image, the coefficient store.
func (d *decoder) allocate() {
	for i := range d.comps {
		c := &d.comps[i]
		c.pix = make([]byte, c.bw*d.n*c.bh*d.n)
		if d.progressive {
			c.coef = make([]int16, c.bw*c.bh*64)
			c.nz = make([]uint64, c.bw*c.bh)
		}
	}
}

// isRGB follows image/jpeg: an Adobe transform of 0, or component ids 'R','G','B' without a
// JFIF or Adobe marker, mean the samples are RGB rather than YCbCr.
func (d *decoder) isRGB() bool {
	if d.adobe {
		return d.adobeXform == 0
	}
	return !d.jfif && d.comps[0].id == 'R' && d.comps[1].id == 'G' && d.comps[2].id == 'B'
}

func subsampleRatio(h, v int) image.YCbCrSubsampleRatio {
	switch {
	case h == 1 && v == 1:
		return image.YCbCrSubsampleRatio444
	case h == 2 && v == 1:
		return image.YCbCrSubsampleRatio422
	case h == 2 && v == 2:
		return image.YCbCrSubsampleRatio420
	case h == 1 && v == 2:
		return image.YCbCrSubsampleRatio440
	case h == 4 && v == 1:
		return image.YCbCrSubsampleRatio411
	case h == 4 && v == 2:
		return image.YCbCrSubsampleRatio410
	}
	return -1
}

// Arithmetic coding's conditioning defaults (T.81 F.1.4.4.1.4, F.1.4.4.2.1): L 0, U 1, K 5.
const (
	defaultDCU = 1
	defaultACK = 5
)

var (
	defaultDCUs = [4]int{defaultDCU, defaultDCU, defaultDCU, defaultDCU}
	defaultACKs = [4]int{defaultACK, defaultACK, defaultACK, defaultACK}
)

// parseDAC reads arithmetic-coding conditioning (B.2.4.3): for a DC table its bounds L and U,
// for an AC table its split K.
func (d *decoder) parseDAC(seg []byte) error {
	if len(seg)%2 != 0 {
		return FormatError("bad DAC length")
	}
	for ; len(seg) >= 2; seg = seg[2:] {
		tc, tb, cs := seg[0]>>4, int(seg[0]&15), seg[1]
		switch {
		case tb > 3 || tc > 1:
			return FormatError("bad DAC table")
		case tc == 0:
			l, u := int(cs&15), int(cs>>4)
			if l > u {
				return FormatError("bad DAC DC bounds")
			}
			d.dcL[tb], d.dcU[tb] = l, u
		default:
			if cs < 1 || cs > 63 {
				return FormatError("bad DAC AC split")
			}
			d.acK[tb] = int(cs)
		}
	}
	return nil
}

func (d *decoder) parseDQT(seg []byte) error {
	for len(seg) > 0 {
		pq, tq := seg[0]>>4, int(seg[0]&15)
		if tq > 3 || pq > 1 {
			return FormatError("bad DQT table")
		}
		size := 64 * (1 + int(pq))
		if len(seg) < 1+size {
			return FormatError("short DQT")
		}
		for k := range 64 {
			var q int32
			if pq == 0 {
				q = int32(seg[1+k])
			} else {
				q = int32(binary.BigEndian.Uint16(seg[1+2*k:]))
			}
			d.quant[tq][zigzag[k]] = q
		}
		d.quantSet[tq] = true
		seg = seg[1+size:]
	}
	return nil
}

func (d *decoder) parseDHT(seg []byte) error {
	for len(seg) > 0 {
		if len(seg) < 17 {
			return FormatError("short DHT")
		}
		tc, th := seg[0]>>4, int(seg[0]&15)
		if tc > 1 || th > 3 {
			return FormatError("bad DHT table")
		}
		var counts [16]int
		total := 0
		for i := range counts {
			counts[i] = int(seg[1+i])
			total += counts[i]
		}
		if total == 0 || total > 256 || len(seg) < 17+total {
			return FormatError("bad DHT length")
		}
		t := &d.dcTabs[th]
		if tc == 1 {
			t = &d.acTabs[th]
		}
		if err := t.build(counts, seg[17:17+total]); err != nil {
			return err
		}
		seg = seg[17+total:]
	}
	return nil
}

// image wraps the output planes; the planes are padded to whole MCUs, the rectangle is not.
func (d *decoder) image(shrink int) image.Image {
	w, h := (d.width+shrink-1)/shrink, (d.height+shrink-1)/shrink
	r := image.Rect(0, 0, w, h)
	y := d.comps[0]
	if len(d.comps) == 1 {
		return &image.Gray{Pix: y.pix, Stride: y.bw * d.n, Rect: r}
	}
	return &image.YCbCr{
		Y: y.pix, Cb: d.comps[1].pix, Cr: d.comps[2].pix,
		YStride: y.bw * d.n, CStride: d.comps[1].bw * d.n,
		SubsampleRatio: subsampleRatio(y.h, y.v),
		Rect:           r,
	}
}

// zigzag maps the k-th coefficient in stream order to its natural (row-major) index.
var zigzag = [64]int{
	0, 1, 8, 16, 9, 2, 3, 10,
	17, 24, 32, 25, 18, 11, 4, 5,
	12, 19, 26, 33, 40, 48, 41, 34,
	27, 20, 13, 6, 7, 14, 21, 28,
	35, 42, 49, 56, 57, 50, 43, 36,
	29, 22, 15, 23, 30, 37, 44, 51,
	58, 59, 52, 45, 38, 31, 39, 46,
	53, 60, 61, 54, 47, 55, 62, 63,
}
