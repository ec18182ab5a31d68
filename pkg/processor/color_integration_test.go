package processor_test

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/pkg/icc/icctest"
	"github.com/sluice-dev/sluice/pkg/media"
	"github.com/sluice-dev/sluice/pkg/processor"
	"github.com/sluice-dev/sluice/pkg/recipe"
)

// A Display P3 photo is converted, and its manifest says from what; a file whose profile
// cannot be evaluated is rendered as sRGB and its manifest says so, or, when the recipe asks,
// it is quarantined as unsupported_color_profile.
func TestColourProfilesThroughTheProcessor(t *testing.T) {
	p3, err := os.ReadFile("../media/testdata/color/p3.jpg")
	if err != nil {
		t.Fatal(err)
	}
	lut := icctest.JPEG(grayJPEG(t, 300, 200), icctest.LUT(), 1<<15, 0)

	r := newRig(t, nil)
	r.upload(t, "uploads/p3.jpg", p3, nil)
	r.upload(t, "uploads/lut.jpg", lut, nil)
	for key, want := range map[string]media.Color{
		"uploads/p3.jpg":  {Profile: "sP3C", Converted: true},
		"uploads/lut.jpg": {Profile: "LUT RGB"},
	} {
		res := r.proc.Process(context.Background(), "req-colour", r.event(key))
		if res.Outcome != processor.Succeeded {
			t.Fatalf("%s: %s %s %v", key, res.Outcome, res.Detail, res.Err)
		}
		m, err := processor.ReadManifest(r.get(t, r.output, r.proc.Keys().Manifest(key)))
		if err != nil {
			t.Fatal(err)
		}
		c := m.Source.Color
		if c == nil || c.Profile != want.Profile || c.Converted != want.Converted || (c.Unsupported == "") != want.Converted {
			t.Errorf("%s: manifest colour %+v, want %+v (with a reason when not converted)", key, c, want)
		}
		// The renditions are sRGB JPEGs whatever the source was.
		if _, err := jpeg.Decode(bytes.NewReader(r.get(t, r.output, r.rendition(t, key, "thumb")))); err != nil {
			t.Errorf("%s: thumb: %v", key, err)
		}
	}

	strict := newRig(t, func(c *processor.Config) { c.Recipe.UnsupportedColorProfile = recipe.Quarantine })
	strict.upload(t, "uploads/lut.jpg", lut, nil)
	res := strict.proc.Process(context.Background(), "req-colour", strict.event("uploads/lut.jpg"))
	if res.Outcome != processor.Quarantined || res.Reason != "unsupported_color_profile" {
		t.Errorf("strict recipe: %s %q (%s), want quarantined as unsupported_color_profile", res.Outcome, res.Reason, res.Detail)
	}
}

// With the recipe's color "keep", a Display P3 photo's renditions (JPEG, PNG and WebP) carry its
// profile and its unconverted pixels, and the manifest says the profile was kept.
func TestKeptProfileReachesEveryRendition(t *testing.T) {
	p3, err := os.ReadFile("../media/testdata/color/p3.jpg")
	if err != nil {
		t.Fatal(err)
	}
	keep, err := recipe.Parse([]byte(`{"color":"keep","renditions":[
		{"name":"j","width":200,"height":200,"format":"jpeg"},
		{"name":"p","width":200,"height":200,"format":"png"},
		{"name":"w","width":64,"height":64,"format":"webp"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, func(c *processor.Config) { c.Recipe = keep })
	r.upload(t, "uploads/wide.jpg", p3, nil)
	if res := r.proc.Process(context.Background(), "req-keep", r.event("uploads/wide.jpg")); res.Outcome != processor.Succeeded {
		t.Fatalf("%s %s %v", res.Outcome, res.Detail, res.Err)
	}
	m, err := processor.ReadManifest(r.get(t, r.output, r.proc.Keys().Manifest("uploads/wide.jpg")))
	if err != nil {
		t.Fatal(err)
	}
	if c := m.Source.Color; c == nil || !c.Kept || c.Profile != "sP3C" {
		t.Errorf("manifest colour %+v, want sP3C kept", c)
	}
	for _, name := range []string{"j", "p", "w"} {
		body := r.get(t, r.output, r.rendition(t, "uploads/wide.jpg", name))
		d, err := media.Decode(body, nil, media.KeepProfile())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !d.Color.Kept || d.Color.Profile != "sP3C" {
			t.Errorf("rendition %s: %+v, want the source's profile embedded", name, d.Color)
		}
	}
}

// With the recipe's metadata "copyright", JPEG renditions carry the source's authorship and
// nothing else of its metadata; the manifest records it. Without it, they carry none.
func TestCopyrightMetadataPolicy(t *testing.T) {
	src, err := os.ReadFile("../media/testdata/meta/meta.jpg")
	if err != nil {
		t.Fatal(err)
	}
	for _, policy := range []string{"copyright", "none"} {
		rec, err := recipe.Parse([]byte(`{"metadata":"` + policy + `","renditions":[
			{"name":"j","width":80,"height":80,"format":"jpeg"},{"name":"p","width":80,"height":80,"format":"png"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		r := newRig(t, func(c *processor.Config) { c.Recipe = rec })
		r.upload(t, "uploads/signed.jpg", src, nil)
		if res := r.proc.Process(context.Background(), "req-meta", r.event("uploads/signed.jpg")); res.Outcome != processor.Succeeded {
			t.Fatalf("%s: %s %s %v", policy, res.Outcome, res.Detail, res.Err)
		}
		m, err := processor.ReadManifest(r.get(t, r.output, r.proc.Keys().Manifest("uploads/signed.jpg")))
		if err != nil {
			t.Fatal(err)
		}
		j := r.get(t, r.output, r.rendition(t, "uploads/signed.jpg", "j"))
		p := r.get(t, r.output, r.rendition(t, "uploads/signed.jpg", "p"))
		got := media.ReadRights(media.JPEG, j)
		want := media.ReadRights(media.JPEG, src)
		if policy == "none" {
			want = media.Rights{}
		}
		if !reflect.DeepEqual(got, want) || (policy == "copyright") != (m.Source.Rights != nil) {
			t.Errorf("%s: the JPEG rendition states %+v (manifest %+v), want %+v", policy, got, m.Source.Rights, want)
		}
		for _, absent := range []string{"GPS", "SN123456", "Canon", "Paris", "Secret Editor"} {
			if bytes.Contains(j, []byte(absent)) || bytes.Contains(p, []byte(absent)) {
				t.Errorf("%s: a rendition holds %q", policy, absent)
			}
		}
		if r := media.ReadRights(media.PNG, p); !r.Empty() {
			t.Errorf("%s: the PNG rendition states %+v", policy, r)
		}
	}
}

// The recipe's animation policy: preserve makes animated GIF renditions of an animated GIF,
// every frame and delay; a GIF whose frames would exceed the pixel limit is quarantined before
// any is decoded; first_frame (the default) renders the first frame as a still.
func TestAnimationPolicy(t *testing.T) {
	pal := color.Palette{color.RGBA{200, 30, 30, 255}, color.RGBA{30, 30, 200, 255}}
	frame := func(idx uint8) *image.Paletted {
		p := image.NewPaletted(image.Rect(0, 0, 120, 80), pal)
		for i := range p.Pix {
			p.Pix[i] = idx
		}
		return p
	}
	var anim bytes.Buffer
	if err := gif.EncodeAll(&anim, &gif.GIF{Image: []*image.Paletted{frame(0), frame(1), frame(0)}, Delay: []int{7, 8, 9}}); err != nil {
		t.Fatal(err)
	}
	preserve, err := recipe.Parse([]byte(`{"animation":"preserve","renditions":[{"name":"s","width":60,"height":60}]}`))
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, func(c *processor.Config) { c.Recipe = preserve })
	r.upload(t, "uploads/loop.gif", anim.Bytes(), nil)
	if res := r.proc.Process(context.Background(), "req-anim", r.event("uploads/loop.gif")); res.Outcome != processor.Succeeded {
		t.Fatalf("%s %s %v", res.Outcome, res.Detail, res.Err)
	}
	key := r.rendition(t, "uploads/loop.gif", "s")
	g, err := gif.DecodeAll(bytes.NewReader(r.get(t, r.output, key)))
	if err != nil || len(g.Image) != 3 || g.Delay[1] != 8 || g.Image[0].Bounds().Size() != image.Pt(60, 40) || !strings.HasSuffix(key, ".gif") {
		t.Errorf("rendition %s: %d frames, delays %v, %v (%v)", key, len(g.Image), g.Delay, g.Image[0].Bounds(), err)
	}

	tight := newRig(t, func(c *processor.Config) { c.Recipe = preserve; c.Limits.MaxPixels = 20_000 })
	tight.upload(t, "uploads/long.gif", anim.Bytes(), nil) // 3 × 9600 pixels composed
	if res := tight.proc.Process(context.Background(), "req-anim", tight.event("uploads/long.gif")); res.Outcome != processor.Quarantined || res.Reason != "too_many_pixels" {
		t.Errorf("over the limit: %s %q %s", res.Outcome, res.Reason, res.Detail)
	}

	still := newRig(t, nil)
	still.upload(t, "uploads/loop.gif", anim.Bytes(), nil)
	if res := still.proc.Process(context.Background(), "req-anim", still.event("uploads/loop.gif")); res.Outcome != processor.Succeeded {
		t.Fatalf("first frame: %s %s", res.Outcome, res.Detail)
	}
	if key := still.rendition(t, "uploads/loop.gif", "thumb"); !strings.HasSuffix(key, ".jpg") {
		t.Errorf("first_frame rendition %s, want a JPEG", key)
	}
}
