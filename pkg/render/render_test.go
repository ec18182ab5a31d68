package render

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/disintegration/imaging"

	"github.com/sluice-dev/sluice/pkg/media"
	"github.com/sluice-dev/sluice/pkg/recipe"
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
func ours(ctx context.Context, r *Renderer, data []byte) ([]rendered, error) {
	d, err := media.Decode(data, r.Need)
	if err != nil {
		return nil, err
	}
	return r.images(ctx, d.Image, image.Pt(d.Width, d.Height))
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
			p := psnr(got[i].final, base[i])
			t.Logf("%s, decoded at 1/%d: %s: PSNR %.1f dB against naive", c.name, shrink, rd.Name, p)
			if rd.Name == "medium" && p < 40 {
				t.Errorf("%s, decoded at 1/%d: medium: PSNR %.1f dB against naive, want ≥ 40", c.name, shrink, p)
			}
		}
	}
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

// benchJob runs one whole job (decode + renditions + watermark + encode) the naive way or ours.
func benchJob(b *testing.B, data []byte, cascade bool) {
	r := defaultRenderer(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if cascade {
			d, err := media.Decode(data, r.Need)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := r.Render(context.Background(), d.Image, image.Pt(d.Width, d.Height)); err != nil {
				b.Fatal(err)
			}
			continue
		}
		src, err := naiveDecode(data)
		if err != nil {
			b.Fatal(err)
		}
		if err := encodeAll(r, naive(r, src)); err != nil {
			b.Fatal(err)
		}
	}
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

func BenchmarkJobNaive(b *testing.B)   { benchJob(b, benchPhoto(b), false) }
func BenchmarkJobCascade(b *testing.B) { benchJob(b, benchPhoto(b), true) }

// TestBenchReport runs both benchmarks in one process and prints the ratio (make bench).
func TestBenchReport(t *testing.T) {
	if os.Getenv("SLUICE_BENCH_PHOTO") == "" {
		t.Skip("set SLUICE_BENCH_PHOTO to a ≥ 12 MP photo (make bench does)")
	}
	naiveRes := testing.Benchmark(BenchmarkJobNaive)
	oursRes := testing.Benchmark(BenchmarkJobCascade)
	ratio := float64(naiveRes.NsPerOp()) / float64(oursRes.NsPerOp())
	fmt.Printf("naive   %8.0f ms/job  %7.1f MB allocated/job\n", float64(naiveRes.NsPerOp())/1e6, float64(naiveRes.AllocedBytesPerOp())/1e6)
	fmt.Printf("cascade %8.0f ms/job  %7.1f MB allocated/job\n", float64(oursRes.NsPerOp())/1e6, float64(oursRes.AllocedBytesPerOp())/1e6)
	fmt.Printf("throughput ratio cascade/naive: %.2fx (target >= 2.5x)\n", ratio)
	if vips := os.Getenv("SLUICE_VIPSJOB"); vips != "" {
		// The libvips harness (infra/bench/vipsjob.c): the same job, decode once + cascade, in C.
		out, err := exec.Command(vips, os.Getenv("SLUICE_BENCH_PHOTO"), filepath.Join("watermark.png"), "3").CombinedOutput()
		if err != nil {
			t.Fatalf("vipsjob: %v\n%s", err, out)
		}
		m := regexp.MustCompile(`: (\d+) ms/job`).FindSubmatch(out)
		if m == nil {
			t.Fatalf("vipsjob said: %s", out)
		}
		vipsMS, _ := strconv.ParseFloat(string(m[1]), 64)
		fmt.Print(string(out))
		fmt.Printf("time per job cascade/libvips: %.2fx (target <= 1.6x)\n", float64(oursRes.NsPerOp())/1e6/vipsMS)
	}
}

// TestPeakRSS runs one whole job (read the file, decode, render, encode), ours and the naive
// one, each in a fresh process, and prints each one's peak resident memory (make bench).
func TestPeakRSS(t *testing.T) {
	if os.Getenv("SLUICE_BENCH_PHOTO") == "" {
		t.Skip("set SLUICE_BENCH_PHOTO to a ≥ 12 MP photo (make bench does)")
	}
	for _, mode := range []string{"cascade", "naive"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestPeakRSSChild$", "-test.v")
		cmd.Env = append(os.Environ(), "SLUICE_RSS_CHILD="+mode)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s child: %v\n%s", mode, err, out)
		}
		m := regexp.MustCompile(`peak RSS (\d+) kB`).FindSubmatch(out)
		if m == nil {
			t.Fatalf("%s child said:\n%s", mode, out)
		}
		kb, _ := strconv.Atoi(string(m[1]))
		fmt.Printf("%-7s peak RSS %4d MB for one job (GOGC=%s, GOMEMLIMIT=%s)\n", mode, kb/1024, envOr("GOGC", "100"), envOr("GOMEMLIMIT", "none"))
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
	if mode == "cascade" {
		d, err := media.Decode(data, r.Need)
		if err != nil {
			t.Fatal(err)
		}
		data = nil
		if _, err := r.Render(context.Background(), d.Image, image.Pt(d.Width, d.Height)); err != nil {
			t.Fatal(err)
		}
	} else {
		src, err := naiveDecode(data)
		if err != nil {
			t.Fatal(err)
		}
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
	fmt.Printf("peak RSS %s kB\n", m[1])
}
