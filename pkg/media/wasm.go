package media

import (
	_ "unsafe" // go:linkname

	_ "github.com/gen2brain/avif"
	_ "github.com/gen2brain/heic"
	_ "github.com/gen2brain/webp"
)

// gen2brain's HEIC, AVIF and WebP codecs load a system library (libheif, libavif, libwebp) when
// one is installed, unless the build has -tags nodynamic; Lambda has none, and the system's
// builds decode differently (libheif 1.15 fails on our samples). So that go build, go test and
// go run behave as Lambda does whatever the tags, these links turn each package's choice off
// after its init ran: every build decodes and encodes with the embedded WebAssembly modules.
// The packages expose no setting for it; a renamed variable fails the build, loudly.
//
//go:linkname heicDynamic github.com/gen2brain/heic.dynamic
var heicDynamic bool

//go:linkname avifDynamic github.com/gen2brain/avif.dynamic
var avifDynamic bool

//go:linkname webpDynamic github.com/gen2brain/webp.dynamic
var webpDynamic bool

func init() { heicDynamic, avifDynamic, webpDynamic = false, false, false }
