package recipe_test

import (
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/pkg/recipe"
)

func TestDefaultIsValidAndAsDocumented(t *testing.T) {
	d := recipe.Default()
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(d.Renditions) != 3 || d.JPEGQuality != 82 {
		t.Fatalf("default %+v", d)
	}
	want := []recipe.Rendition{
		{Name: "large", Mode: recipe.Fit, Width: 2048, Height: 2048, Watermark: true, Format: recipe.Auto},
		{Name: "medium", Mode: recipe.Fit, Width: 1024, Height: 1024, Watermark: true, Format: recipe.Auto},
		{Name: "thumb", Mode: recipe.Fill, Width: 256, Height: 256, Watermark: false, Format: recipe.Auto},
	}
	for i, w := range want {
		if d.Renditions[i] != w {
			t.Errorf("rendition %d = %+v, want %+v", i, d.Renditions[i], w)
		}
	}
}

func TestParseGood(t *testing.T) {
	r, err := recipe.Parse([]byte(`{"renditions":[{"name":"web","width":1600,"height":1600,"watermark":true},
		{"name":"sq","mode":"fill","width":300,"height":300,"format":"png"},
		{"name":"w","mode":"fill","width":100,"height":100,"format":"webp"}],"watermark":{"position":"top-left","opacity":0.3}}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.Renditions[0].Mode != recipe.Fit || r.Renditions[0].Format != recipe.Auto || r.Renditions[1].Format != recipe.PNG || r.Renditions[2].Format != recipe.WebP {
		t.Errorf("defaults not applied: %+v", r.Renditions)
	}
	if r.Watermark.Position != recipe.TopLeft || r.Watermark.Opacity != 0.3 || r.Watermark.Scale != recipe.Default().Watermark.Scale {
		t.Errorf("watermark %+v", r.Watermark)
	}
	if r.JPEGQuality != 82 {
		t.Errorf("jpeg_quality %d, want the default 82", r.JPEGQuality)
	}
}

func TestParseBadNamesEveryField(t *testing.T) {
	_, err := recipe.Parse([]byte(`{"renditions":[{"name":"Big!","mode":"stretch","width":0,"height":99999,"format":"gif","quality":101},
		{"name":"manifest","width":10,"height":10}],"jpeg_quality":0,"unsupported_color_profile":"ignore","color":"p3","metadata":"all","animation":"loop",
		"watermark":{"source":"http://x","position":"middle","opacity":0,"scale":2,"margin":-1,"min_width":-5}}`))
	if err == nil {
		t.Fatal("bad recipe accepted")
	}
	for _, field := range []string{"renditions[0].name", "renditions[0].mode", "renditions[0].width", "renditions[0].height",
		"renditions[0].format", "renditions[0].quality", "renditions[1].name", "jpeg_quality", "watermark.source",
		"watermark.position", "watermark.opacity", "watermark.scale", "watermark.margin", "watermark.min_width", "unsupported_color_profile", "color", "metadata", "animation"} {
		if !strings.Contains(err.Error(), field+":") {
			t.Errorf("error does not name %s:\n%v", field, err)
		}
	}
}

func TestParseRejectsUnknownFieldsAndEmpty(t *testing.T) {
	for _, raw := range []string{`{"renditons":[]}`, `{"renditions":[]}`, `{} {}`, `[`} {
		if _, err := recipe.Parse([]byte(raw)); err == nil {
			t.Errorf("Parse(%s) accepted", raw)
		}
	}
}

func TestVersionChangesWithRecipeAndWatermark(t *testing.T) {
	a := recipe.Default()
	b := recipe.Default()
	if a.Version([]byte("wm")) != b.Version([]byte("wm")) {
		t.Fatal("equal recipes, different versions")
	}
	b.JPEGQuality = 83
	if a.Version([]byte("wm")) == b.Version([]byte("wm")) {
		t.Fatal("changed recipe, same version")
	}
	if a.Version([]byte("wm")) == a.Version([]byte("other watermark")) {
		t.Fatal("changed watermark, same version")
	}
	if len(a.Version()) != 16 {
		t.Fatalf("version %q is not 16 hex digits", a.Version())
	}
}

// An S3 watermark is pinned by its version id or ETag, so every container renders the same
// bytes; the default one takes no pin.
func TestWatermarkFromS3MustBePinned(t *testing.T) {
	cases := []struct {
		source, version, etag string
		bad                   string // the field the error names; "" when valid
	}{
		{"s3://brand-assets/logo.png", "3HL4kqtJlcpXroDTDmJ", "", ""},
		{"s3://brand-assets/logo.png", "", "9b2cf535f27731c974343645a3985328", ""},
		{"s3://brand-assets/logo.png", "", "", "watermark.version_id"},
		{"s3://brand-assets/logo.png", "v", "e", "watermark.etag"},
		{"default", "v", "", "watermark.version_id"},
		{"default", "", "", ""},
	}
	for _, c := range cases {
		r := recipe.Default()
		r.Watermark.Source, r.Watermark.VersionID, r.Watermark.ETag = c.source, c.version, c.etag
		err := r.Validate()
		switch {
		case c.bad == "" && err != nil:
			t.Errorf("%+v: %v", c, err)
		case c.bad != "" && (err == nil || !strings.Contains(err.Error(), c.bad)):
			t.Errorf("%+v: error %v, want one naming %s", c, err, c.bad)
		}
	}
}

// The colour policies: assume_srgb and srgb are the defaults, so stating them changes no
// recipe version; quarantine and keep do.
func TestUnsupportedColorProfilePolicy(t *testing.T) {
	def, err := recipe.Parse([]byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	stated, err := recipe.Parse([]byte(`{"unsupported_color_profile":"assume_srgb"}`))
	if err != nil {
		t.Fatal(err)
	}
	strict, err := recipe.Parse([]byte(`{"unsupported_color_profile":"quarantine"}`))
	if err != nil {
		t.Fatal(err)
	}
	if def.Version() != stated.Version() || def.Version() == strict.Version() || strict.UnsupportedColorProfile != recipe.Quarantine {
		t.Errorf("versions %s %s %s; policy %q", def.Version(), stated.Version(), strict.Version(), strict.UnsupportedColorProfile)
	}
	if def.Version() != recipe.Default().Version() {
		t.Error("the default recipe's version changed")
	}
	srgb, err := recipe.Parse([]byte(`{"color":"srgb"}`))
	if err != nil {
		t.Fatal(err)
	}
	keep, err := recipe.Parse([]byte(`{"color":"keep"}`))
	if err != nil {
		t.Fatal(err)
	}
	if srgb.Version() != def.Version() || keep.Version() == def.Version() || keep.Color != recipe.KeepProfile {
		t.Errorf("color: srgb %s, keep %s, default %s", srgb.Version(), keep.Version(), def.Version())
	}
}
