package render

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/disintegration/imaging"
	xwebp "golang.org/x/image/webp"

	"github.com/sluice-dev/sluice/pkg/icc/icctest"
	"github.com/sluice-dev/sluice/pkg/media"
	"github.com/sluice-dev/sluice/pkg/recipe"
	"github.com/sluice-dev/sluice/pkg/workgroup"
)

func TestTargetNeverUpscales(t *testing.T) {
	cases := []struct {
		rd         recipe.Rendition
		srcW, srcH int
		w, h       int
	}{
		{recipe.Rendition{Mode: recipe.Fit, Width: 2048, Height: 2048}, 4000, 3000, 2048, 1536},
		{recipe.Rendition{Mode: recipe.Fit, Width: 2048, Height: 2048}, 3000, 4000, 1536, 2048},
		{recipe.Rendition{Mode: recipe.Fit, Width: 2048, Height: 2048}, 800, 600, 800, 600},
		{recipe.Rendition{Mode: recipe.Fill, Width: 256, Height: 256}, 4000, 3000, 256, 256},
		{recipe.Rendition{Mode: recipe.Fill, Width: 256, Height: 256}, 200, 100, 100, 100},
		{recipe.Rendition{Mode: recipe.Fill, Width: 400, Height: 200}, 300, 1000, 300, 150},
	}
	for _, c := range cases {
		if w, h := target(c.rd, c.srcW, c.srcH); w != c.w || h != c.h {
			t.Errorf("%s %dx%d of %dx%d = %dx%d, want %dx%d", c.rd.Mode, c.rd.Width, c.rd.Height, c.srcW, c.srcH, w, h, c.w, c.h)
		}
	}
}

func TestRenderStopsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := New(recipe.Default(), nil).Render(ctx, image.NewNRGBA(image.Rect(0, 0, 100, 100)), image.Pt(100, 100))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func readPhoto(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// naiveDecode is the baseline's decode: the standard decoder at full size.
func naiveDecode(data []byte) (image.Image, error) {
	return imaging.Decode(bytes.NewReader(data), imaging.AutoOrientation(true))
}

// ours is the pipeline as the processor runs it: a decode reduced to what the recipe needs,
// then the cascade.
func ours(ctx context.Context, r *Renderer, data []byte) ([]image.Image, error) {
	d, err := media.Decode(data, r.Need)
	if err != nil {
		return nil, err
	}
	out := make([]image.Image, len(r.recipe.Renditions))
	err = r.images(ctx, d.Image, image.Pt(d.Width, d.Height), func(i int, img image.Image) { out[i] = img })
	return out, err
}

// naive is the baseline: every rendition resized from the full original with Lanczos.
func naive(r *Renderer, src image.Image) []image.Image {
	b := src.Bounds()
	out := make([]image.Image, len(r.recipe.Renditions))
	for i, rd := range r.recipe.Renditions {
		w, h := target(rd, b.Dx(), b.Dy())
		var img *image.NRGBA
		if rd.Mode == recipe.Fill {
			img = imaging.Fill(src, w, h, imaging.Center, imaging.Lanczos)
		} else {
			img = imaging.Resize(src, w, h, imaging.Lanczos)
		}
		out[i] = img
		if rd.Watermark && w >= r.recipe.Watermark.MinWidth {
			out[i] = r.applyWatermark(img)
		}
	}
	return out
}

func psnr(a, b image.Image) float64 {
	ab, bb := a.Bounds(), b.Bounds()
	if ab.Size() != bb.Size() {
		return 0
	}
	var sum float64
	for y := 0; y < ab.Dy(); y++ {
		for x := 0; x < ab.Dx(); x++ {
			r1, g1, b1, _ := a.At(ab.Min.X+x, ab.Min.Y+y).RGBA()
			r2, g2, b2, _ := b.At(bb.Min.X+x, bb.Min.Y+y).RGBA()
			for _, d := range []float64{float64(r1>>8) - float64(r2>>8), float64(g1>>8) - float64(g2>>8), float64(b1>>8) - float64(b2>>8)} {
				sum += d * d
			}
		}
	}
	mse := sum / float64(3*ab.Dx()*ab.Dy())
	if mse == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(255*255/mse)
}

func defaultRenderer(t testing.TB) *Renderer {
	wm, err := DecodeWatermark(DefaultWatermark)
	if err != nil {
		t.Fatal(err)
	}
	return New(recipe.Default(), wm)
}

// The reduced decode and the cascade may not cost visible quality: PSNR ≥ 40 dB against the
// naive result, for the default recipe (on a 2400-pixel photo: decoded at full size, as large
// is 2048; on make bench's photo: at 1/2) and for recipes whose largest rendition makes the
// decode take each reduction.
func TestCascadeMatchesNaiveQuality(t *testing.T) {
	path := os.Getenv("SLUICE_BENCH_PHOTO")
	if path == "" {
		path = filepath.Join("..", "..", "testdata", "images", "elephants.jpg")
	}
	data := readPhoto(t, path)
	src, err := naiveDecode(data)
	if err != nil {
		t.Fatal(err)
	}
	wm := defaultRenderer(t).watermark
	fit := func(w int) *Renderer {
		return New(recipe.Recipe{JPEGQuality: 82, Renditions: []recipe.Rendition{{Name: "medium", Mode: recipe.Fit, Width: w, Height: w}}}, wm)
	}
	b := src.Bounds()
	long := max(b.Dx(), b.Dy())
	cases := []struct {
		name   string
		r      *Renderer
		shrink int // 0: whatever the photo leads to
	}{
		{"default", defaultRenderer(t), 0},
		{"fit to 1/2.6", fit(long * 10 / 26), 2},
		{"fit to 1/13", fit(long / 13), 4},
		{"fit to 1/25", fit(long / 25), 8},
	}
	for _, c := range cases {
		shrink := media.Shrink(b.Dx(), b.Dy(), 1, c.r.Need)
		if c.shrink != 0 && shrink != c.shrink {
			t.Errorf("%s: decoded at 1/%d, want 1/%d", c.name, shrink, c.shrink)
		}
		got, err := ours(context.Background(), c.r, data)
		if err != nil {
			t.Fatal(err)
		}
		base := naive(c.r, src)
		for i, rd := range c.r.recipe.Renditions {
			p := psnr(as420(got[i]), as420(base[i]))
			t.Logf("%s, decoded at 1/%d: %s: PSNR %.1f dB against naive", c.name, shrink, rd.Name, p)
			if p < 40 {
				t.Errorf("%s, decoded at 1/%d: %s: PSNR %.1f dB against naive, want ≥ 40", c.name, shrink, rd.Name, p)
			}
		}
	}
}

// as420 is img as the JPEG encoder codes it: YCbCr with each chroma sample the mean of the
// 2×2 pixels it covers. Renditions are compared at this point, so that the chroma subsampling
// every JPEG rendition goes through is not counted as a difference; an image already 4:2:0
// is returned as it is.
func as420(img image.Image) image.Image {
	if m, ok := img.(*image.YCbCr); ok && m.SubsampleRatio == image.YCbCrSubsampleRatio420 {
		return m
	}
	b := img.Bounds()
	out := image.NewYCbCr(image.Rect(0, 0, b.Dx(), b.Dy()), image.YCbCrSubsampleRatio420)
	sumCb := make([]int, len(out.Cb))
	sumCr := make([]int, len(out.Cr))
	n := make([]int, len(out.Cb))
	for y := range b.Dy() {
		for x := range b.Dx() {
			r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			yy, cb, cr := color.RGBToYCbCr(uint8(r>>8), uint8(g>>8), uint8(bl>>8))
			out.Y[out.YOffset(x, y)] = yy
			c := out.COffset(x, y)
			sumCb[c] += int(cb)
			sumCr[c] += int(cr)
			n[c]++
		}
	}
	for c := range n {
		out.Cb[c] = uint8((sumCb[c] + n[c]/2) / n[c])
		out.Cr[c] = uint8((sumCr[c] + n[c]/2) / n[c])
	}
	return out
}

func encodeAll(r *Renderer, imgs []image.Image) error {
	for i, img := range imgs {
		q := r.recipe.JPEGQuality
		if _, err := encode(img, recipe.JPEG, q); err != nil {
			return fmt.Errorf("%s: %w", r.recipe.Renditions[i].Name, err)
		}
	}
	return nil
}

// job runs one whole job (decode + renditions + watermark + encode) the naive way or ours.
func job(r *Renderer, data []byte, cascade bool) error {
	if cascade {
		d, err := media.Decode(data, r.Need)
		if err != nil {
			return err
		}
		_, err = r.Render(context.Background(), d.Image, image.Pt(d.Width, d.Height))
		return err
	}
	src, err := naiveDecode(data)
	if err != nil {
		return err
	}
	return encodeAll(r, naive(r, src))
}

// benchJob times one job at a time: the latency of a job that has the machine to itself.
func benchJob(b *testing.B, data []byte, cascade bool) {
	r := defaultRenderer(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := job(r, data, cascade); err != nil {
			b.Fatal(err)
		}
	}
}

// benchWorkers runs one job per CPU at a time (as many workers as GOMAXPROCS): ns/op is the
// inverse of throughput, so work a job spreads over the CPUs buys nothing here.
func benchWorkers(b *testing.B, data []byte, cascade bool) {
	r := defaultRenderer(b)
	b.SetBytes(int64(len(data)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := job(r, data, cascade); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func benchPhoto(b *testing.B) []byte {
	path := os.Getenv("SLUICE_BENCH_PHOTO")
	if path == "" {
		b.Skip("set SLUICE_BENCH_PHOTO to a ≥ 12 MP photo (make bench does)")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	return data
}

func BenchmarkJobNaive(b *testing.B)       { benchJob(b, benchPhoto(b), false) }
func BenchmarkJobCascade(b *testing.B)     { benchJob(b, benchPhoto(b), true) }
func BenchmarkWorkersNaive(b *testing.B)   { benchWorkers(b, benchPhoto(b), false) }
func BenchmarkWorkersCascade(b *testing.B) { benchWorkers(b, benchPhoto(b), true) }

// TestBenchReport runs the job on each benchmark photo (SLUICE_BENCH_PHOTOS, a folder of JPEGs;
// else SLUICE_BENCH_PHOTO), the naive way and ours, in one process, plus the libvips harness when
// SLUICE_VIPSJOB names it, and prints per-photo times and the ratios over the whole set (make bench).
func TestBenchReport(t *testing.T) {
	photos := []string{os.Getenv("SLUICE_BENCH_PHOTO")}
	if dir := os.Getenv("SLUICE_BENCH_PHOTOS"); dir != "" {
		var err error
		if photos, err = filepath.Glob(filepath.Join(dir, "*.jpg")); err != nil || len(photos) == 0 {
			t.Fatalf("no JPEGs in %s: %v", dir, err)
		}
	}
	if photos[0] == "" {
		t.Skip("set SLUICE_BENCH_PHOTO to a ≥ 12 MP photo, or SLUICE_BENCH_PHOTOS to a folder (make bench does)")
	}
	vips := os.Getenv("SLUICE_VIPSJOB")
	fmt.Printf("one job at a time (latency), and one job per CPU (throughput: ms per job = 1 / jobs per ms), GOMAXPROCS=%d\n", runtime.GOMAXPROCS(0))
	fmt.Printf("%-28s %9s %6s %10s %10s %10s %8s %8s | %10s %10s %8s\n", "photo", "size", "MP", "naive ms", "ours ms", "vips ms", "naive/us", "us/vips", "naive ms/j", "ours ms/j", "naive/us")
	var sumNaive, sumOurs, sumVips, sumNaiveW, sumOursW float64
	var allocNaive, allocOurs int64
	for _, path := range photos {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		naiveRes := testing.Benchmark(func(b *testing.B) { benchJob(b, data, false) })
		oursRes := testing.Benchmark(func(b *testing.B) { benchJob(b, data, true) })
		naiveW := testing.Benchmark(func(b *testing.B) { benchWorkers(b, data, false) })
		oursW := testing.Benchmark(func(b *testing.B) { benchWorkers(b, data, true) })
		n, o := float64(naiveRes.NsPerOp())/1e6, float64(oursRes.NsPerOp())/1e6
		nw, ow := float64(naiveW.NsPerOp())/1e6, float64(oursW.NsPerOp())/1e6
		sumNaive, sumOurs, sumNaiveW, sumOursW = sumNaive+n, sumOurs+o, sumNaiveW+nw, sumOursW+ow
		allocNaive, allocOurs = allocNaive+naiveRes.AllocedBytesPerOp(), allocOurs+oursRes.AllocedBytesPerOp()
		v := math.NaN()
		if vips != "" {
			v = vipsJob(t, vips, path)
			sumVips += v
		}
		fmt.Printf("%-28s %4dx%-4d %6.1f %10.0f %10.0f %10.0f %7.2fx %7.2fx | %10.0f %10.0f %7.2fx\n", filepath.Base(path), cfg.Width, cfg.Height,
			float64(cfg.Width*cfg.Height)/1e6, n, o, v, n/o, o/v, nw, ow, nw/ow)
	}
	fmt.Printf("whole set: naive %.0f ms, ours %.0f ms (%.0f vs %.0f MB allocated)\n", sumNaive, sumOurs, float64(allocNaive)/1e6, float64(allocOurs)/1e6)
	fmt.Printf("throughput ratio ours/naive over the set, one job per CPU: %.2fx (target >= 2.5x)\n", sumNaiveW/sumOursW)
	fmt.Printf("latency ratio naive/ours over the set, one job at a time: %.2fx\n", sumNaive/sumOurs)
	if vips != "" {
		fmt.Printf("time ratio cascade/libvips over the set: %.2fx (target <= 1.6x)\n", sumOurs/sumVips)
	}
}

// vipsJob runs the libvips harness (infra/bench/vipsjob.c) on one photo: ms per job.
func vipsJob(t *testing.T, bin, photo string) float64 {
	out, err := exec.Command(bin, photo, "watermark.png", "3").CombinedOutput()
	if err != nil {
		t.Fatalf("vipsjob %s: %v\n%s", photo, err, out)
	}
	m := regexp.MustCompile(`: (\d+) ms/job`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("vipsjob said: %s", out)
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// TestPeakRSS runs one whole job (read the file, decode, render, encode), ours and the naive
// one, each in a fresh process, and prints each one's peak resident memory (make bench).
func TestPeakRSS(t *testing.T) {
	if os.Getenv("SLUICE_BENCH_PHOTO") == "" {
		t.Skip("set SLUICE_BENCH_PHOTO to a ≥ 12 MP photo (make bench does)")
	}
	// The worst case the default MAX_PIXELS admits: a 40 MP PNG, which no decoder can reduce.
	big := filepath.Join(t.TempDir(), "40mp.png")
	{
		img := image.NewNRGBA(image.Rect(0, 0, 7746, 5164))
		for i := range img.Pix {
			img.Pix[i] = uint8(i * 31 >> 5)
		}
		var buf bytes.Buffer
		if err := (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&buf, img); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(big, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	modes := []string{"cascade", "naive", "cascade-40mp-png"}
	heif := heifFiles()
	for _, f := range heif {
		modes = append(modes, "cascade-"+filepath.Ext(f)[1:])
	}
	for _, mode := range modes {
		cmd := exec.Command(os.Args[0], "-test.run=^TestPeakRSSChild$", "-test.v")
		photo, child := os.Getenv("SLUICE_BENCH_PHOTO"), mode
		switch mode {
		case "cascade-40mp-png":
			photo, child = big, "cascade"
		case "cascade-heic", "cascade-avif":
			photo, child = heif[slices.IndexFunc(heif, func(f string) bool { return strings.HasSuffix(f, mode[len("cascade-"):]) })], "cascade"
		}
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "SLUICE_BENCH_PHOTO=") && !strings.HasPrefix(kv, "SLUICE_RSS_CHILD=") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		cmd.Env = append(cmd.Env, "SLUICE_RSS_CHILD="+child, "SLUICE_BENCH_PHOTO="+photo)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s child: %v\n%s", mode, err, out)
		}
		m := regexp.MustCompile(`peak RSS (\d+) kB for (\d+) pixels`).FindSubmatch(out)
		if m == nil {
			t.Fatalf("%s child said:\n%s", mode, out)
		}
		kb, _ := strconv.Atoi(string(m[1]))
		px, _ := strconv.Atoi(string(m[2]))
		fmt.Printf("%-16s peak RSS %4d MB for one %.1f MP job, %.1f bytes/pixel (GOGC=%s, GOMEMLIMIT=%s)\n", mode, kb/1024,
			float64(px)/1e6, float64(kb)*1024/float64(px), envOr("GOGC", "100"), envOr("GOMEMLIMIT", "none"))
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// TestPeakRSSChild is TestPeakRSS's child process; it does nothing on its own.
func TestPeakRSSChild(t *testing.T) {
	mode := os.Getenv("SLUICE_RSS_CHILD")
	if mode == "" {
		t.Skip("run by TestPeakRSS")
	}
	data, err := os.ReadFile(os.Getenv("SLUICE_BENCH_PHOTO"))
	if err != nil {
		t.Fatal(err)
	}
	r := defaultRenderer(t)
	var pixels int
	if mode == "cascade" {
		d, err := media.Decode(data, r.Need)
		if err != nil {
			t.Fatal(err)
		}
		data = nil
		pixels = d.Width * d.Height
		if _, err := r.Render(context.Background(), d.Image, image.Pt(d.Width, d.Height)); err != nil {
			t.Fatal(err)
		}
	} else {
		src, err := naiveDecode(data)
		if err != nil {
			t.Fatal(err)
		}
		pixels = src.Bounds().Dx() * src.Bounds().Dy()
		if err := encodeAll(r, naive(r, src)); err != nil {
			t.Fatal(err)
		}
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`VmHWM:\s+(\d+) kB`).FindSubmatch(status)
	if m == nil {
		t.Fatal("no VmHWM in /proc/self/status")
	}
	fmt.Printf("peak RSS %s kB for %d pixels\n", m[1], pixels)
}

// heifFiles are the .heic and .avif files in SLUICE_BENCH_HEIF.
func heifFiles() []string {
	heic, _ := filepath.Glob(filepath.Join(os.Getenv("SLUICE_BENCH_HEIF"), "*.heic"))
	avif, _ := filepath.Glob(filepath.Join(os.Getenv("SLUICE_BENCH_HEIF"), "*.avif"))
	return append(heic, avif...)
}

// TestHEIFCost times whole jobs from HEIC and AVIF inputs (SLUICE_BENCH_HEIF: a folder of
// .heic and .avif files, each made from the .jpg of the same name in SLUICE_BENCH_PHOTOS) against
// the JPEG they were made from, and the first decode of a process, which compiles the module
// (make bench).
func TestHEIFCost(t *testing.T) {
	dir := os.Getenv("SLUICE_BENCH_HEIF")
	if dir == "" {
		t.Skip("set SLUICE_BENCH_HEIF (make bench does)")
	}
	for _, f := range heifFiles() {
		data := readPhoto(t, f)
		name := strings.TrimSuffix(filepath.Base(f), filepath.Ext(f))
		jpg := readPhoto(t, filepath.Join(os.Getenv("SLUICE_BENCH_PHOTOS"), name+".jpg"))
		start := time.Now()
		d, err := media.Decode(data, nil)
		if err != nil {
			t.Fatal(err)
		}
		first := time.Since(start)
		heifJob := testing.Benchmark(func(b *testing.B) { benchJob(b, data, true) })
		jpegJob := testing.Benchmark(func(b *testing.B) { benchJob(b, jpg, true) })
		fmt.Printf("%s input %dx%d: job %d ms (the JPEG it was made from: %d ms); first decode of a process %d ms (module compile)\n",
			strings.ToUpper(filepath.Ext(f)[1:]), d.Width, d.Height, heifJob.NsPerOp()/1e6, jpegJob.NsPerOp()/1e6, first.Milliseconds())
	}
}

// The fast path of the JPEG encoder gives the same bytes as the generic one, and it is taken only
// for opaque images (a translucent one keeps image/jpeg's own handling).
func TestOpaqueNRGBAEncodesLikeTheGenericPath(t *testing.T) {
	img := image.NewNRGBA(image.Rect(0, 0, 67, 41))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	for i := 3; i < len(img.Pix); i += 4 {
		img.Pix[i] = 255
	}
	fast, err := encode(img, recipe.JPEG, 82)
	if err != nil {
		t.Fatal(err)
	}
	var generic bytes.Buffer
	if err := jpeg.Encode(&generic, struct{ image.Image }{img}, &jpeg.Options{Quality: 82}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fast, generic.Bytes()) {
		t.Fatal("the fast path changed the encoded bytes")
	}
	img.Pix[3] = 10
	if _, ok := asRGBA(img).(*image.NRGBA); !ok {
		t.Fatal("a translucent image took the opaque fast path")
	}
}

// A WebP rendition comes out as a WebP file of the right size, named and typed as one.
func TestWebPRendition(t *testing.T) {
	rc := recipe.Default()
	rc.Renditions = []recipe.Rendition{{Name: "web", Mode: recipe.Fit, Width: 320, Height: 320, Format: recipe.WebP}}
	r := New(rc, nil)
	src := image.NewNRGBA(image.Rect(0, 0, 640, 400))
	for i := range src.Pix {
		src.Pix[i] = uint8(i % 253)
	}
	outs, err := r.Render(context.Background(), src, image.Pt(640, 400))
	if err != nil {
		t.Fatal(err)
	}
	o := outs[0]
	if o.Ext() != "webp" || o.ContentType() != "image/webp" || o.Width != 320 || o.Height != 200 {
		t.Fatalf("output %s %s %dx%d", o.Ext(), o.ContentType(), o.Width, o.Height)
	}
	img, err := xwebp.Decode(bytes.NewReader(o.Body))
	if err != nil {
		t.Fatalf("the body is not WebP: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 320 || b.Dy() != 200 {
		t.Fatalf("decoded %v", b)
	}
}

// TestWebPCost prints what WebP outputs cost next to JPEG on the large rendition of the
// benchmark photo (make bench): the first encode of a process compiles the WebAssembly module.
func TestWebPCost(t *testing.T) {
	if os.Getenv("SLUICE_BENCH_PHOTO") == "" {
		t.Skip("set SLUICE_BENCH_PHOTO (make bench does)")
	}
	data, err := os.ReadFile(os.Getenv("SLUICE_BENCH_PHOTO"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := naiveDecode(data)
	if err != nil {
		t.Fatal(err)
	}
	large := imaging.Resize(src, 2048, 0, imaging.Lanczos)
	timeIt := func(f recipe.Format) (time.Duration, int) {
		start := time.Now()
		body, err := encode(large, f, 82)
		if err != nil {
			t.Fatal(err)
		}
		return time.Since(start), len(body)
	}
	first, _ := timeIt(recipe.WebP)
	var webpT, jpegT time.Duration
	var webpN, jpegN int
	for range 3 {
		d, n := timeIt(recipe.WebP)
		webpT, webpN = webpT+d, n
		d, n = timeIt(recipe.JPEG)
		jpegT, jpegN = jpegT+d, n
	}
	fmt.Printf("encode %dx%d q82: JPEG %d ms, %d KB; WebP %d ms, %d KB; first WebP encode of a process %d ms (module compile)\n",
		large.Bounds().Dx(), large.Bounds().Dy(), jpegT.Milliseconds()/3, jpegN/1024, webpT.Milliseconds()/3, webpN/1024, first.Milliseconds())
}

// A panic in one of Render's worker goroutines (here a resize band indexing past a malformed
// plane) comes back as a panic in the caller's goroutine, where the processor's recover fails
// the attempt; it does not end the process (with sync.WaitGroup it did: every message of an SQS
// batch paid for it).
func TestAWorkerPanicReachesTheCaller(t *testing.T) {
	src := image.NewYCbCr(image.Rect(0, 0, 3000, 2000), image.YCbCrSubsampleRatio420)
	src.Y = src.Y[: len(src.Y)/3 : len(src.Y)/3] // rows past the first third are missing
	p := workgroup.Catch(func() {
		_, _ = New(recipe.Default(), nil).Render(context.Background(), src, image.Pt(3000, 2000))
	})
	if p == nil {
		t.Fatal("Render returned normally from a malformed source")
	}
	var worker *workgroup.Panic
	if err, ok := p.Value.(error); !ok || !errors.As(err, &worker) {
		t.Fatalf("raised %v, want a worker's panic raised again", p.Value)
	}
}

// TestColorCost prints what colour management costs on the benchmark photo (make bench): the
// whole job on the photo as it is (untagged: the sRGB path), with an sRGB profile embedded (the
// same path: found, recognised, skipped), and with a Display P3 profile embedded (converted).
func TestColorCost(t *testing.T) {
	if os.Getenv("SLUICE_BENCH_PHOTO") == "" {
		t.Skip("set SLUICE_BENCH_PHOTO (make bench does)")
	}
	data, err := os.ReadFile(os.Getenv("SLUICE_BENCH_PHOTO"))
	if err != nil {
		t.Fatal(err)
	}
	p3, err := os.ReadFile(filepath.Join("..", "icc", "testdata", "p3.icc"))
	if err != nil {
		t.Fatal(err)
	}
	base := float64(testing.Benchmark(func(b *testing.B) { benchJob(b, data, true) }).NsPerOp()) / 1e6
	for _, c := range []struct {
		name string
		prof []byte
	}{{"sRGB-tagged", icctest.SRGB()}, {"P3-tagged", p3}} {
		tagged := icctest.JPEG(data, c.prof, 1<<15, 0)
		ms := float64(testing.Benchmark(func(b *testing.B) { benchJob(b, tagged, true) }).NsPerOp()) / 1e6
		fmt.Printf("colour: untagged job %.0f ms, %s %.0f ms (%+.1f %%)\n", base, c.name, ms, 100*(ms/base-1))
	}
}
