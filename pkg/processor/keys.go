package processor

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/sluice-dev/sluice/pkg/state"
)

// Keys is the key scheme. Renditions are immutable generations: each claim publishes under
// its own generation (its claim token), which only it ever writes, and the manifest at a stable
// key names the one generation that is published. Temp keys carry the generation too, so
// concurrent attempts never share one.
//
//	<output prefix><seg>/manifest.json            the only mutable object: swapped with If-Match
//	<output prefix><seg>/<gen>/<name>.<ext>        a published (or superseded) rendition
//	<temp prefix><gen>/<seg>/<name>.<ext>          before verification
//	<quarantine prefix><seg>/<gen>/source          a quarantined source, and its report beside it
//	<quarantine prefix><seg>/<gen>/report.json
//	<quarantine prefix><seg>/<gen>/rejected.jsonl  a records file's rejected rows (published or evidence)
type Keys struct{ cfg Config }

// S3's limit on a key, and the length of a generation (a claim token: 12 random bytes in hex).
const (
	maxKeyBytes = 1024
	genBytes    = 24
	// longest thing a derived key puts after the source segment: "/" + generation + "/" + a
	// 32-byte rendition name + ".webp"; "/manifest.json" and "/report.json" are shorter.
	maxSuffixBytes = 1 + genBytes + 1 + 32 + 5
)

// Segment is the form of a source key inside every key sluice derives from it. A key that is
// valid UTF-8 without control characters, whose "/"-separated segments are neither empty nor
// "." or "..", that does not start with "_/", and whose derived keys all fit S3's 1024 bytes,
// is used as it is: the outputs of "uploads/a.jpg" sit under "renditions/uploads/a.jpg/". Any
// other key becomes "_/" and the hex SHA-256 of its bytes. So distinct source keys never share
// an output, and no derived key leaves its prefix, whatever a consumer makes of "..", "//" or
// control characters; the manifest and the state record keep the source key as it is.
func (k Keys) Segment(sourceKey string) string {
	room := maxKeyBytes - maxSuffixBytes - max(len(k.cfg.OutputPrefix), len(k.cfg.TempPrefix)+genBytes+1, len(k.cfg.QuarantinePrefix))
	if len(sourceKey) <= room && plainKey(sourceKey) {
		return sourceKey
	}
	sum := sha256.Sum256([]byte(sourceKey))
	return "_/" + hex.EncodeToString(sum[:])
}

// plainKey reports whether key can stand in derived keys unchanged (see Keys.Segment).
func plainKey(key string) bool {
	return cleanKey(key) && !strings.HasPrefix(key, "_/")
}

// cleanKey: valid UTF-8, no control characters, no empty, "." or ".." segment.
func cleanKey(key string) bool {
	if key == "" || !utf8.ValidString(key) {
		return false
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return false
		}
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// Final is where generation gen publishes a rendition.
func (k Keys) Final(sourceKey, gen, name, ext string) string {
	return k.cfg.OutputPrefix + k.Segment(sourceKey) + "/" + gen + "/" + name + "." + ext
}

// Manifest is the commit marker of a source's renditions: it names the published generation.
func (k Keys) Manifest(sourceKey string) string {
	return k.cfg.OutputPrefix + k.Segment(sourceKey) + "/manifest.json"
}

// Temp is where generation gen writes a rendition before it is verified.
func (k Keys) Temp(gen, sourceKey, name, ext string) string {
	return k.TempDir(gen, sourceKey) + name + "." + ext
}

// TempDir is the prefix of every temp key generation gen writes for a source.
func (k Keys) TempDir(gen, sourceKey string) string {
	return k.cfg.TempPrefix + gen + "/" + k.Segment(sourceKey) + "/"
}

// Quarantine is where generation gen copies a rejected source, and where its report sits.
func (k Keys) Quarantine(sourceKey, gen string) (object, report string) {
	base := k.cfg.QuarantinePrefix + k.Segment(sourceKey) + "/" + gen + "/"
	return base + "source", base + "report.json"
}

// Rejected is where generation gen puts the list of a records file's rejected rows, beside
// where its quarantine entry goes: an output of the generation when it publishes the valid rows,
// evidence when the bad rows were too many.
func (k Keys) Rejected(sourceKey, gen string) string {
	return k.cfg.QuarantinePrefix + k.Segment(sourceKey) + "/" + gen + "/" + rejectedName + ".jsonl"
}

// IsRejected reports whether a quarantine key is a generation's list of rejected rows.
func (k Keys) IsRejected(key string) bool {
	_, _, ok := k.ParseQuarantine(key)
	return ok && strings.HasSuffix(key, "/"+rejectedName+".jsonl")
}

// generation is the generation an output belongs to ("" for a key sluice does not write).
func (k Keys) generation(o state.Output) string {
	if o.Bucket == k.cfg.QuarantineBucket && o.Bucket != "" {
		_, gen, _ := k.ParseQuarantine(o.Key)
		return gen
	}
	out, _ := k.ParseOutput(o.Key)
	return out.Gen
}

// bucket is the bucket an output is in.
func (k Keys) bucket(o state.Output) string {
	if o.Bucket != "" {
		return o.Bucket
	}
	return k.cfg.OutputBucket
}

// ParseQuarantine reads a key under the quarantine prefix: the source's segment and the
// generation; ok is false for a key sluice does not write there.
func (k Keys) ParseQuarantine(key string) (seg, gen string, ok bool) {
	rest, ok := strings.CutPrefix(key, k.cfg.QuarantinePrefix)
	if !ok {
		return "", "", false
	}
	for _, file := range []string{"/source", "/report.json", "/" + rejectedName + ".jsonl"} {
		if head, found := strings.CutSuffix(rest, file); found {
			i := strings.LastIndexByte(head, '/')
			if i > 0 && isGeneration(head[i+1:]) {
				return head[:i], head[i+1:], true
			}
		}
	}
	return "", "", false
}

// OutputKey is a key under the output prefix, read back: a manifest, or a rendition of one
// generation. Seg is the source's segment (see Segment).
type OutputKey struct {
	Seg, Gen, File string
	Manifest       bool
}

// ParseOutput reads a key under the output prefix; ok is false for a key sluice does not write
// there. It is unambiguous: a manifest is the only key ending in "/manifest.json" (renditions
// end in an image extension), and a rendition's generation is the 24-hex-digit segment before
// its file name.
func (k Keys) ParseOutput(key string) (OutputKey, bool) {
	rest, ok := strings.CutPrefix(key, k.cfg.OutputPrefix)
	if !ok {
		return OutputKey{}, false
	}
	if seg, ok := strings.CutSuffix(rest, "/manifest.json"); ok && seg != "" {
		return OutputKey{Seg: seg, Manifest: true}, true
	}
	i := strings.LastIndexByte(rest, '/')
	if i < 0 {
		return OutputKey{}, false
	}
	j := strings.LastIndexByte(rest[:i], '/')
	if j <= 0 || !isGeneration(rest[j+1:i]) {
		return OutputKey{}, false
	}
	return OutputKey{Seg: rest[:j], Gen: rest[j+1 : i], File: rest[i+1:]}, true
}

func isGeneration(s string) bool {
	if len(s) != genBytes {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Ours reports whether bucket/key is one of sluice's own outputs (final, temp or quarantine):
// such a key is never processed, whatever the trigger says.
func (k Keys) Ours(bucket, key string) bool {
	return (bucket == k.cfg.OutputBucket && (strings.HasPrefix(key, k.cfg.OutputPrefix) || strings.HasPrefix(key, k.cfg.TempPrefix))) ||
		(bucket == k.cfg.QuarantineBucket && strings.HasPrefix(key, k.cfg.QuarantinePrefix))
}

// candidates lists the keys of files under key(name, ext).
func candidates(files []file, key func(name, ext string) string) []string {
	out := make([]string, 0, len(files))
	for _, f := range files {
		out = append(out, key(f.name, f.ext))
	}
	return out
}

// Location is one object: a bucket and a key.
type Location struct{ Bucket, Key string }

// Parts of a generation, for sweep.
type genParts struct{ temps, renditions, evidence, rejected bool }

// generationKeys lists the keys of the chosen parts generation gen of a source may have
// written: temp keys and outputs of the files the source's recipe makes (route.files; the
// reconciler finds any other), the quarantine copy and report.
func (k Keys) generationKeys(files []file, sourceKey, gen string, parts genParts) []Location {
	var out []Location
	in := func(bucket string, keys []string) {
		for _, key := range keys {
			out = append(out, Location{bucket, key})
		}
	}
	if parts.temps {
		in(k.cfg.OutputBucket, candidates(files, func(name, ext string) string { return k.Temp(gen, sourceKey, name, ext) }))
	}
	if parts.renditions {
		in(k.cfg.OutputBucket, candidates(files, func(name, ext string) string { return k.Final(sourceKey, gen, name, ext) }))
	}
	if parts.evidence {
		object, report := k.Quarantine(sourceKey, gen)
		in(k.cfg.QuarantineBucket, []string{object, report})
	}
	if parts.rejected && slices.ContainsFunc(files, func(f file) bool { return f.name == rejectedName }) {
		in(k.cfg.QuarantineBucket, []string{k.Rejected(sourceKey, gen)})
	}
	return out
}
