// Package render makes a recipe's renditions from one decoded image: largest first, each smaller
// one resized from the previous (un-watermarked) result instead of from the original (a
// cascade), the watermark laid on a copy, and the context checked between steps so a Lambda
// deadline stops the work between renditions.
package render

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"image/png"
	"math"
	"sort"

	"github.com/disintegration/imaging"
	"github.com/gen2brain/webp"

	"github.com/sluice-dev/sluice/pkg/jpegenc"
	"github.com/sluice-dev/sluice/pkg/recipe"

	"github.com/sluice-dev/sluice/pkg/workgroup"
)

// Output is one encoded rendition.
type Output struct {
	Name          string
	Width, Height int
	Format        recipe.Format // JPEG, PNG, WebP or (an animation) GIF, never Auto
	Body          []byte
}

// Ext is the file extension of the output.
func (o Output) Ext() string {
	switch o.Format {
	case recipe.PNG:
		return "png"
	case recipe.WebP:
		return "webp"
	case recipe.GIF:
		return "gif"
	}
	return "jpg"
}

// ContentType is the output's MIME type.
func (o Output) ContentType() string {
	switch o.Format {
	case recipe.PNG:
		return "image/png"
	case recipe.WebP:
		return "image/webp"
	case recipe.GIF:
		return "image/gif"
	}
	return "image/jpeg"
}

// Renderer applies one recipe. It is safe for concurrent use.
type Renderer struct {
	recipe    recipe.Recipe
	watermark *image.NRGBA
}

// New prepares a renderer; watermark is the decoded watermark image (nil when no rendition
// asks for one).
func New(r recipe.Recipe, watermark image.Image) *Renderer {
	var wm *image.NRGBA
	if watermark != nil {
		wm = imaging.Clone(watermark)
	}
	return &Renderer{recipe: r, watermark: wm}
}

// target is a rendition's final size for a given source size. Never larger than the source.
func target(rd recipe.Rendition, srcW, srcH int) (w, h int) {
	switch rd.Mode {
	case recipe.Fill:
		w, h = min(rd.Width, srcW), min(rd.Height, srcH)
		if w == srcW || h == srcH {
			// Cannot fill without upscaling: keep the box's aspect ratio inside the source.
			ratio := float64(rd.Width) / float64(rd.Height)
			if float64(srcW)/float64(srcH) > ratio {
				h = srcH
				w = int(float64(h)*ratio + 0.5)
			} else {
				w = srcW
				h = int(float64(w)/ratio + 0.5)
			}
			w, h = max(1, min(w, srcW)), max(1, min(h, srcH))
		}
		return w, h
	default: // fit
		if srcW <= rd.Width && srcH <= rd.Height {
			return srcW, srcH
		}
		scale := min(float64(rd.Width)/float64(srcW), float64(rd.Height)/float64(srcH))
		return max(1, int(float64(srcW)*scale+0.5)), max(1, int(float64(srcH)*scale+0.5))
	}
}

// Need is the smallest source size, for a full-size w×h source, from which every rendition can
// be made without upscaling: what a decoder may reduce the image to before Render.
func (r *Renderer) Need(w, h int) (needW, needH int) {
	for _, rd := range r.recipe.Renditions {
		tw, th := cover(rd, w, h)
		needW, needH = max(needW, tw), max(needH, th)
	}
	return needW, needH
}

// cover is the size to which a w×h source is scaled to make rd: the target for fit, the
// size that covers the box before the crop for fill.
func cover(rd recipe.Rendition, w, h int) (int, int) {
	tw, th := target(rd, w, h)
	if rd.Mode != recipe.Fill {
		return tw, th
	}
	scale := max(float64(tw)/float64(w), float64(th)/float64(h))
	return int(math.Ceil(float64(w) * scale)), int(math.Ceil(float64(h) * scale))
}

// Render makes every rendition of src, in the recipe's order. full is the source's full size,
// from which the renditions' sizes are computed; src may be smaller (a reduced decode) but
// must cover Need(full). Each rendition is encoded as soon as its pixels are ready, while the
// next one is resized.
func (r *Renderer) Render(ctx context.Context, src image.Image, full image.Point) ([]Output, error) {
	alpha := hasAlpha(src)
	outs := make([]Output, len(r.recipe.Renditions))
	errs := make([]error, len(outs))
	var wg workgroup.Group
	err := r.images(ctx, src, full, func(i int, img image.Image) {
		wg.Go(func() { outs[i], errs[i] = r.encodeRendition(ctx, r.recipe.Renditions[i], img, alpha) })
	})
	wg.Wait()
	if err != nil {
		return nil, err
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return outs, nil
}

// encodeRendition encodes one rendition in its format (auto: PNG when the source has transparency,
// else JPEG).
func (r *Renderer) encodeRendition(ctx context.Context, rd recipe.Rendition, img image.Image, alpha bool) (Output, error) {
	if err := ctx.Err(); err != nil {
		return Output{}, fmt.Errorf("encode %s: %w", rd.Name, err)
	}
	format := rd.Format
	if format == recipe.Auto {
		format = recipe.JPEG
		if alpha {
			format = recipe.PNG
		}
	}
	quality := rd.Quality
	if quality == 0 {
		quality = r.recipe.JPEGQuality
	}
	body, err := encode(img, format, quality)
	if err != nil {
		return Output{}, fmt.Errorf("encode %s as %s: %w", rd.Name, format, err)
	}
	b := img.Bounds()
	return Output{Name: rd.Name, Width: b.Dx(), Height: b.Dy(), Format: format, Body: body}, nil
}

// images resizes (largest first, cascading) and watermarks, calling done with each rendition
// (and its index in the recipe) as soon as it is made.
func (r *Renderer) images(ctx context.Context, src image.Image, full image.Point, done func(int, image.Image)) error {
	order := make([]int, len(r.recipe.Renditions))
	for i := range order {
		order[i] = i
	}
	// Largest area first, so each rendition can be made from a larger one already made.
	sort.SliceStable(order, func(a, c int) bool {
		wa, ha := target(r.recipe.Renditions[order[a]], full.X, full.Y)
		wc, hc := target(r.recipe.Renditions[order[c]], full.X, full.Y)
		return wa*ha > wc*hc
	})
	var made []image.Image // un-watermarked results, largest first
	for _, i := range order {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("render %s: %w", r.recipe.Renditions[i].Name, err)
		}
		rd := r.recipe.Renditions[i]
		w, h := target(rd, full.X, full.Y)
		from := pickSource(src, made, rd, full)
		img := resize(from, w, h, rd.Mode == recipe.Fill)
		made = append(made, img)
		if rd.Watermark && r.watermark != nil && w >= r.recipe.Watermark.MinWidth {
			img = r.applyWatermark(img)
		}
		done(i, img)
	}
	return nil
}

// resize scales src to w×h: fit scales the whole image, fill first crops it, centred, to the
// w:h aspect ratio (as imaging.Fill does). A JPEG's YCbCr or grey planes are resized as they
// are; anything else goes through imaging, as NRGBA.
func resize(src image.Image, w, h int, fill bool) image.Image {
	b := src.Bounds()
	if fill {
		cw, ch := b.Dx(), b.Dy()
		if cw*h > ch*w { // wider than the box: crop the sides
			cw = max(1, int(float64(ch)*float64(w)/float64(h)+0.5))
		} else {
			ch = max(1, int(float64(cw)*float64(h)/float64(w)+0.5))
		}
		at := b.Min.Add(image.Pt((b.Dx()-cw)/2, (b.Dy()-ch)/2))
		if sub, ok := src.(interface {
			SubImage(image.Rectangle) image.Image
		}); ok {
			src = sub.SubImage(image.Rectangle{Min: at, Max: at.Add(image.Pt(cw, ch))})
			b = src.Bounds()
		}
	}
	if b.Dx() == w && b.Dy() == h {
		// Already the size. A YCbCr image still goes to 4:2:0 below (the chroma alone is
		// resampled), which the watermark blend and the JPEG writer take as it is.
		if m, ok := src.(*image.YCbCr); !ok || m.SubsampleRatio == image.YCbCrSubsampleRatio420 {
			return src
		}
	}
	if out, ok := resizePlanar(src, w, h); ok {
		return out
	}
	if fill {
		return imaging.Fill(src, w, h, imaging.Center, imaging.Lanczos)
	}
	return imaging.Resize(src, w, h, imaging.Lanczos)
}

// pickSource returns the smallest image already made that still covers rd twice over (so the
// resize only ever shrinks, never crops what fill needs, and resampling twice costs no detail),
// or the source. Only a fit result (the source's aspect ratio, never a crop) qualifies.
func pickSource(src image.Image, made []image.Image, rd recipe.Rendition, full image.Point) image.Image {
	needW, needH := cover(rd, full.X, full.Y)
	for k := len(made) - 1; k >= 0; k-- {
		mb := made[k].Bounds()
		sameAspect := abs(mb.Dx()*full.Y-mb.Dy()*full.X) <= max(full.X, full.Y)
		if sameAspect && mb.Dx() >= 2*needW && mb.Dy() >= 2*needH {
			return made[k]
		}
	}
	return src
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// applyWatermark returns a copy of img with the watermark scaled to its box and drawn with
// the recipe's opacity: blended into the planes of a 4:2:0 image, drawn over an NRGBA copy
// of anything else.
func (r *Renderer) applyWatermark(img image.Image) image.Image {
	wb := r.watermark.Bounds()
	box := WatermarkBox(r.recipe.Watermark, wb.Dx(), wb.Dy(), img.Bounds().Dx(), img.Bounds().Dy())
	mark := imaging.Resize(r.watermark, box.Dx(), box.Dy(), imaging.Lanczos)
	if m, ok := img.(*image.YCbCr); ok && m.SubsampleRatio == image.YCbCrSubsampleRatio420 {
		return blend420(m, mark, box.Min, uint8(r.recipe.Watermark.Opacity*255+0.5))
	}
	out := imaging.Clone(img)
	mask := image.NewUniform(color.Alpha{A: uint8(r.recipe.Watermark.Opacity*255 + 0.5)})
	draw.DrawMask(out, box, mark, image.Point{}, mask, image.Point{}, draw.Over)
	return out
}

// WatermarkBox is where a wmW×wmH watermark lands on a w×h rendition: its width the recipe's
// fraction of w, its aspect ratio kept, placed at the recipe's position and margin.
func WatermarkBox(cfg recipe.Watermark, wmW, wmH, w, h int) image.Rectangle {
	ww := max(1, int(float64(w)*cfg.Scale+0.5))
	wh := max(1, int(float64(wmH)*float64(ww)/float64(wmW)+0.5))
	m := int(float64(w)*cfg.Margin + 0.5)
	var at image.Point
	switch cfg.Position {
	case recipe.TopLeft:
		at = image.Pt(m, m)
	case recipe.TopRight:
		at = image.Pt(w-ww-m, m)
	case recipe.BottomLeft:
		at = image.Pt(m, h-wh-m)
	case recipe.Center:
		at = image.Pt((w-ww)/2, (h-wh)/2)
	default:
		at = image.Pt(w-ww-m, h-wh-m)
	}
	return image.Rect(0, 0, ww, wh).Add(at)
}

func encode(img image.Image, f recipe.Format, quality int) ([]byte, error) {
	var buf bytes.Buffer
	var err error
	switch f {
	case recipe.PNG:
		err = (&png.Encoder{CompressionLevel: png.DefaultCompression}).Encode(&buf, img)
	case recipe.WebP:
		// libwebp compiled to WebAssembly, run by wazero (pure Go: the arm64 build stays
		// static); the module is compiled on the first WebP encode of a process.
		err = webp.Encode(&buf, img, webp.Options{Quality: quality, Method: 4})
	default:
		if jpegenc.Supports(img) {
			// The 4:2:0 and grey images the planar resize makes: written from their planes,
			// in parallel stripes.
			err = jpegenc.Encode(&buf, img, quality)
			break
		}
		err = jpeg.Encode(&buf, asRGBA(img), &jpeg.Options{Quality: quality})
	}
	return buf.Bytes(), err
}

// asRGBA returns an opaque *image.NRGBA as an *image.RGBA over the same pixels (for opaque
// pixels the two layouts hold the same bytes), which image/jpeg encodes on its fast path instead
// of converting every pixel through the image.Image interface; the bytes come out the same.
// Anything else is returned as it is.
func asRGBA(img image.Image) image.Image {
	if n, ok := img.(*image.NRGBA); ok && n.Opaque() {
		return &image.RGBA{Pix: n.Pix, Stride: n.Stride, Rect: n.Rect}
	}
	return img
}

// hasAlpha reports whether any pixel of img is not fully opaque.
func hasAlpha(img image.Image) bool {
	if o, ok := img.(interface{ Opaque() bool }); ok {
		return !o.Opaque()
	}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if _, _, _, a := img.At(x, y).RGBA(); a != 0xffff {
				return true
			}
		}
	}
	return false
}
