package processor_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/pkg/processor"
	"github.com/sluice-dev/sluice/pkg/state"
)

// Keys a stranger can upload (those MinIO accepts: S3 accepts more, see TestHostileKeysStayUnderTheirPrefix)
// are processed end to end; every output stays under its prefix, distinct keys (NFC and NFD
// spellings of one name too) get distinct outputs, and the manifest names the source as it is.
func TestHostileKeysEndToEnd(t *testing.T) {
	r := newRig(t, nil)
	long := "uploads/" + strings.Repeat(strings.Repeat("x", 240)+"/", 4) + "photo.jpg" // ~980 bytes
	good := []string{
		"uploads/caf\u00e9.jpg", "uploads/cafe\u0301.jpg", // NFC, NFD
		"uploads/a\x01b.jpg", "uploads/new\nline.jpg", "/uploads/leading-slash.jpg", "uploads/trailing-slash.jpg/",
		long,
	}
	img := grayJPEG(t, 300, 200)
	manifests := map[string]string{}
	for _, key := range good {
		r.upload(t, key, img, nil)
		res := r.proc.Process(context.Background(), "req-hostile", r.event(key))
		if res.Outcome != processor.Succeeded {
			t.Errorf("%q: outcome %s err %v (%s)", key, res.Outcome, res.Err, res.Detail)
			continue
		}
		rec := r.record(t, key)
		var m processor.Manifest
		if err := json.Unmarshal(r.get(t, r.output, rec.ManifestKey), &m); err != nil || m.Source.Key != key {
			t.Errorf("%q: manifest %s names %q (%v)", key, rec.ManifestKey, m.Source.Key, err)
		}
		if other, dup := manifests[rec.ManifestKey]; dup {
			t.Errorf("%q and %q share %s", other, key, rec.ManifestKey)
		}
		manifests[rec.ManifestKey] = key
	}
	const bad = "uploads/\x02bad\nfile.jpg"
	r.upload(t, bad, []byte("not an image"), nil)
	if res := r.proc.Process(context.Background(), "req-hostile", r.event(bad)); res.Outcome != processor.Quarantined {
		t.Errorf("bad file with a hostile key: %s %v", res.Outcome, res.Err)
	}
	for _, k := range r.list(t, r.output) {
		if !strings.HasPrefix(k, "renditions/") || strings.ContainsAny(k, "\x00\x01\x02\n") || strings.Contains(k, "//") {
			t.Errorf("output key %q", k)
		}
	}
	for _, k := range r.list(t, r.quar) {
		if !strings.HasPrefix(k, "quarantine/_/") {
			t.Errorf("quarantine key %q, want the hashed form of the hostile key", k)
		}
	}
	if got := len(r.list(t, r.output)); got != 4*len(good) {
		t.Errorf("%d output keys, want 4 for each of %d sources", got, len(good))
	}
}

// A file over MAX_BYTES is quarantined from its HEAD alone: it is never downloaded.
func TestOversizedFileIsRejectedWithoutDownloading(t *testing.T) {
	r := newRig(t, func(c *processor.Config) { c.Limits.MaxBytes = 100_000 })
	const key = "uploads/huge.jpg"
	r.upload(t, key, append(grayJPEG(t, 64, 64), make([]byte, 200_000)...), nil)
	inj := r.withFaults(t)
	res := r.proc.Process(context.Background(), "req-huge", r.event(key))
	if res.Outcome != processor.Quarantined || res.Reason != "too_large" {
		t.Fatalf("outcome %s reason %s err %v", res.Outcome, res.Reason, res.Err)
	}
	if n := inj.Calls("S3", "GetObject"); n != 0 {
		t.Errorf("%d GetObject requests, want none", n)
	}
	if rec := r.record(t, key); rec.Status != state.Quarantined {
		t.Errorf("state %s", rec.Status)
	}
}
