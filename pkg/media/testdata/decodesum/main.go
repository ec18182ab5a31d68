// Command decodesum decodes each file named on the command line as the processor does and
// prints the SHA-256 of its pixels (as NRGBA) and of its WebP encoding:
// TestCodecsAreLambdasWhateverTheBuildTags builds it with and without -tags nodynamic and
// compares.
package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"image"
	"image/draw"
	"os"

	"github.com/gen2brain/webp"

	"github.com/sluice-dev/sluice/pkg/media"
)

func main() {
	for _, path := range os.Args[1:] {
		data, err := os.ReadFile(path)
		if err != nil {
			fmt.Println(path, "error:", err)
			continue
		}
		img, err := media.Decode(data, func(w, h int) (int, int) { return w, h })
		if err != nil {
			fmt.Println(path, "error:", err)
			continue
		}
		b := img.Image.Bounds()
		rgba := image.NewNRGBA(b)
		draw.Draw(rgba, b, img.Image, b.Min, draw.Src)
		var enc bytes.Buffer
		if err := webp.Encode(&enc, rgba, webp.Options{Quality: 80}); err != nil {
			fmt.Println(path, "webp error:", err)
			continue
		}
		fmt.Printf("%s %dx%d pixels %x webp %x\n", path, b.Dx(), b.Dy(), sha256.Sum256(rgba.Pix), sha256.Sum256(enc.Bytes()))
	}
}
