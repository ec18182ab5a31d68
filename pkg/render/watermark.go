package render

import (
	"bytes"
	_ "embed"
	"fmt"
	"image"
	"image/png"
)

// DefaultWatermark is the project's own watermark: a PNG drawn by drawDefaultWatermark (see
// watermark_test.go, which regenerates it with -update and checks it is unchanged).
//
//go:embed watermark.png
var DefaultWatermark []byte

// DecodeWatermark reads a watermark PNG.
func DecodeWatermark(b []byte) (image.Image, error) {
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("decode watermark PNG: %w", err)
	}
	return img, nil
}
