package media

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"io"
	"math"

	"github.com/sluice-dev/sluice/pkg/exif"
	"github.com/sluice-dev/sluice/pkg/icc"
)

// Color is what Decode did with the source's colour description.
type Color struct {
	// Profile names the embedded ICC profile (its description), empty when the file has none or
	// says sRGB.
	Profile string `json:"profile,omitempty"`
	// Converted: the pixels were converted from Profile to sRGB.
	Converted bool `json:"converted,omitempty"`
	// Kept: the pixels were left in Profile's colour space, which Decoded.ICC holds for the
	// renditions to embed (KeepProfile).
	Kept bool `json:"kept,omitempty"`
	// Unsupported says why an embedded profile could not be evaluated; the pixels were then
	// taken as sRGB, as before colour management (the recipe may quarantine such files instead).
	Unsupported string `json:"unsupported,omitempty"`
}

// Option changes what Decode does.
type Option func(*options)

type options struct{ keep bool }

// KeepProfile leaves an RGB source in its own colour space and hands back its ICC profile
// (Decoded.ICC) for the renditions, for wide-gamut displays. A CMYK source, or a HEIF file's
// nclx description (no profile to embed), is converted all the same.
func KeepProfile() Option { return func(o *options) { o.keep = true } }

// toSRGB converts img from the colour space the file states to sRGB (or keeps it, with its
// profile, under KeepProfile). An untagged or sRGB file comes back untouched (the same pixels,
// no cost beyond finding its profile).
func toSRGB(f Format, data []byte, img image.Image, o options) (image.Image, Color, []byte) {
	p, raw, err := sourceProfile(f, data)
	switch {
	case err != nil:
		return img, Color{Unsupported: err.Error()}, nil
	case p == nil || p.IsSRGB():
		return img, Color{}, nil
	}
	c := Color{Profile: p.Description}
	if o.keep && raw != nil && p.ColorSpace == "RGB " {
		c.Kept = true
		return img, c, raw
	}
	t, err := icc.NewTransform(p)
	if err != nil {
		c.Unsupported = err.Error()
		return img, c, nil
	}
	out, err := t.Image(img)
	if err != nil {
		c.Unsupported = err.Error()
		return img, c, nil
	}
	c.Converted = true
	return out, c, nil
}

// sourceProfile is the colour description a file states, as a profile, and its ICC bytes when
// it is one: an embedded ICC profile, or a HEIF file's nclx code points; nil for none (or PNG's
// sRGB chunk).
func sourceProfile(f Format, data []byte) (*icc.Profile, []byte, error) {
	var raw []byte
	var err error
	switch f {
	case HEIC, AVIF:
		var c heifColour
		if c, err = readHEIFColour(data); err != nil {
			return nil, nil, fmt.Errorf("colr: %w", err)
		}
		if c.nclx != nil {
			p, err := icc.FromCICP(c.nclx.primaries, c.nclx.transfer)
			return p, nil, err
		}
		raw = c.icc
	default:
		if raw, err = embeddedProfile(f, data); err != nil {
			return nil, nil, err
		}
	}
	if raw == nil && f == PNG && pngChunk(data, "sRGB") == nil {
		p, err := pngChromaticities(data)
		return p, nil, err
	}
	if raw == nil {
		return nil, nil, nil
	}
	p, err := icc.Parse(raw)
	return p, raw, err
}

// embeddedProfile is the ICC profile a JPEG, PNG, WebP or TIFF embeds (nil for none, or for
// PNG's sRGB chunk): JPEG APP2 ICC_PROFILE segments (joined in order), PNG iCCP, WebP ICCP, TIFF
// tag 34675. A profile that is present but cannot be read is an error.
func embeddedProfile(f Format, data []byte) ([]byte, error) {
	switch f {
	case JPEG:
		return jpegProfile(data)
	case PNG:
		if pngChunk(data, "sRGB") != nil {
			return nil, nil
		}
		return pngProfile(pngChunk(data, "iCCP"))
	case WebP:
		return riffChunk(data, "ICCP"), nil
	case TIFF:
		return exif.ICCProfile(data), nil
	}
	return nil, nil
}

// jpegProfile joins the APP2 ICC_PROFILE segments before the first scan (ICC.1 annex B.4: each
// holds its sequence number and the count, both from 1).
func jpegProfile(data []byte) ([]byte, error) {
	const tag = "ICC_PROFILE\x00"
	var parts [][]byte
	var err error
	jpegSegments(data, func(m byte, seg []byte) bool {
		if m != 0xE2 || len(seg) <= len(tag)+2 || string(seg[:len(tag)]) != tag {
			return true
		}
		seq, count := int(seg[len(tag)]), int(seg[len(tag)+1])
		switch {
		case seq < 1 || seq > count:
			err = fmt.Errorf("ICC profile segment %d of %d", seq, count)
		case parts == nil:
			parts = make([][]byte, count)
		}
		if err == nil && (count != len(parts) || parts[seq-1] != nil) {
			err = errors.New("ICC profile segments disagree on their count or repeat")
		}
		if err != nil {
			return false
		}
		parts[seq-1] = seg[len(tag)+2:]
		return true
	})
	if err != nil {
		return nil, err
	}
	return joinParts(parts)
}

func joinParts(parts [][]byte) ([]byte, error) {
	var b []byte
	for i, p := range parts {
		if p == nil {
			return nil, fmt.Errorf("ICC profile segment %d of %d is missing", i+1, len(parts))
		}
		b = append(b, p...)
	}
	return b, nil
}

// pngProfile inflates an iCCP chunk (name, NUL, method 0, zlib data), at most icc.MaxSize.
func pngProfile(chunk []byte) ([]byte, error) {
	if chunk == nil {
		return nil, nil
	}
	i := bytes.IndexByte(chunk, 0)
	if i < 1 || i > 79 || i+2 > len(chunk) || chunk[i+1] != 0 {
		return nil, errors.New("iCCP chunk: bad name or compression method")
	}
	z, err := zlib.NewReader(bytes.NewReader(chunk[i+2:]))
	if err != nil {
		return nil, fmt.Errorf("iCCP chunk: %w", err)
	}
	b, err := io.ReadAll(io.LimitReader(z, icc.MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("iCCP chunk: %w", err)
	}
	return b, nil
}

// sRGBPrimaries are sRGB's chromaticities (red, green, blue, white), as a PNG's cHRM states them.
var sRGBPrimaries = [4][2]float64{{0.64, 0.33}, {0.30, 0.60}, {0.15, 0.06}, {0.3127, 0.3290}}

// pngChromaticities is the colour description of a PNG without a profile or an sRGB chunk: its
// cHRM chromaticities (sRGB's when absent) and gAMA gamma (nil when absent, or the usual 1/2.2
// with sRGB's chromaticities, which viewers show as sRGB).
func pngChromaticities(data []byte) (*icc.Profile, error) {
	gama, chrm := pngChunk(data, "gAMA"), pngChunk(data, "cHRM")
	if len(gama) != 4 {
		return nil, nil // no gamma: nothing to convert by (a cHRM alone is not evaluated)
	}
	gamma := float64(binary.BigEndian.Uint32(gama)) / 100000
	prim := sRGBPrimaries
	if len(chrm) == 32 {
		v := func(i int) float64 { return float64(binary.BigEndian.Uint32(chrm[4*i:])) / 100000 }
		prim = [4][2]float64{{v(2), v(3)}, {v(4), v(5)}, {v(6), v(7)}, {v(0), v(1)}}
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 0.0005 }
	same := true
	for i := range prim {
		same = same && near(prim[i][0], sRGBPrimaries[i][0]) && near(prim[i][1], sRGBPrimaries[i][1])
	}
	if same && math.Abs(gamma-1/2.2) < 0.001 {
		return nil, nil
	}
	return icc.FromChromaticities(prim, gamma)
}
