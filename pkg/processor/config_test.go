package processor

import (
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
	if got := k.Final(src, "large", "jpg"); got != "renditions/uploads/a b/ü+.jpg/large.jpg" {
		t.Errorf("Final = %q", got)
	}
	if got := k.Manifest(src); got != "renditions/uploads/a b/ü+.jpg/manifest.json" {
		t.Errorf("Manifest = %q", got)
	}
	if got := k.Temp("req-1", src, "thumb", "png"); got != "tmp/req-1/uploads/a b/ü+.jpg/thumb.png" {
		t.Errorf("Temp = %q", got)
	}
	if o, r := k.Quarantine(src); o != "quarantine/uploads/a b/ü+.jpg" || r != o+".error.json" {
		t.Errorf("Quarantine = %q, %q", o, r)
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
