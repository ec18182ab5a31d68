package processor

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadConfigDefaults(t *testing.T) {
	c, err := LoadConfig(env(map[string]string{"STATE_TABLE": "t", "OUTPUT_BUCKET": "o", "QUARANTINE_BUCKET": "q"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.OutputPrefix != "renditions/" || c.TempPrefix != "tmp/" || c.QuarantinePrefix != "quarantine/" ||
		c.Limits.MaxBytes != DefaultMaxBytes || c.Limits.MaxPixels != DefaultMaxPixels || c.MaxAttempts != 5 || len(c.Recipe.Renditions) != 3 || !c.RemoveOutputs {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestLoadConfigReportsEveryProblem(t *testing.T) {
	_, err := LoadConfig(env(map[string]string{
		"MAX_BYTES": "lots", "MAX_PIXELS": "-1", "MAX_ATTEMPTS": "0", "OUTPUT_PREFIX": "out", "TEMP_PREFIX": "/tmp/",
		"RECIPE_JSON": `{"renditions":[{"name":"x","width":0,"height":1}]}`, "STATE_TTL_DAYS": "x",
		"REMOVE_OUTPUTS": "sometimes",
	}))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, v := range []string{"STATE_TABLE", "OUTPUT_BUCKET", "QUARANTINE_BUCKET", "MAX_BYTES", "MAX_PIXELS", "MAX_ATTEMPTS",
		"OUTPUT_PREFIX", "TEMP_PREFIX", "STATE_TTL_DAYS", "REMOVE_OUTPUTS", "RECIPE_JSON: renditions[0].width"} {
		if !strings.Contains(err.Error(), v) {
			t.Errorf("error does not name %s:\n%v", v, err)
		}
	}
}

func TestKeyScheme(t *testing.T) {
	k := Keys{cfg: Config{OutputBucket: "out", OutputPrefix: "renditions/", TempPrefix: "tmp/", QuarantineBucket: "q", QuarantinePrefix: "quarantine/"}}
	const src = "uploads/a b/ü+.jpg"
	const gen = "0123456789abcdef01234567"
	if got := k.Final(src, gen, "large", "jpg"); got != "renditions/uploads/a b/ü+.jpg/"+gen+"/large.jpg" {
		t.Errorf("Final = %q", got)
	}
	if got := k.Manifest(src); got != "renditions/uploads/a b/ü+.jpg/manifest.json" {
		t.Errorf("Manifest = %q", got)
	}
	if got := k.Temp(gen, src, "thumb", "png"); got != "tmp/"+gen+"/uploads/a b/ü+.jpg/thumb.png" {
		t.Errorf("Temp = %q", got)
	}
	if o, r := k.Quarantine(src, gen); o != "quarantine/uploads/a b/ü+.jpg/"+gen+"/source" || r != "quarantine/uploads/a b/ü+.jpg/"+gen+"/report.json" {
		t.Errorf("Quarantine = %q, %q", o, r)
	}
	for _, q := range []string{"quarantine/uploads/a b/ü+.jpg/" + gen + "/source", "quarantine/uploads/a b/ü+.jpg/" + gen + "/report.json"} {
		if seg, g, ok := k.ParseQuarantine(q); !ok || seg != src || g != gen {
			t.Errorf("ParseQuarantine(%q) = %q, %q, %v", q, seg, g, ok)
		}
	}
	if _, _, ok := k.ParseQuarantine("quarantine/x.error.json"); ok {
		t.Errorf("ParseQuarantine of a key sluice does not write: ok")
	}
	if got, ok := k.ParseOutput(k.Final(src, gen, "large", "jpg")); !ok || got != (OutputKey{Seg: src, Gen: gen, File: "large.jpg"}) {
		t.Errorf("ParseOutput(final) = %+v, %v", got, ok)
	}
	if got, ok := k.ParseOutput(k.Manifest(src)); !ok || got != (OutputKey{Seg: src, Manifest: true}) {
		t.Errorf("ParseOutput(manifest) = %+v, %v", got, ok)
	}
	for _, bad := range []string{"renditions/x/large.jpg", "renditions/manifest.json", "uploads/x", "renditions/x/NOTAGENERATION0123456789/a.jpg"} {
		if got, ok := k.ParseOutput(bad); ok {
			t.Errorf("ParseOutput(%q) = %+v, want not ours", bad, got)
		}
	}
	for _, c := range []struct {
		bucket, key string
		ours        bool
	}{
		{"out", "renditions/x/large.jpg", true},
		{"out", "tmp/req/x", true},
		{"q", "quarantine/x", true},
		{"out", "uploads/x.jpg", false},
		{"staging", "renditions/x", false},
		{"q", "uploads/x", false},
	} {
		if got := k.Ours(c.bucket, c.key); got != c.ours {
			t.Errorf("Ours(%s, %s) = %v, want %v", c.bucket, c.key, got, c.ours)
		}
	}
}

func TestBackoffIsCappedExponentialWithFullJitter(t *testing.T) {
	const base, ceiling = 500 * time.Millisecond, 10 * time.Second
	top := func(n time.Duration) time.Duration { return n - 1 } // the largest value jitter may pick
	for try, want := range map[int]time.Duration{1: base, 2: 2 * base, 3: 4 * base, 5: 16 * base, 6: ceiling, 40: ceiling, 70: ceiling} {
		if got := backoff(try, base, ceiling, top); got != want-1 {
			t.Errorf("try %d: longest wait %v, want just under %v", try, got, want)
		}
	}
	if got := backoff(3, base, ceiling, func(time.Duration) time.Duration { return 0 }); got != 0 {
		t.Errorf("full jitter reaches zero; got %v", got)
	}
}

// hostileKeys are source keys a stranger can produce (S3 accepts any UTF-8 up to 1024 bytes;
// events can carry anything).
var hostileKeys = []string{
	"uploads/../../etc/passwd", "uploads/./a.jpg", "uploads//a.jpg", "/uploads/a.jpg", "uploads/a.jpg/",
	"..", ".", "", "_/deadbeef", "uploads/a\x00b.jpg", "uploads/a\nb.jpg", "uploads/a\rb.jpg", "uploads/\x7f.jpg",
	"uploads/\u0085next-line.jpg", "uploads/\xff\xfe.jpg", "uploads/caf\u00e9.jpg", "uploads/cafe\u0301.jpg",
	"uploads/a\\..\\b.jpg", "uploads/" + strings.Repeat("a/", 400) + "x.jpg", "uploads/" + strings.Repeat("é", 500),
	"uploads/plain photo.jpg",
}

// checkDerived asserts what every key derived from a source key must satisfy.
func checkDerived(t *testing.T, k Keys, src string) {
	t.Helper()
	object, report := k.Quarantine(src, strings.Repeat("f", genBytes))
	for _, d := range []struct{ prefix, key string }{
		{k.cfg.OutputPrefix, k.Final(src, strings.Repeat("f", genBytes), strings.Repeat("n", 32), "webp")},
		{k.cfg.OutputPrefix, k.Manifest(src)},
		{k.cfg.TempPrefix, k.Temp(strings.Repeat("f", genBytes), src, strings.Repeat("n", 32), "webp")},
		{k.cfg.QuarantinePrefix, object},
		{k.cfg.QuarantinePrefix, report},
	} {
		rest, ok := strings.CutPrefix(d.key, d.prefix)
		if !ok || len(d.key) > maxKeyBytes || !cleanKey(rest) {
			t.Errorf("source %q: derived key %q (%d bytes) leaves %q, is too long or not clean", src, d.key, len(d.key), d.prefix)
		}
	}
}

func TestHostileKeysStayUnderTheirPrefix(t *testing.T) {
	k := Keys{cfg: Config{OutputPrefix: "renditions/", TempPrefix: "tmp/", QuarantinePrefix: "quarantine/"}}
	owner := map[string]string{}
	gen := strings.Repeat("a", genBytes)
	// Keys that name another key's derived keys: "x.error.json" was the quarantine report of "x".
	sources := append(slices.Clone(hostileKeys), "uploads/x", "uploads/x.error.json", "uploads/x/source", "uploads/x/report.json",
		"uploads/x/manifest.json", "uploads/x/"+gen, "uploads/x/"+gen+"/large.jpg")
	for _, src := range sources {
		checkDerived(t, k, src)
		object, report := k.Quarantine(src, gen)
		for _, d := range []string{k.Final(src, gen, "large", "jpg"), k.Manifest(src), k.Temp(gen, src, "large", "jpg"), object, report} {
			if other, dup := owner[d]; dup && other != src {
				t.Errorf("sources %q and %q share the derived key %q", other, src, d)
			}
			owner[d] = src
		}
		if got, ok := k.ParseOutput(k.Final(src, gen, "large", "jpg")); !ok || got.Seg != k.Segment(src) || got.Gen != gen {
			t.Errorf("ParseOutput(Final(%q)) = %+v, %v", src, got, ok)
		}
	}
	if got := k.Segment("uploads/plain photo.jpg"); got != "uploads/plain photo.jpg" {
		t.Errorf("a plain key is used as it is; got %q", got)
	}
	if got := k.Segment("uploads/caf\u00e9.jpg"); got != "uploads/caf\u00e9.jpg" {
		t.Errorf("a non-ASCII key is plain; got %q", got)
	}
	if got := k.Segment("uploads/../x"); !strings.HasPrefix(got, "_/") || len(got) != 66 {
		t.Errorf("a key with .. is hashed; got %q", got)
	}
}

func FuzzKeysStayUnderTheirPrefix(f *testing.F) {
	for _, k := range hostileKeys {
		f.Add(k)
	}
	k := Keys{cfg: Config{OutputPrefix: "renditions/", TempPrefix: "tmp/", QuarantinePrefix: "quarantine/"}}
	f.Fuzz(func(t *testing.T, src string) {
		checkDerived(t, k, src)
		if seg := k.Segment(src); seg != src && (!strings.HasPrefix(seg, "_/") || len(seg) != 66) {
			t.Errorf("source %q became %q, want _/ and a SHA-256", src, seg)
		}
		gen := strings.Repeat("0", genBytes)
		if got, ok := k.ParseOutput(k.Final(src, gen, "large", "jpg")); !ok || got.Seg != k.Segment(src) || got.Gen != gen || got.File != "large.jpg" {
			t.Errorf("ParseOutput(Final(%q)) = %+v, %v", src, got, ok)
		}
		if got, ok := k.ParseOutput(k.Manifest(src)); !ok || !got.Manifest || got.Seg != k.Segment(src) {
			t.Errorf("ParseOutput(Manifest(%q)) = %+v, %v", src, got, ok)
		}
	})
}
