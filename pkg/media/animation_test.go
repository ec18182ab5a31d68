package media_test

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluice-dev/sluice/pkg/failure"
	"github.com/sluice-dev/sluice/pkg/media"
)

var (
	red   = color.RGBA{255, 0, 0, 255}
	blue  = color.RGBA{0, 0, 255, 255}
	green = color.RGBA{0, 255, 0, 255}
)

// threeFrames is a 4×4 GIF: all red; a blue 2×2 at the top left disposed to the previous frame;
// a green 2×2 at the bottom right. Delays 10, 20, 30; loops forever.
func threeFrames(t *testing.T) []byte {
	t.Helper()
	pal := color.Palette{red, blue, green, color.RGBA{}}
	frame := func(r image.Rectangle, idx uint8) *image.Paletted {
		p := image.NewPaletted(r, pal)
		for i := range p.Pix {
			p.Pix[i] = idx
		}
		return p
	}
	g := &gif.GIF{
		Image:    []*image.Paletted{frame(image.Rect(0, 0, 4, 4), 0), frame(image.Rect(0, 0, 2, 2), 1), frame(image.Rect(2, 2, 4, 4), 2)},
		Delay:    []int{10, 20, 30},
		Disposal: []byte{gif.DisposalNone, gif.DisposalPrevious, gif.DisposalNone},
		Config:   image.Config{ColorModel: pal, Width: 4, Height: 4},
	}
	var b bytes.Buffer
	if err := gif.EncodeAll(&b, g); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// Every frame comes out composed as a viewer shows it (disposal to the previous frame
// honoured), with its delay; the cost is counted from the container.
func TestDecodeAnimationComposesFrames(t *testing.T) {
	data := threeFrames(t)
	frames, canvas, err := media.AnimationCost(media.GIF, data)
	if err != nil || frames != 3 || canvas != image.Pt(4, 4) {
		t.Fatalf("cost: %d frames of %v (%v)", frames, canvas, err)
	}
	a, err := media.DecodeAnimation(media.GIF, data)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Frames) != 3 || a.Delays[1] != 20 || a.Loop != 0 {
		t.Fatalf("%d frames, delays %v, loop %d", len(a.Frames), a.Delays, a.Loop)
	}
	for _, c := range []struct {
		frame, x, y int
		want        color.RGBA
	}{
		{0, 0, 0, red}, {1, 0, 0, blue}, {1, 3, 3, red},
		{2, 0, 0, red}, // the blue frame was disposed of: back to the red before it
		{2, 3, 3, green},
	} {
		if got := color.RGBAModel.Convert(a.Frames[c.frame].At(c.x, c.y)); got != c.want {
			t.Errorf("frame %d at (%d,%d): %v, want %v", c.frame, c.x, c.y, got, c.want)
		}
	}
	webp, err := os.ReadFile(filepath.Join("testdata", "webp", "anim-offset.webp"))
	if err != nil {
		t.Fatal(err)
	}
	if frames, canvas, _ := media.AnimationCost(media.WebP, webp); frames != 2 || canvas != image.Pt(96, 66) {
		t.Errorf("animated WebP: %d frames of %v", frames, canvas)
	}
	wa, err := media.DecodeAnimation(media.WebP, webp)
	if err != nil || len(wa.Frames) != 2 || wa.Delays[0] != 10 {
		t.Errorf("animated WebP: %d frames, delays %v (%v)", len(wa.Frames), wa.Delays, err)
	}
}

// An animation whose frames, composed, would hold more pixels than the limit (or more frames) is
// refused from its container alone: a 12 KB GIF claiming a 10000×10000 canvas for 100 frames.
func TestAnimationBombIsRefusedBeforeDecoding(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("GIF89a")
	b.Write([]byte{0x10, 0x27, 0x10, 0x27, 0x80, 0, 0}) // 10000×10000, a global table of 2
	b.Write([]byte{0, 0, 0, 255, 255, 255})
	for range 100 {
		b.Write([]byte{0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x4C, 0x01, 0}) // 1×1 at 0,0
	}
	b.WriteByte(0x3B)
	frames, canvas, err := media.AnimationCost(media.GIF, b.Bytes())
	if err != nil || frames != 100 || canvas != image.Pt(10000, 10000) {
		t.Fatalf("cost: %d frames of %v (%v)", frames, canvas, err)
	}
	lim := media.Limits{MaxPixels: 40_000_000, MaxAnimationFrames: 1000}
	var perm *failure.PermanentError
	if err := media.CheckAnimation(frames, canvas, lim); !errors.As(err, &perm) || perm.Reason != failure.TooManyPixels {
		t.Errorf("%v, want too_many_pixels", err)
	}
	lim.MaxAnimationFrames = 50
	if err := media.CheckAnimation(frames, image.Pt(10, 10), lim); err == nil {
		t.Error("100 frames passed a limit of 50")
	}
}
