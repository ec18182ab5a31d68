// Package recipe describes what renditions to make of each image, parses and validates a recipe
// from JSON (errors name the field), and gives it a version: a hash of its canonical form, so
// any change to the recipe (or to the watermark it uses) makes a new version.
package recipe

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
)

// Mode is how a rendition fits its box.
type Mode string

// Modes.
const (
	Fit  Mode = "fit"  // scale down to fit inside width×height, keeping the aspect ratio
	Fill Mode = "fill" // scale and centre-crop to exactly width×height
)

// Format of a rendition's file.
type Format string

// Output formats. Auto is PNG when the source has transparency, JPEG otherwise.
const (
	Auto Format = "auto"
	JPEG Format = "jpeg"
	PNG  Format = "png"
	WebP Format = "webp"
	// GIF is not a format a rendition names: an animated source's renditions are GIFs when the
	// recipe's animation is "preserve".
	GIF Format = "gif"
)

// Rendition is one output of the recipe.
type Rendition struct {
	Name      string `json:"name"`
	Mode      Mode   `json:"mode"`
	Width     int    `json:"width"`
	Height    int    `json:"height"`
	Watermark bool   `json:"watermark"`
	Format    Format `json:"format"`
	Quality   int    `json:"quality"` // JPEG quality 1-100; 0 takes the recipe's
}

// Position of the watermark.
type Position string

// Watermark positions.
const (
	BottomRight Position = "bottom-right"
	BottomLeft  Position = "bottom-left"
	TopRight    Position = "top-right"
	TopLeft     Position = "top-left"
	Center      Position = "center"
)

// Watermark says how the watermark is laid over renditions that ask for it.
type Watermark struct {
	// Source is "default" (the PNG embedded in the binary) or an S3 URI "s3://bucket/key" of a PNG.
	Source string `json:"source"`
	// VersionID or ETag pins an S3 source (one is required): every container reads exactly
	// those bytes, so replacing the object in place cannot give containers different recipe
	// versions. With a version id the object may be replaced; with an ETag a replaced object
	// stops new containers with an error naming the field to update.
	VersionID string   `json:"version_id,omitempty"`
	ETag      string   `json:"etag,omitempty"`
	Position  Position `json:"position"`
	Margin    float64  `json:"margin"`    // gap to the edges, as a fraction of the rendition's width
	Opacity   float64  `json:"opacity"`   // 0 (invisible) to 1
	Scale     float64  `json:"scale"`     // watermark width as a fraction of the rendition's width
	MinWidth  int      `json:"min_width"` // renditions narrower than this get no watermark
}

// Recipe is the whole transform configuration.
type Recipe struct {
	Renditions  []Rendition `json:"renditions"`
	Watermark   Watermark   `json:"watermark"`
	JPEGQuality int         `json:"jpeg_quality"`
	// UnsupportedColorProfile is what happens to a file whose embedded colour profile cannot be
	// evaluated (a LUT-based or CMYK profile, a broken one): AssumeSRGB (the default, also when
	// empty) renders its pixels as sRGB and says so in the manifest; Quarantine rejects it as
	// unsupported_color_profile.
	UnsupportedColorProfile string `json:"unsupported_color_profile,omitempty"`
	// Color is the colour space of the renditions: SRGB (the default, also when empty) converts
	// every source to sRGB; KeepProfile leaves an RGB source in its own space and embeds its ICC
	// profile in each rendition, for wide-gamut displays (CMYK sources are converted anyway).
	Color string `json:"color,omitempty"`
	// Metadata is what of a source's metadata the renditions keep: MetadataNone (the default,
	// also when empty) nothing; MetadataCopyright the authorship alone (EXIF Artist and Copyright,
	// IPTC By-line, Credit and Copyright Notice, XMP dc:creator and dc:rights), in JPEG
	// renditions, never GPS, serial numbers, maker notes or thumbnails.
	Metadata string `json:"metadata,omitempty"`
	// Animation is what an animated GIF or WebP becomes: AnimationFirstFrame (the default, also
	// when empty) renditions of its first frame, in their own formats; AnimationPreserve animated
	// GIF renditions of every frame, keeping each frame's delay and the loop count.
	Animation string `json:"animation,omitempty"`
	// CacheControl is the Cache-Control each published object carries, for a CDN in front of
	// the output bucket: renditions live at immutable generation keys, the manifest at a stable
	// one. Empty fields take DefaultRenditionsCache and DefaultManifestCache (and then leave the
	// recipe's version as it was).
	CacheControl CacheControl `json:"cache_control,omitzero"`
}

// CacheControl is the Cache-Control of each kind of published object.
type CacheControl struct {
	Renditions string `json:"renditions,omitempty"`
	Manifest   string `json:"manifest,omitempty"`
}

// Cache-Control defaults: a rendition's key never changes meaning (a new version is a new
// generation key), so a year and immutable; the manifest is re-read, so a minute.
const (
	DefaultRenditionsCache = "public, max-age=31536000, immutable"
	DefaultManifestCache   = "public, max-age=60"
)

// RenditionsCache is the renditions' Cache-Control.
func (c CacheControl) RenditionsCache() string { return cmp.Or(c.Renditions, DefaultRenditionsCache) }

// ManifestCache is the manifest's Cache-Control.
func (c CacheControl) ManifestCache() string { return cmp.Or(c.Manifest, DefaultManifestCache) }

// Animation policies.
const (
	AnimationFirstFrame = "first_frame"
	AnimationPreserve   = "preserve"
)

// Metadata policies.
const (
	MetadataNone      = "none"
	MetadataCopyright = "copyright"
)

// Colour spaces for the renditions.
const (
	SRGB        = "srgb"
	KeepProfile = "keep"
)

// Policies for a colour profile that cannot be evaluated.
const (
	AssumeSRGB = "assume_srgb"
	Quarantine = "quarantine"
)

// Default is the built-in recipe.
func Default() Recipe {
	return Recipe{
		Renditions: []Rendition{
			{Name: "large", Mode: Fit, Width: 2048, Height: 2048, Watermark: true, Format: Auto},
			{Name: "medium", Mode: Fit, Width: 1024, Height: 1024, Watermark: true, Format: Auto},
			{Name: "thumb", Mode: Fill, Width: 256, Height: 256, Watermark: false, Format: Auto},
		},
		Watermark: Watermark{
			Source: "default", Position: BottomRight, Margin: 0.02, Opacity: 0.6, Scale: 0.2, MinWidth: 300,
		},
		JPEGQuality: 82,
	}
}

// Parse reads a recipe from JSON. Unknown fields are errors (a typo must not pass silently);
// missing ones take the defaults. Every problem is reported, each naming its field.
func Parse(data []byte) (Recipe, error) {
	def := Default()
	r := Recipe{Watermark: def.Watermark, JPEGQuality: def.JPEGQuality}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Recipe{}, fmt.Errorf("recipe JSON: %w", err)
	}
	if dec.More() {
		return Recipe{}, errors.New("recipe JSON: trailing data after the object")
	}
	if r.Renditions == nil {
		r.Renditions = def.Renditions
	}
	for _, s := range r.settings() {
		if *s.value == s.def {
			*s.value = "" // the default: one behaviour, one recipe version
		}
	}
	for i := range r.Renditions {
		if r.Renditions[i].Mode == "" {
			r.Renditions[i].Mode = Fit
		}
		if r.Renditions[i].Format == "" {
			r.Renditions[i].Format = Auto
		}
	}
	return r, r.Validate()
}

var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// MaxSide bounds a rendition's width and height.
const MaxSide = 8192

// Validate reports every problem, each naming the field.
func (r Recipe) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{field}, args...)...))
	}
	if len(r.Renditions) == 0 {
		bad("renditions", "want at least one rendition")
	}
	seen := map[string]bool{}
	for i, rd := range r.Renditions {
		f := fmt.Sprintf("renditions[%d]", i)
		if !namePattern.MatchString(rd.Name) {
			bad(f+".name", "%q: want 1-32 of a-z 0-9 _ -, starting with a letter or digit", rd.Name)
		} else if seen[rd.Name] {
			bad(f+".name", "%q is used twice", rd.Name)
		}
		seen[rd.Name] = true
		if rd.Name == "manifest" {
			bad(f+".name", `"manifest" is reserved for the manifest file`)
		}
		if rd.Mode != Fit && rd.Mode != Fill {
			bad(f+".mode", "%q: want fit or fill", rd.Mode)
		}
		if rd.Width < 1 || rd.Width > MaxSide {
			bad(f+".width", "%d: want 1-%d", rd.Width, MaxSide)
		}
		if rd.Height < 1 || rd.Height > MaxSide {
			bad(f+".height", "%d: want 1-%d", rd.Height, MaxSide)
		}
		if rd.Format != Auto && rd.Format != JPEG && rd.Format != PNG && rd.Format != WebP {
			bad(f+".format", "%q: want auto, jpeg, png or webp", rd.Format)
		}
		if rd.Quality != 0 && (rd.Quality < 1 || rd.Quality > 100) {
			bad(f+".quality", "%d: want 1-100, or 0 for jpeg_quality", rd.Quality)
		}
	}
	if r.JPEGQuality < 1 || r.JPEGQuality > 100 {
		bad("jpeg_quality", "%d: want 1-100", r.JPEGQuality)
	}
	for _, s := range r.settings() {
		if v := *s.value; v != "" && v != s.def && v != s.other {
			bad(s.field, "%q: want %s or %s", v, s.def, s.other)
		}
	}
	for field, v := range map[string]string{"cache_control.renditions": r.CacheControl.Renditions, "cache_control.manifest": r.CacheControl.Manifest} {
		if !headerValue.MatchString(v) {
			bad(field, "%q: want at most 256 printable ASCII characters", v)
		}
	}
	w := r.Watermark
	pinned := w.VersionID != "" || w.ETag != ""
	switch {
	case w.Source == "default" && pinned:
		bad("watermark.version_id", "a version id or ETag pins an s3:// source; the default watermark has none")
	case w.Source == "default":
	case !s3URI.MatchString(w.Source):
		bad("watermark.source", "%q: want \"default\" or s3://bucket/key", w.Source)
	case !pinned:
		bad("watermark.version_id", "an s3:// watermark needs version_id (or etag): the object's S3 version id (or its ETag), so that every container renders the same bytes")
	case w.VersionID != "" && w.ETag != "":
		bad("watermark.etag", "give version_id or etag, not both")
	}
	switch w.Position {
	case BottomRight, BottomLeft, TopRight, TopLeft, Center:
	default:
		bad("watermark.position", "%q: want bottom-right, bottom-left, top-right, top-left or center", w.Position)
	}
	if w.Margin < 0 || w.Margin > 0.25 {
		bad("watermark.margin", "%g: want 0-0.25 (a fraction of the width)", w.Margin)
	}
	if w.Opacity <= 0 || w.Opacity > 1 {
		bad("watermark.opacity", "%g: want more than 0, at most 1", w.Opacity)
	}
	if w.Scale <= 0 || w.Scale > 1 {
		bad("watermark.scale", "%g: want more than 0, at most 1 (a fraction of the width)", w.Scale)
	}
	if w.MinWidth < 0 {
		bad("watermark.min_width", "%d: want 0 or more", w.MinWidth)
	}
	return errors.Join(errs...)
}

// setting is one of the recipe's one-word choices: its field, its default (stored as "", so
// stating it changes no recipe version) and the other value it may take.
type setting struct {
	field      string
	value      *string
	def, other string
}

func (r *Recipe) settings() []setting {
	return []setting{
		{"unsupported_color_profile", &r.UnsupportedColorProfile, AssumeSRGB, Quarantine},
		{"color", &r.Color, SRGB, KeepProfile},
		{"metadata", &r.Metadata, MetadataNone, MetadataCopyright},
		{"animation", &r.Animation, AnimationFirstFrame, AnimationPreserve},
	}
}

// headerValue is what an HTTP header value may hold here: printable ASCII (no CR or LF to split
// the request), at most 256 characters.
var headerValue = regexp.MustCompile(`^[\x20-\x7e]{0,256}$`)

var s3URI = regexp.MustCompile(`^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.+$`)

// Version hashes the canonical JSON of the recipe together with extra inputs that change the
// output (the watermark's bytes), as 16 hex digits.
func (r Recipe) Version(extra ...[]byte) string {
	canon, _ := json.Marshal(r) // plain structs of strings and numbers always marshal
	h := sha256.New()
	h.Write(canon)
	for _, e := range extra {
		s := sha256.Sum256(e)
		h.Write(s[:])
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// WatermarkS3 splits an s3:// watermark source into bucket and key.
func (w Watermark) WatermarkS3() (bucket, key string, ok bool) {
	m := s3Parts.FindStringSubmatch(w.Source)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}

var s3Parts = regexp.MustCompile(`^s3://([^/]+)/(.+)$`)

// UsesWatermark reports whether any rendition asks for the watermark.
func (r Recipe) UsesWatermark() bool {
	for _, rd := range r.Renditions {
		if rd.Watermark {
			return true
		}
	}
	return false
}
