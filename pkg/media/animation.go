package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"image/gif"

	xwebp "golang.org/x/image/webp"

	"github.com/sluice-dev/sluice/pkg/failure"
)

// Animation is an animated image as the frames a viewer shows: each frame the whole canvas,
// already composed with the ones before it as the file's blending and disposal say.
type Animation struct {
	Frames []*image.NRGBA
	Delays []int // per frame, in hundredths of a second (GIF's unit)
	Loop   int   // as GIF counts it: 0 forever; n, n more times after the first; -1 once
}

// AnimationCost counts an animated GIF's or WebP's frames and the pixels its frames make up at
// canvas size, from the container alone (nothing is decoded): what CheckAnimation judges. A
// still image (or another format) has one frame.
func AnimationCost(f Format, data []byte) (frames int, canvas image.Point, err error) {
	switch f {
	case GIF:
		return gifCost(data)
	case WebP:
		vp8x := riffChunk(data, "VP8X")
		if len(vp8x) < 10 || vp8x[0]&0x02 == 0 {
			return 1, image.Point{}, nil
		}
		canvas = image.Pt(u24(vp8x[4:])+1, u24(vp8x[7:])+1)
		if len(data) >= 12 {
			riffChunks(data[12:], func(t string, _ []byte) bool {
				if t == "ANMF" {
					frames++
				}
				return true
			})
		}
		return frames, canvas, nil
	}
	return 1, image.Point{}, nil
}

// gifCost walks a GIF's blocks (GIF89a: header, logical screen, colour tables, extensions and
// image descriptors, each followed by its data sub-blocks) counting the images.
func gifCost(data []byte) (int, image.Point, error) {
	if len(data) < 13 {
		return 0, image.Point{}, errors.New("gif: truncated header")
	}
	canvas := image.Pt(int(binary.LittleEndian.Uint16(data[6:])), int(binary.LittleEndian.Uint16(data[8:])))
	at := 13
	if data[10]&0x80 != 0 {
		at += 3 << (data[10]&7 + 1)
	}
	frames := 0
	skipBlocks := func() bool { // data sub-blocks up to the zero-length one
		for at < len(data) {
			n := int(data[at])
			at += 1 + n
			if n == 0 {
				return true
			}
		}
		return false
	}
	for at < len(data) {
		switch data[at] {
		case 0x3B: // trailer
			return frames, canvas, nil
		case 0x21: // extension: label, then sub-blocks
			at += 2
			if !skipBlocks() {
				return frames, canvas, nil
			}
		case 0x2C: // image descriptor, local colour table, LZW minimum code size, sub-blocks
			if at+10 > len(data) {
				return frames, canvas, nil
			}
			frames++
			flags := data[at+9]
			at += 10
			if flags&0x80 != 0 {
				at += 3 << (flags&7 + 1)
			}
			at++
			if !skipBlocks() {
				return frames, canvas, nil
			}
		default:
			return frames, canvas, nil // what follows is not GIF: the decoder judges it
		}
	}
	return frames, canvas, nil
}

// CheckAnimation refuses an animation whose frames, composed at canvas size, would exceed the
// limits: more than lim.MaxAnimationFrames frames, or frames × canvas pixels over
// lim.MaxPixels (each composed frame is held whole).
func CheckAnimation(frames int, canvas image.Point, lim Limits) error {
	px := int64(frames) * int64(canvas.X) * int64(canvas.Y)
	switch {
	case lim.MaxAnimationFrames > 0 && int64(frames) > lim.MaxAnimationFrames:
		return failure.Permanent(failure.TooManyPixels, "the animation has %d frames; the limit is %d", frames, lim.MaxAnimationFrames)
	case px > lim.MaxPixels:
		return failure.Permanent(failure.TooManyPixels,
			"the animation's %d frames of %d×%d make %d pixels; the limit is %d", frames, canvas.X, canvas.Y, px, lim.MaxPixels)
	}
	return nil
}

// DecodeAnimation decodes every frame of an animated GIF or WebP that CheckAnimation accepted,
// composed as a viewer shows them.
func DecodeAnimation(f Format, data []byte) (Animation, error) {
	var a Animation
	var err error
	switch f {
	case GIF:
		a, err = decodeGIFAnimation(data)
	case WebP:
		a, err = decodeWebPAnimation(data)
	default:
		err = fmt.Errorf("%s is not an animation format", f)
	}
	if err != nil {
		return Animation{}, failure.PermanentWrap(failure.Corrupt, err, "the animation cannot be decoded")
	}
	return a, nil
}

func decodeGIFAnimation(data []byte) (Animation, error) {
	g, err := gif.DecodeAll(bytes.NewReader(data))
	if err != nil {
		return Animation{}, err
	}
	canvas := image.NewNRGBA(image.Rect(0, 0, g.Config.Width, g.Config.Height))
	a := Animation{Loop: g.LoopCount}
	for i, frame := range g.Image {
		var previous *image.NRGBA
		disposal := byte(0)
		if i < len(g.Disposal) {
			disposal = g.Disposal[i]
		}
		if disposal == gif.DisposalPrevious {
			previous = cloneNRGBA(canvas)
		}
		draw.Draw(canvas, frame.Bounds(), frame, frame.Bounds().Min, draw.Over)
		a.Frames = append(a.Frames, cloneNRGBA(canvas))
		a.Delays = append(a.Delays, g.Delay[i])
		switch disposal {
		case gif.DisposalBackground:
			draw.Draw(canvas, frame.Bounds(), image.Transparent, image.Point{}, draw.Src)
		case gif.DisposalPrevious:
			canvas = previous
		}
	}
	return a, nil
}

// decodeWebPAnimation composes an animated WebP's ANMF frames: each blended over the canvas
// with its alpha (or not, as its blending bit says), then disposed of (its rectangle cleared)
// if its disposal bit says so. WebP durations are milliseconds.
func decodeWebPAnimation(data []byte) (Animation, error) {
	vp8x := riffChunk(data, "VP8X")
	if len(vp8x) < 10 {
		return Animation{}, errors.New("webp: not an animation")
	}
	canvas := image.NewNRGBA(image.Rect(0, 0, u24(vp8x[4:])+1, u24(vp8x[7:])+1))
	var a Animation
	if anim := riffChunk(data, "ANIM"); len(anim) >= 6 {
		// WebP counts plays (0: forever); GIF counts repeats after the first (-1: none).
		if n := int(binary.LittleEndian.Uint16(anim[4:])); n > 0 {
			a.Loop = n - 1
			if n == 1 {
				a.Loop = -1
			}
		}
	}
	var err error
	riffChunks(data[12:], func(t string, anmf []byte) bool {
		if t != "ANMF" {
			return true
		}
		var fr webpFrame
		if fr, err = frameFile(anmf); err != nil {
			return false
		}
		var img image.Image
		if img, err = xwebp.Decode(bytes.NewReader(fr.file)); err != nil {
			return false
		}
		fullRange(img)
		op := draw.Over
		if anmf[15]&0x02 != 0 { // do not blend
			op = draw.Src
		}
		r := img.Bounds().Sub(img.Bounds().Min).Add(fr.at)
		draw.Draw(canvas, r, img, img.Bounds().Min, op)
		a.Frames = append(a.Frames, cloneNRGBA(canvas))
		a.Delays = append(a.Delays, (u24(anmf[12:])+5)/10)
		if anmf[15]&0x01 != 0 { // dispose to the background
			draw.Draw(canvas, r, image.Transparent, image.Point{}, draw.Src)
		}
		return true
	})
	if err != nil {
		return Animation{}, err
	}
	if len(a.Frames) == 0 {
		return Animation{}, errors.New("webp: an animation without frames")
	}
	return a, nil
}

func cloneNRGBA(m *image.NRGBA) *image.NRGBA {
	c := *m
	c.Pix = append([]byte(nil), m.Pix...)
	return &c
}
