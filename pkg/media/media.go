// Package media validates an image by its content before decoding it: the real type from its
// first bytes, the byte size, the pixel count from the header alone (so a decompression bomb
// never allocates), and only then the decode, with the EXIF orientation applied and, for a
// JPEG, at the smallest size the caller can use.
package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	_ "image/gif"  // decoder registration
	_ "image/jpeg" // decoder registration
	_ "image/png"  // decoder registration

	"github.com/disintegration/imaging"
	"github.com/gen2brain/avif"
	"github.com/gen2brain/heic"
	_ "golang.org/x/image/bmp" // decoder registration
	"golang.org/x/image/tiff"
	xwebp "golang.org/x/image/webp"

	"github.com/sluice-dev/sluice/pkg/failure"
	"github.com/sluice-dev/sluice/pkg/jpegscale"
)

// Format is an image type recognised from its bytes.
type Format string

// Supported input formats.
const (
	JPEG Format = "jpeg"
	PNG  Format = "png"
	GIF  Format = "gif"
	BMP  Format = "bmp"
	TIFF Format = "tiff"
	WebP Format = "webp"
	// HEIC and AVIF are HEIF files (HEVC and AV1 pictures in an ISO-BMFF box structure),
	// decoded by libheif/libde265 and libavif compiled to WebAssembly, run by wazero: pure Go,
	// but at four to five times the time of a JPEG job and 3 (HEIC) to 10 (AVIF) times its
	// memory per pixel, so each has a pixel limit of its own (Limits).
	HEIC Format = "heic"
	AVIF Format = "avif"
)

// SniffLen is how many leading bytes Sniff needs.
const SniffLen = 32

// heifBrands maps the brands a HEIF file's ftyp box names (major brand first, then the
// compatible ones) to the picture format they promise.
var heifBrands = map[string]Format{
	"heic": HEIC, "heix": HEIC, "heim": HEIC, "heis": HEIC, "hevc": HEIC, "hevx": HEIC,
	"avif": AVIF, "avis": AVIF,
}

// Sniff tells the format from the first bytes, ignoring names and Content-Types.
func Sniff(head []byte) (Format, bool) {
	switch {
	case bytes.HasPrefix(head, []byte{0xFF, 0xD8, 0xFF}):
		return JPEG, true
	case bytes.HasPrefix(head, []byte("\x89PNG\r\n\x1a\n")):
		return PNG, true
	case bytes.HasPrefix(head, []byte("GIF87a")), bytes.HasPrefix(head, []byte("GIF89a")):
		return GIF, true
	case bytes.HasPrefix(head, []byte("BM")) && len(head) >= 14:
		return BMP, true
	case bytes.HasPrefix(head, []byte("II*\x00")), bytes.HasPrefix(head, []byte("MM\x00*")):
		return TIFF, true
	case len(head) >= 12 && bytes.Equal(head[0:4], []byte("RIFF")) && bytes.Equal(head[8:12], []byte("WEBP")):
		return WebP, true
	case len(head) >= 12 && bytes.Equal(head[4:8], []byte("ftyp")):
		return sniffHEIF(head)
	}
	return "", false
}

// sniffHEIF reads an ftyp box: its major brand at 8, then (after the minor version) the
// compatible brands up to the box's end, as far as head reaches. A generic major brand
// ("mif1", "msf1") defers to the first compatible brand that names a picture format.
func sniffHEIF(head []byte) (Format, bool) {
	end := min(len(head), int(binary.BigEndian.Uint32(head[0:4])))
	if f, ok := heifBrands[string(head[8:12])]; ok {
		return f, true
	}
	for i := 16; i+4 <= end; i += 4 {
		if f, ok := heifBrands[string(head[i:i+4])]; ok {
			return f, true
		}
	}
	return "", false
}

// Limits bound what is accepted.
type Limits struct {
	MaxBytes  int64 // size of the file
	MaxPixels int64 // width × height
	// MaxHEICPixels and MaxAVIFPixels bound width × height for those formats, whose decoders
	// need about 23 and 70 bytes per pixel (make bench) where a JPEG needs 7.
	MaxHEICPixels int64
	MaxAVIFPixels int64
	// MaxAnimationFrames bounds the frames of an animation whose frames are all decoded (the
	// recipe's animation "preserve"); 0: no limit beyond MaxPixels over all frames.
	MaxAnimationFrames int64
}

// own is the pixel limit a format has of its own (ok false: MaxPixels alone).
func (l Limits) own(f Format) (limit int64, ok bool) {
	switch f {
	case HEIC:
		return l.MaxHEICPixels, true
	case AVIF:
		return l.MaxAVIFPixels, true
	}
	return 0, false
}

// Info is what Inspect learns without decoding pixels.
type Info struct {
	Format        Format
	Width, Height int
}

// CheckSize rejects an empty file or one over the limit: the check HeadObject makes possible
// before any download.
func CheckSize(size int64, lim Limits) error {
	switch {
	case size == 0:
		return failure.Permanent(failure.Empty, "the file is empty (0 bytes)")
	case size > lim.MaxBytes:
		return failure.Permanent(failure.TooLarge, "the file is %d bytes; the limit is %d", size, lim.MaxBytes)
	}
	return nil
}

// Inspect checks size, type and pixel count from the header. Every rejection is permanent, and
// comes with what was read before it (the format once sniffed, the size once the header was),
// for the quarantine report.
func Inspect(data []byte, lim Limits) (Info, error) {
	if err := CheckSize(int64(len(data)), lim); err != nil {
		return Info{}, err
	}
	format, ok := Sniff(data[:min(len(data), SniffLen)])
	if !ok {
		return Info{}, failure.Permanent(failure.UnsupportedType,
			"the content is not a JPEG, PNG, GIF, BMP, TIFF, WebP, HEIC or AVIF image (first bytes % x)", data[:min(len(data), 8)])
	}
	if format == JPEG {
		if why := jpegUnsupported(data); why != "" {
			return Info{Format: format}, failure.Permanent(failure.UnsupportedType,
				"the JPEG is valid but uses %s, which sluice does not decode", why)
		}
	}
	cfg, name, err := decodeConfig(format, data)
	if err != nil {
		return Info{Format: format}, failure.PermanentWrap(failure.Corrupt, err, "the %s header cannot be read", format)
	}
	if name != string(format) {
		return Info{Format: format}, failure.Permanent(failure.Corrupt, "the bytes start like %s but decode as %s", format, name)
	}
	info := Info{Format: format, Width: cfg.Width, Height: cfg.Height}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return info, failure.Permanent(failure.Corrupt, "the %s header says %d×%d pixels", format, cfg.Width, cfg.Height)
	}
	if px := int64(cfg.Width) * int64(cfg.Height); px > lim.MaxPixels {
		return info, failure.Permanent(failure.TooManyPixels,
			"the image is %d×%d = %d pixels; the limit is %d", cfg.Width, cfg.Height, px, lim.MaxPixels)
	} else if own, ok := lim.own(format); ok && px > own {
		return info, failure.Permanent(failure.TooManyPixels,
			"the %s image is %d×%d = %d pixels; the limit for %s is %d", format, cfg.Width, cfg.Height, px, format, own)
	}
	return info, nil
}

// decodeConfig reads the header. WebP goes to golang.org/x/image/webp by name: the WebP encoder
// used for outputs registers a second, WASM-backed "webp" decoder with package image, which
// inputs must not reach (it would compile its module on the first upload). HEIC and AVIF go to
// their decoders by name too (their registrations know fewer brands than Sniff).
func decodeConfig(f Format, data []byte) (image.Config, string, error) {
	var cfg image.Config
	var err error
	switch f {
	case JPEG:
		// jpegscale reads the headers of what it decodes (arithmetic-coded and 12-bit JPEGs
		// too, which image/jpeg refuses); the rest (CMYK, RGB-coded) goes to image/jpeg.
		if c, err := jpegscale.DecodeConfig(data); err == nil {
			return image.Config{ColorModel: color.YCbCrModel, Width: c.Width, Height: c.Height}, string(f), nil
		}
		return image.DecodeConfig(bytes.NewReader(data))
	case WebP:
		cfg, err = xwebp.DecodeConfig(bytes.NewReader(data))
	case HEIC:
		cfg, err = heic.DecodeConfig(bytes.NewReader(data))
	case AVIF:
		cfg, err = avif.DecodeConfig(bytes.NewReader(data))
	default:
		return image.DecodeConfig(bytes.NewReader(data))
	}
	return cfg, string(f), err
}

// Need tells, for an image's upright full size, the smallest size the caller needs it in.
type Need func(w, h int) (needW, needH int)

// Decoded is an upright sRGB image, possibly decoded at a reduced size.
type Decoded struct {
	Image image.Image
	// Width and Height are the upright full size, which Image may be smaller than.
	Width, Height int
	// Color is what was done with the file's colour description (converted to sRGB, or not).
	Color Color
	// ICC is the source's profile when it was kept (KeepProfile): the pixels are in its colour
	// space, and each rendition must embed it (EmbedProfile).
	ICC []byte
}

// Decode decodes an image that Inspect accepted, turns it upright per its EXIF orientation
// (a JPEG's APP1, a PNG's eXIf chunk, a TIFF's tag 274) and converts it to sRGB from the ICC
// profile it embeds (Color says what was done).
// Metadata is not kept: only pixels come out. With need set, a JPEG is decoded at the largest
// DCT reduction (1/2, 1/4 or 1/8) that still covers what need asks for, which saves most of the
// decode's time and memory for large photos.
func Decode(data []byte, need Need, opts ...Option) (Decoded, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	f, _ := Sniff(data[:min(len(data), SniffLen)])
	if f == JPEG {
		if d, err := decodeJPEG(data, need); err == nil { // upright already: the planes were turned
			d.Image, d.Color, d.ICC = toSRGB(f, data, d.Image, o)
			return d, nil
		}
		// Variants jpegscale leaves out (CMYK, RGB-coded) and data it rejects
		// go to the standard decoder, at full size, which has the last word on corruption.
	}
	img, err := decode(f, data)
	if err != nil {
		return Decoded{}, err
	}
	// Colour first: a CMYK profile applies to the CMYK pixels, which turning would convert.
	img, c, kept := toSRGB(f, data, img, o)
	img = orient(img, fileOrientation(f, data))
	b := img.Bounds()
	return Decoded{Image: img, Width: b.Dx(), Height: b.Dy(), Color: c, ICC: kept}, nil
}

// decode decodes at full size, as stored (not turned upright).
func decode(f Format, data []byte) (image.Image, error) {
	var (
		img image.Image
		err error
	)
	switch f {
	case WebP:
		img, err = decodeWebP(data) // an animation's first frame; WebP carries no EXIF orientation here
	case HEIC:
		img, err = heic.Decode(bytes.NewReader(data)) // libheif applies the file's rotation and mirror
		repairFreedHead(img)
	case AVIF:
		img, err = avif.Decode(bytes.NewReader(data))
	case TIFF:
		if isTIFFJPEG(data) {
			img, err = decodeTIFFJPEG(data)
			break
		}
		img, err = imaging.Decode(bytes.NewReader(data))
	default:
		img, err = imaging.Decode(bytes.NewReader(data))
	}
	var unsupported tiff.UnsupportedError
	if errors.As(err, &unsupported) {
		return nil, failure.PermanentWrap(failure.UnsupportedType, err, "the TIFF is valid but uses a feature sluice does not decode (%s)", string(unsupported))
	}
	if err != nil {
		return nil, failure.PermanentWrap(failure.Corrupt, err, "the image data cannot be decoded")
	}
	return img, nil
}

func decodeJPEG(data []byte, need Need) (Decoded, error) {
	shrink := 1
	if need != nil {
		cfg, err := jpegscale.DecodeConfig(data)
		if err != nil {
			return Decoded{}, err
		}
		shrink = Shrink(cfg.Width, cfg.Height, cfg.Orientation, need)
	}
	img, err := jpegscale.Decode(data, jpegscale.Options{Shrink: shrink})
	if err != nil {
		return Decoded{}, err
	}
	w, h := upright(img.Width, img.Height, img.Orientation)
	return Decoded{Image: orient(img.Image, img.Orientation), Width: w, Height: h}, nil
}

// upright is a w×h image's size once turned per its EXIF orientation: 5 to 8 swap the axes.
func upright(w, h, orientation int) (int, int) {
	if orientation >= 5 {
		return h, w
	}
	return w, h
}

// reductions are the JPEG reductions, largest first, each with the margin by which the reduced
// image must exceed the need. A DCT-domain reduction is a sharper-edged low-pass filter than
// Lanczos (each block on its own), so the final resize needs room to smooth it. Measured
// against decoding at full size and resizing with Lanczos, on testdata/images/elephants.jpg
// and make bench's photo: 1/2 at a margin of 1.3 gives 43–46 dB PSNR; 1/4 (two samples per
// block) and 1/8 (the block means) need about 3 for 40–43 dB. render's
// TestCascadeMatchesNaiveQuality keeps each at ≥ 40 dB.
var reductions = []struct {
	shrink int
	margin float64
}{{8, 3}, {4, 3}, {2, 1.3}}

// Shrink is the largest JPEG reduction (8, 4, 2, or 1 for none) at which a w×h image with the
// given EXIF orientation still covers need's size, with the reduction's margin, in the upright
// frame.
func Shrink(w, h, orientation int, need Need) int {
	w, h = upright(w, h, orientation)
	nw, nh := need(w, h)
	for _, r := range reductions {
		s := r.shrink
		if float64((w+s-1)/s) >= r.margin*float64(nw) && float64((h+s-1)/s) >= r.margin*float64(nh) {
			return s
		}
	}
	return 1
}
