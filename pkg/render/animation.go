package render

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"sort"

	"github.com/sluice-dev/sluice/pkg/recipe"
)

// Animation is an animated source as its composed frames (each the whole canvas).
type Animation struct {
	Frames []image.Image
	Delays []int // hundredths of a second
	Loop   int   // GIF's loop count: 0 forever
}

// RenderAnimation makes every rendition of an animation as an animated GIF: each composed frame
// resized to the rendition's size (and watermarked if it asks), reduced to one palette for the
// whole rendition (median cut; each pixel to the nearest colour, found once per 15-bit colour,
// without dithering), written as a full frame that is cleared before the next (so the frames
// show as composed, transparency included), with the source's delays and loop count.
func (r *Renderer) RenderAnimation(ctx context.Context, a Animation) ([]Output, error) {
	if len(a.Frames) == 0 {
		return nil, fmt.Errorf("render an animation without frames")
	}
	full := a.Frames[0].Bounds().Size()
	outs := make([]Output, len(r.recipe.Renditions))
	for i, rd := range r.recipe.Renditions {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("render %s: %w", rd.Name, err)
		}
		w, h := target(rd, full.X, full.Y)
		frames := make([]image.Image, len(a.Frames))
		for k, f := range a.Frames {
			img := resize(f, w, h, rd.Mode == recipe.Fill)
			if rd.Watermark && r.watermark != nil && w >= r.recipe.Watermark.MinWidth {
				img = r.applyWatermark(img)
			}
			frames[k] = img
		}
		body, err := encodeGIF(frames, a.Delays, a.Loop)
		if err != nil {
			return nil, fmt.Errorf("encode %s as GIF: %w", rd.Name, err)
		}
		outs[i] = Output{Name: rd.Name, Width: w, Height: h, Format: recipe.GIF, Body: body}
	}
	return outs, nil
}

func encodeGIF(frames []image.Image, delays []int, loop int) ([]byte, error) {
	pal := medianCut(frames, 255)
	transparent := uint8(len(pal))
	pal = append(pal, color.RGBA{})
	var nearest [1 << 15]int16 // by 5 bits a channel: 1 + the palette index, 0 not yet known
	g := &gif.GIF{LoopCount: loop}
	for k, f := range frames {
		p := image.NewPaletted(f.Bounds(), pal)
		b := f.Bounds()
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := p.Pix[(y-b.Min.Y)*p.Stride:]
			for x := b.Min.X; x < b.Max.X; x++ {
				c := color.NRGBAModel.Convert(f.At(x, y)).(color.NRGBA)
				if c.A < 128 {
					row[x-b.Min.X] = transparent
					continue
				}
				key := int(c.R>>3)<<10 | int(c.G>>3)<<5 | int(c.B>>3)
				if nearest[key] == 0 {
					nearest[key] = int16(pal[:transparent].Index(color.RGBA{c.R&^7 | 4, c.G&^7 | 4, c.B&^7 | 4, 255})) + 1
				}
				row[x-b.Min.X] = uint8(nearest[key] - 1)
			}
		}
		g.Image = append(g.Image, p)
		g.Delay = append(g.Delay, delays[k])
		g.Disposal = append(g.Disposal, gif.DisposalBackground)
	}
	var buf bytes.Buffer
	err := gif.EncodeAll(&buf, g)
	return buf.Bytes(), err
}

// medianCut chooses up to n opaque colours for frames: it samples their opaque pixels (about
// 64 000 in all), then splits the box of samples with the widest channel range at its median
// until there are n boxes, each giving its mean. Ours because the standard library has only
// fixed palettes (Plan 9, web-safe), which band photographic frames.
func medianCut(frames []image.Image, n int) color.Palette {
	var samples [][3]uint8
	total := 0
	for _, f := range frames {
		total += f.Bounds().Dx() * f.Bounds().Dy()
	}
	step := max(1, total/64000)
	i := 0
	for _, f := range frames {
		b := f.Bounds()
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				if i++; i%step != 0 {
					continue
				}
				c := color.NRGBAModel.Convert(f.At(x, y)).(color.NRGBA)
				if c.A >= 128 {
					samples = append(samples, [3]uint8{c.R, c.G, c.B})
				}
			}
		}
	}
	if len(samples) == 0 {
		return color.Palette{color.RGBA{A: 255}}
	}
	boxes := [][][3]uint8{samples}
	for len(boxes) < n {
		widest, channel, span := -1, 0, 0
		for k, bx := range boxes {
			if len(bx) < 2 {
				continue
			}
			for c := range 3 {
				lo, hi := uint8(255), uint8(0)
				for _, s := range bx {
					lo, hi = min(lo, s[c]), max(hi, s[c])
				}
				if int(hi)-int(lo) > span {
					widest, channel, span = k, c, int(hi)-int(lo)
				}
			}
		}
		if widest < 0 {
			break
		}
		bx := boxes[widest]
		sort.Slice(bx, func(a, b int) bool { return bx[a][channel] < bx[b][channel] })
		mid := len(bx) / 2
		boxes[widest] = bx[:mid]
		boxes = append(boxes, bx[mid:])
	}
	pal := make(color.Palette, 0, len(boxes))
	for _, bx := range boxes {
		var sum [3]int
		for _, s := range bx {
			for c := range 3 {
				sum[c] += int(s[c])
			}
		}
		k := len(bx)
		pal = append(pal, color.RGBA{uint8((sum[0] + k/2) / k), uint8((sum[1] + k/2) / k), uint8((sum[2] + k/2) / k), 255})
	}
	return pal
}
