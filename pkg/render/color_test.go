package render

import (
	"context"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluice-dev/sluice/pkg/icc/icctest"
	"github.com/sluice-dev/sluice/pkg/media"
	"github.com/sluice-dev/sluice/pkg/recipe"
)

// Every rendition of every colour fixture (pkg/media/testdata/color: Display P3, Adobe RGB and
// CMYK sources in JPEG, PNG, WebP, HEIC, AVIF and TIFF) is within mean ΔE2000 1.5 and 99th
// percentile 3 of the same rendition made from LittleCMS's sRGB rendering of the source: the
// default recipe's renditions (resized, watermarked) as they go to the encoder. (After JPEG
// encoding the two sides' quantisation noise differs by more than the colour does.)
func TestEveryRenditionOfTaggedSourcesMatchesLittleCMS(t *testing.T) {
	dir := filepath.Join("..", "media", "testdata", "color")
	sources, err := filepath.Glob(filepath.Join(dir, "*.*"))
	if err != nil {
		t.Fatal(err)
	}
	// The default recipe keeps these 256×176 charts at their size; a small one resizes them.
	small, err := recipe.Parse([]byte(`{"renditions":[{"name":"fit","mode":"fit","width":160,"height":160,"watermark":true},
		{"name":"square","mode":"fill","width":64,"height":64}],"watermark":{"min_width":0}}`))
	if err != nil {
		t.Fatal(err)
	}
	wm, err := DecodeWatermark(DefaultWatermark)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range []*Renderer{defaultRenderer(t), New(small, wm)} {
		n += compareRenditions(t, r, sources)
	}
	if n < 12*5 {
		t.Errorf("compared %d renditions; want those of 12 fixtures, 5 for each", n)
	}
}

// compareRenditions renders each tagged source and its reference with r and compares the
// renditions; it returns how many it compared.
func compareRenditions(t *testing.T, r *Renderer, sources []string) int {
	t.Helper()
	renditions := func(data []byte, like image.Image) ([]image.Image, image.Image) {
		t.Helper()
		d, err := media.Decode(data, r.Need)
		if err != nil {
			t.Fatal(err)
		}
		if like != nil {
			d.Image = sameLayout(d.Image, like)
		}
		outs := make([]image.Image, len(r.recipe.Renditions))
		if err := r.images(context.Background(), d.Image, image.Pt(d.Width, d.Height), func(i int, img image.Image) { outs[i] = img }); err != nil {
			t.Fatal(err)
		}
		return outs, d.Image
	}
	n := 0
	for _, src := range sources {
		ref, err := os.ReadFile(src + ".ref.png")
		if err != nil {
			continue // a reference itself
		}
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		ours, decoded := renditions(data, nil)
		theirs, _ := renditions(ref, decoded)
		for i := range ours {
			name := r.recipe.Renditions[i].Name
			if ours[i].Bounds() != theirs[i].Bounds() {
				t.Fatalf("%s %s: %v against %v", filepath.Base(src), name, ours[i].Bounds(), theirs[i].Bounds())
			}
			mean, p99 := icctest.DeltaE(ours[i], theirs[i])
			t.Logf("%s %s: mean ΔE2000 %.2f, p99 %.2f", filepath.Base(src), name, mean, p99)
			if mean > 1.5 || p99 > 3 {
				t.Errorf("%s %s: mean ΔE2000 %.2f (max 1.5), p99 %.2f (max 3)", filepath.Base(src), name, mean, p99)
			}
			n++
		}
	}
	return n
}

// sameLayout gives the reference the pixel layout of our decode, so that both take the same
// resize path: Y'CbCr with the same subsampling (each chroma sample the mean of its pixels', as
// colour conversion makes it), or the image as it is.
func sameLayout(ref, ours image.Image) image.Image {
	m, ok := ours.(*image.YCbCr)
	if !ok {
		return ref
	}
	out := image.NewYCbCr(ref.Bounds(), m.SubsampleRatio)
	cb, cr, n := make([]int, len(out.Cb)), make([]int, len(out.Cr)), make([]int, len(out.Cb))
	b := ref.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := ref.At(x, y).RGBA()
			yy, u, v := color.RGBToYCbCr(uint8(r>>8), uint8(g>>8), uint8(bl>>8))
			out.Y[out.YOffset(x, y)] = yy
			ci := out.COffset(x, y)
			cb[ci], cr[ci], n[ci] = cb[ci]+int(u), cr[ci]+int(v), n[ci]+1
		}
	}
	for i := range n {
		if n[i] > 0 {
			out.Cb[i], out.Cr[i] = uint8((cb[i]+n[i]/2)/n[i]), uint8((cr[i]+n[i]/2)/n[i])
		}
	}
	return out
}
