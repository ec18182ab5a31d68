/*
 * vipsjob: the libvips side of `make bench`. It runs the same job as sluice's image path on one
 * photo, in-process, decode once + cascade: decode at full size into memory; large = fit
 * 2048x2048, medium = fit 1024x1024 from large, thumb = fill 256x256 (centre crop) from medium;
 * the watermark (20% of the width, 60% opacity, bottom right, 2% margin) on large and medium;
 * each encoded as JPEG quality 82. It prints the mean time per job and the process's peak RSS.
 *
 *   vipsjob PHOTO WATERMARK_PNG ITERATIONS
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <sys/resource.h>
#include <vips/vips.h>

static double now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static void fail(const char *what) {
	fprintf(stderr, "vipsjob: %s: %s\n", what, vips_error_buffer());
	exit(1);
}

/* fit scales in down (never up) to fit w x h. */
static VipsImage *fit(VipsImage *in, int w, int h) {
	double s = MIN((double)w / in->Xsize, (double)h / in->Ysize);
	VipsImage *out;
	if (s >= 1) {
		g_object_ref(in);
		return in;
	}
	if (vips_resize(in, &out, s, "kernel", VIPS_KERNEL_LANCZOS3, NULL)) fail("resize");
	return out;
}

/* fill scales in to cover w x h and crops the centre. */
static VipsImage *fill(VipsImage *in, int w, int h) {
	double s = MAX((double)w / in->Xsize, (double)h / in->Ysize);
	VipsImage *r, *out;
	if (vips_resize(in, &r, s, "kernel", VIPS_KERNEL_LANCZOS3, NULL)) fail("resize");
	if (vips_extract_area(r, &out, (r->Xsize - w) / 2, (r->Ysize - h) / 2, MIN(w, r->Xsize), MIN(h, r->Ysize), NULL)) fail("crop");
	g_object_unref(r);
	return out;
}

/* mark composites the watermark over in. */
static VipsImage *mark(VipsImage *in, VipsImage *wm) {
	double s = 0.2 * in->Xsize / wm->Xsize;
	VipsImage *scaled, *faded, *out;
	if (vips_resize(wm, &scaled, s, NULL)) fail("resize watermark");
	double mul[4] = {1, 1, 1, 0.6}, add[4] = {0, 0, 0, 0};
	if (vips_linear(scaled, &faded, mul, add, 4, "uchar", TRUE, NULL)) fail("fade watermark");
	int margin = (int)(0.02 * in->Xsize);
	if (vips_composite2(in, faded, &out, VIPS_BLEND_MODE_OVER,
	                    "x", in->Xsize - faded->Xsize - margin, "y", in->Ysize - faded->Ysize - margin, NULL)) fail("composite");
	g_object_unref(scaled);
	g_object_unref(faded);
	return out;
}

static size_t save(VipsImage *img) {
	void *buf;
	size_t len;
	VipsImage *flat = img;
	if (img->Bands == 4 && vips_flatten(img, &flat, NULL)) fail("flatten");
	if (vips_jpegsave_buffer(flat, &buf, &len, "Q", 82, NULL)) fail("jpegsave");
	if (flat != img) g_object_unref(flat);
	g_free(buf);
	return len;
}

int main(int argc, char **argv) {
	if (argc != 4) {
		fprintf(stderr, "usage: vipsjob PHOTO WATERMARK_PNG ITERATIONS\n");
		return 2;
	}
	if (VIPS_INIT(argv[0])) fail("init");
	vips_cache_set_max(0); /* every iteration does the whole job */
	int n = atoi(argv[3]);
	VipsImage *wm = vips_image_new_from_file(argv[2], NULL);
	if (!wm) fail("watermark");
	double total = 0;
	size_t bytes = 0;
	for (int i = 0; i < n; i++) {
		double t = now();
		VipsImage *file = vips_image_new_from_file(argv[1], "access", VIPS_ACCESS_RANDOM, "autorotate", TRUE, NULL);
		if (!file) fail("load");
		VipsImage *src = vips_image_copy_memory(file); /* decode once */
		if (!src) fail("decode");
		VipsImage *large = fit(src, 2048, 2048);
		VipsImage *medium = fit(large, 1024, 1024);
		VipsImage *thumb = fill(medium, 256, 256);
		VipsImage *ml = mark(large, wm), *mm = mark(medium, wm);
		bytes += save(ml) + save(mm) + save(thumb);
		g_object_unref(ml);
		g_object_unref(mm);
		g_object_unref(thumb);
		g_object_unref(medium);
		g_object_unref(large);
		g_object_unref(src);
		g_object_unref(file);
		total += now() - t;
	}
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	printf("libvips %s: %.0f ms/job over %d jobs, peak RSS %ld MB, %zu bytes out/job\n",
	       vips_version_string(), total / n * 1000, n, ru.ru_maxrss / 1024, bytes / (size_t)n);
	vips_shutdown();
	return 0;
}
