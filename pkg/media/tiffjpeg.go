package media

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"image/jpeg"

	"github.com/sluice-dev/sluice/pkg/exif"
)

// TIFF tags for JPEG-compressed images (TIFF 6.0 and its Technical Note 2).
const (
	tagWidth          = 256
	tagHeight         = 257
	tagCompression    = 259
	tagStripOffsets   = 273
	tagRowsPerStrip   = 278
	tagStripCounts    = 279
	tagPlanarConfig   = 284
	tagTileWidth      = 322
	tagTileLength     = 323
	tagTileOffsets    = 324
	tagTileCounts     = 325
	tagJPEGTables     = 347
	compressionJPEG   = 7
	maxTIFFJPEGChunks = 1 << 16
)

// isTIFFJPEG reports whether a TIFF's first image is JPEG-compressed (compression 7), which
// golang.org/x/image/tiff does not decode.
func isTIFFJPEG(data []byte) bool {
	c := exif.Uints(data, tagCompression)
	return len(c) == 1 && c[0] == compressionJPEG
}

// decodeTIFFJPEG decodes the first image of a TIFF whose strips or tiles are each a JPEG
// stream, with the shared tables of JPEGTables spliced in front of each: every piece is decoded
// by image/jpeg and drawn at its place (the last row and column of tiles cropped). The first
// page only: a multi-page TIFF's other pages are not read.
func decodeTIFFJPEG(data []byte) (image.Image, error) {
	w, h := first(exif.Uints(data, tagWidth)), first(exif.Uints(data, tagHeight))
	if w == 0 || h == 0 {
		return nil, errors.New("tiff: JPEG-compressed image without its size")
	}
	if pc := exif.Uints(data, tagPlanarConfig); len(pc) == 1 && pc[0] != 1 {
		return nil, errors.New("tiff: JPEG-compressed planes stored apart")
	}
	offsets, counts := exif.Uints(data, tagStripOffsets), exif.Uints(data, tagStripCounts)
	pw, ph := w, first(exif.Uints(data, tagRowsPerStrip))
	if ph == 0 || ph > h {
		ph = h
	}
	if tw, tl := first(exif.Uints(data, tagTileWidth)), first(exif.Uints(data, tagTileLength)); tw > 0 && tl > 0 {
		offsets, counts, pw, ph = exif.Uints(data, tagTileOffsets), exif.Uints(data, tagTileCounts), tw, tl
	}
	across, down := (w+pw-1)/pw, (h+ph-1)/ph
	if len(offsets) == 0 || len(offsets) != len(counts) || uint64(across)*uint64(down) != uint64(len(offsets)) || len(offsets) > maxTIFFJPEGChunks {
		return nil, fmt.Errorf("tiff: %d JPEG pieces (%d byte counts) for %d×%d pieces of %d×%d", len(offsets), len(counts), across, down, pw, ph)
	}
	tables := exif.Bytes(data, tagJPEGTables)
	if len(tables) >= 4 {
		tables = tables[:len(tables)-2] // its EOI; each piece's SOI goes too
	}
	out := image.NewNRGBA(image.Rect(0, 0, int(w), int(h)))
	for i, off := range offsets {
		end := uint64(off) + uint64(counts[i])
		if end > uint64(len(data)) || counts[i] < 2 {
			return nil, fmt.Errorf("tiff: JPEG piece %d outside the file", i)
		}
		piece := data[off:end]
		if len(tables) > 0 {
			piece = append(append([]byte(nil), tables...), piece[2:]...)
		}
		// A piece is at most a strip or tile: its own header may not claim more (a bomb).
		if cfg, err := jpeg.DecodeConfig(bytes.NewReader(piece)); err != nil || cfg.Width > int(pw) || cfg.Height > int(ph) {
			return nil, fmt.Errorf("tiff: JPEG piece %d says %d×%d for a piece of %d×%d (%v)", i, cfg.Width, cfg.Height, pw, ph, err)
		}
		img, err := jpeg.Decode(bytes.NewReader(piece))
		if err != nil {
			return nil, fmt.Errorf("tiff: JPEG piece %d: %w", i, err)
		}
		at := image.Pt(int(uint32(i)%across*pw), int(uint32(i)/across*ph))
		draw.Draw(out, img.Bounds().Sub(img.Bounds().Min).Add(at).Intersect(out.Rect), img, img.Bounds().Min, draw.Src)
	}
	return out, nil
}

func first(v []uint32) uint32 {
	if len(v) == 0 {
		return 0
	}
	return v[0]
}
