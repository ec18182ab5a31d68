package processor_test

import (
	"context"
	"image"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluice-dev/sluice/pkg/failure"
	"github.com/sluice-dev/sluice/pkg/processor"
	"github.com/sluice-dev/sluice/pkg/recipe"
)

// A WebP rendition is published under its .webp key with its content type.
func TestWebPRenditionIsPublished(t *testing.T) {
	r := newRig(t, func(c *processor.Config) {
		c.Recipe.Renditions = []recipe.Rendition{{Name: "thumb", Mode: recipe.Fill, Width: 128, Height: 128, Format: recipe.WebP}}
	})
	const key = "uploads/w.jpg"
	r.upload(t, key, grayJPEG(t, 400, 300), nil)
	if res := r.proc.Process(context.Background(), "req-webp", r.event(key)); res.Outcome != processor.Succeeded {
		t.Fatalf("outcome %s err %v", res.Outcome, res.Err)
	}
	o, err := r.objects.Head(context.Background(), r.output, r.rendition(t, key, "thumb"))
	if err != nil || o.ContentType != "image/webp" {
		t.Fatalf("head: %+v %v", o, err)
	}
	if rec := r.record(t, key); len(rec.Outputs) != 1 || rec.Outputs[0].Format != "webp" {
		t.Fatalf("outputs %+v", rec.Outputs)
	}
}

// A HEIC and an AVIF photo go through the whole path: accepted by content, decoded (WebAssembly
// decoders), every rendition published as JPEG at the expected size; one over its format's own
// pixel limit is quarantined with the reason.
func TestHEICAndAVIFInputs(t *testing.T) {
	r := newRig(t, func(c *processor.Config) { c.Limits.MaxAVIFPixels = 100_000 })
	for _, name := range []string{"elephants.heic", "elephants.avif"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "images", name))
		if err != nil {
			t.Fatal(err)
		}
		key := "uploads/" + name
		r.upload(t, key, b, nil)
		res := r.proc.Process(context.Background(), "req-"+name, r.event(key))
		if name == "elephants.avif" {
			if res.Outcome != processor.Quarantined || res.Reason != string(failure.TooManyPixels) {
				t.Fatalf("%s over MAX_AVIF_PIXELS: outcome %s, reason %q", name, res.Outcome, res.Reason)
			}
			continue
		}
		if res.Outcome != processor.Succeeded {
			t.Fatalf("%s: outcome %s err %v", name, res.Outcome, res.Err)
		}
		img := decode(t, r.get(t, r.output, r.rendition(t, key, "medium")))
		if got := img.Bounds().Size(); got != image.Pt(600, 338) { // the source is smaller than medium
			t.Errorf("%s: medium is %v", name, got)
		}
	}
	// The same AVIF under a limit that admits it.
	r2 := newRig(t, nil)
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "images", "elephants.avif"))
	if err != nil {
		t.Fatal(err)
	}
	r2.upload(t, "uploads/a.avif", b, nil)
	if res := r2.proc.Process(context.Background(), "req-avif", r2.event("uploads/a.avif")); res.Outcome != processor.Succeeded {
		t.Fatalf("avif: outcome %s err %v", res.Outcome, res.Err)
	}
}

// Valid files that used to be quarantined as corrupt go through the whole path: arithmetic-coded
// and 12-bit JPEGs, a TIFF with JPEG compression, an animated WebP (its first frame), a
// Display P3 HEIC.
func TestFilesOnceCorruptArePublished(t *testing.T) {
	r := newRig(t, nil)
	for _, path := range []string{
		"../media/testdata/arith/arith.jpg", "../media/testdata/arith/arith-prog.jpg",
		"../jpegscale/testdata/twelve/twelve.jpg", "../media/testdata/tiff-jpeg/tiff-jpeg-tiled.tif",
		"../media/testdata/webp/anim-lossy.webp", "../media/testdata/color/p3.heic",
	} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		key := "uploads/" + filepath.Base(path)
		r.upload(t, key, b, nil)
		if res := r.proc.Process(context.Background(), "req-valid", r.event(key)); res.Outcome != processor.Succeeded {
			t.Errorf("%s: %s %q %s %v", key, res.Outcome, res.Reason, res.Detail, res.Err)
		}
	}
}
