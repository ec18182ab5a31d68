package render

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/gif"
	"testing"

	"github.com/sluice-dev/sluice/pkg/recipe"
)

// Each rendition of an animation is an animated GIF of every frame at the rendition's size,
// with the source's delays and loop count, its colours close to the frames'.
func TestRenderAnimationKeepsFramesDelaysAndLoop(t *testing.T) {
	var frames []image.Image
	for i, c := range []color.NRGBA{{200, 40, 40, 255}, {40, 200, 40, 255}, {40, 40, 200, 255}} {
		f := image.NewNRGBA(image.Rect(0, 0, 300, 200))
		for p := 0; p < len(f.Pix); p += 4 {
			f.Pix[p], f.Pix[p+1], f.Pix[p+2], f.Pix[p+3] = c.R, c.G, c.B, c.A
		}
		if i == 2 { // a transparent corner stays transparent
			for y := range 20 {
				for x := range 20 {
					f.SetNRGBA(x, y, color.NRGBA{})
				}
			}
		}
		frames = append(frames, f)
	}
	rec, err := recipe.Parse([]byte(`{"animation":"preserve","renditions":[{"name":"a","width":150,"height":150},{"name":"b","mode":"fill","width":50,"height":50}]}`))
	if err != nil {
		t.Fatal(err)
	}
	outs, err := New(rec, nil).RenderAnimation(context.Background(), Animation{Frames: frames, Delays: []int{5, 10, 15}, Loop: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []image.Point{{150, 100}, {50, 50}} {
		o := outs[i]
		if o.Format != recipe.GIF || o.Ext() != "gif" || o.ContentType() != "image/gif" {
			t.Errorf("%s: %s %s %s", o.Name, o.Format, o.Ext(), o.ContentType())
		}
		g, err := gif.DecodeAll(bytes.NewReader(o.Body))
		if err != nil {
			t.Fatal(err)
		}
		if len(g.Image) != 3 || g.LoopCount != 2 || g.Delay[2] != 15 || g.Image[0].Bounds().Size() != want {
			t.Errorf("%s: %d frames, loop %d, delays %v, size %v", o.Name, len(g.Image), g.LoopCount, g.Delay, g.Image[0].Bounds().Size())
		}
		r, gr, b, _ := g.Image[1].At(want.X/2, want.Y/2).RGBA()
		if r>>8 > 70 || gr>>8 < 170 || b>>8 > 70 {
			t.Errorf("%s: the green frame's middle is %d,%d,%d", o.Name, r>>8, gr>>8, b>>8)
		}
		if _, _, _, a := g.Image[2].At(0, 0).RGBA(); i == 0 && a != 0 {
			t.Errorf("%s: the transparent corner is opaque", o.Name)
		}
	}
}
