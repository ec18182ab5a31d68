package processor

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"

	"github.com/sluice-dev/sluice/pkg/failure"
	"github.com/sluice-dev/sluice/pkg/render"
	"github.com/sluice-dev/sluice/pkg/state"
	"github.com/sluice-dev/sluice/pkg/storage"
)

// publish runs the output protocol for one rendition: put to a temp key with its SHA-256 →
// verify the stored checksum → copy to the generation's final key only if the temp object is
// still the one verified → delete the temp key. The final key belongs to this claim's
// generation, which no other claim writes, so the copy needs no fence: nothing is visible until
// the manifest names the generation (commit).
func (r *run) publish(src storage.Object, o render.Output) (state.Output, error) {
	keys := r.p.Keys()
	gen := r.rec.ClaimToken
	tmp := keys.Temp(gen, src.Key, o.Name, o.Ext())
	final := keys.Final(src.Key, gen, o.Name, o.Ext())
	w, err := r.p.objects.Put(r.ctx, storage.Put{
		Bucket: r.p.cfg.OutputBucket, Key: tmp, Body: o.Body, ContentType: o.ContentType(),
		CacheControl: r.route.cache().RenditionsCache(), // the copy keeps it
		Metadata:     r.metadata(src),
	})
	if err != nil {
		return state.Output{}, err
	}
	if err := r.verify(tmp, w); err != nil {
		return state.Output{}, err
	}
	if _, err := r.p.objects.Copy(r.ctx, storage.Copy{
		SrcBucket: r.p.cfg.OutputBucket, SrcKey: tmp, IfMatch: w.ETag,
		DstBucket: r.p.cfg.OutputBucket, DstKey: final,
	}); err != nil {
		return state.Output{}, failure.Transient(err)
	}
	r.deleteTemp(tmp)
	return state.Output{
		Name: o.Name, Key: final, Size: int64(len(o.Body)), SHA256: w.SHA256,
		Width: o.Width, Height: o.Height, Format: string(o.Format),
	}, nil
}

// verify checks that the temp object holds exactly the bytes sent: by the SHA-256 S3 computed
// over what it stored, reported in the PUT's answer (S3 also refuses a PUT whose bytes do not
// match the SHA-256 sent with them; of a streamed multipart object, the composite checksum of
// the parts' SHA-256s, storage.Upload), or, from a server that does not report one, by a HEAD
// of the size and stored checksum (the size alone for a multipart object, whose parts S3 checked
// one by one).
func (r *run) verify(tmp string, w storage.Written) error {
	if w.Stored != "" {
		if w.Stored != w.SHA256 {
			return failure.Transient(fmt.Errorf("verify %s: stored sha256 %s, wrote %s", tmp, w.Stored, w.SHA256))
		}
		return nil
	}
	head, err := r.p.objects.Head(r.ctx, r.p.cfg.OutputBucket, tmp)
	if err != nil {
		return err
	}
	if head.Size != w.Size || (head.SHA256 != "" || w.Size < storage.PartSize) && head.SHA256 != w.SHA256 {
		return failure.Transient(fmt.Errorf("verify %s: stored %d bytes sha256 %s, wrote %d bytes sha256 %s",
			tmp, head.Size, head.SHA256, w.Size, w.SHA256))
	}
	return nil
}

// Metadata keys sluice writes on what it publishes.
const (
	fenceKey        = "sluice-fence"      // the claim's fencing number
	genKey          = "sluice-generation" // the claim's generation
	sourceBucketKey = "sluice-source-bucket"
	sourceKeyKey    = "sluice-source-key" // URL-escaped (metadata is ASCII)
)

// metadata is the metadata of everything this claim publishes for src: the recipe version, the
// claim's fence and generation, and the source it came from (the reconciler reads it back).
func (r *run) metadata(src storage.Object) map[string]string {
	return map[string]string{
		"sluice-recipe": r.route.version, "sluice-source-version": r.rec.ObjectVersion,
		fenceKey: strconv.FormatInt(r.rec.Fence, 10), genKey: r.rec.ClaimToken,
		sourceBucketKey: src.Bucket, sourceKeyKey: url.QueryEscape(src.Key),
	}
}

// SourceOf reads back, from an output's or a quarantine object's metadata, the source it was
// written for and the generation that wrote it.
func SourceOf(o storage.Object) (bucket, key, gen string, ok bool) {
	key, err := url.QueryUnescape(o.Metadata[sourceKeyKey])
	bucket, gen = o.Metadata[sourceBucketKey], o.Metadata[genKey]
	return bucket, key, gen, err == nil && bucket != "" && key != "" && isGeneration(gen)
}

// putFenced writes the mutable object bucket/key (the manifest) only for a claim that still
// holds the record, and never over what a later claim wrote: it re-checks the
// claim (consistent read), reads the current object (its body, for the caller's clean-up), and
// puts with If-Match on what it read (If-None-Match when absent), refusing when the current
// object carries a later fence. S3 and MinIO both enforce the precondition on PutObject, so a
// writer that lost the race between the read and the put fails instead of overwriting.
func (r *run) putFenced(p storage.Put) (prev []byte, err error) {
	if err := r.holds(); err != nil {
		return nil, err
	}
	// The lease had at least a commit window left: the read and the put finish within it.
	ctx, cancel := context.WithTimeout(r.ctx, r.p.cfg.CommitWindow/2)
	defer cancel()
	cur, body, err := r.p.objects.Read(ctx, p.Bucket, p.Key, maxMutableBytes)
	found := err == nil
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, err
	}
	if fence, _ := strconv.ParseInt(cur.Metadata[fenceKey], 10, 64); found && fence > r.rec.Fence {
		return nil, fmt.Errorf("s3://%s/%s was written by a later claim (fence %d > %d): %w",
			p.Bucket, p.Key, fence, r.rec.Fence, state.ErrLeaseLost)
	}
	p.Only = storage.Replacing(cur, found)
	_, err = r.p.objects.Put(ctx, p)
	switch {
	case err == nil:
		return body, nil
	case !errors.Is(err, storage.ErrPreconditionFailed):
		return nil, failure.Transient(err)
	case r.wroteIt(ctx, p.Bucket, p.Key):
		// The SDK retried a put whose answer was lost; the retry's condition failed on this
		// claim's own write.
		return body, nil
	}
	return nil, fmt.Errorf("s3://%s/%s changed under this claim: %w", p.Bucket, p.Key, state.ErrLeaseLost)
}

// wroteIt reports whether bucket/key now holds what this claim wrote (its generation).
func (r *run) wroteIt(ctx context.Context, bucket, key string) bool {
	cur, err := r.p.objects.Head(ctx, bucket, key)
	return err == nil && cur.Metadata[genKey] == r.rec.ClaimToken
}

// holds checks that this claim still holds the record with a commit window of lease left.
func (r *run) holds() error {
	return r.p.states.Holds(r.ctx, r.rec, r.p.now().Add(r.p.cfg.CommitWindow))
}

// maxMutableBytes bounds a manifest read back.
const maxMutableBytes = 1 << 20

// sweep deletes, under this claim, what the record's generations left that is neither the
// committed generation's renditions nor the evidence generation's quarantine copy: the
// renditions listed (by the record, or a replaced manifest) of other generations, and the temp
// keys, renditions and quarantine copies of the abandoned generations, of the previous evidence
// and of this claim's own. None of it can be committed or kept as evidence any more
// (state.MayDeleteOutput, state.MayDeleteEvidence). The record then lists no abandoned
// generation and keeps evidence as its evidence generation.
func (r *run) sweep(committed, evidence string, listed []state.Output) error {
	keys := r.p.Keys()
	var doomed []Location
	for _, o := range listed {
		if keys.generation(o) != committed {
			doomed = append(doomed, Location{keys.bucket(o), o.Key})
		}
	}
	gens := append(slices.Clone(r.rec.Abandoned), r.rec.ClaimToken, r.rec.QuarantineGen)
	slices.Sort(gens)
	for _, gen := range slices.Compact(gens) {
		// This claim's own generation when it committed it (publish deleted its temp keys, and
		// it wrote no quarantine copy), or when it is a removal's (which writes nothing).
		own := gen == r.rec.ClaimToken && (gen == committed || r.rec.Status == state.Removing)
		if gen != "" && !own {
			doomed = append(doomed, keys.generationKeys(r.route.files(r.ev.Key), r.ev.Key, gen,
				genParts{temps: true, renditions: gen != committed, evidence: gen != evidence, rejected: gen != committed && gen != evidence})...)
		}
	}
	var errs []error
	for _, l := range doomed {
		if err := r.p.objects.Delete(context.WithoutCancel(r.ctx), l.Bucket, l.Key); err != nil {
			errs = append(errs, err)
		}
	}
	r.rec.Abandoned, r.rec.QuarantineGen = nil, evidence
	return errors.Join(errs...)
}

// dropOwnGeneration deletes what this claim wrote once it lost the claim: its generation can
// never be committed or kept as evidence now (state.MayDeleteOutput, state.MayDeleteEvidence).
// The temp keys stay when a checkpoint of this claim's handed its uploads on: the claim that
// resumes them writes those keys now.
func (r *run) dropOwnGeneration() {
	parts := genParts{temps: true, renditions: true, evidence: true, rejected: true}
	if p := r.rec.Progress; p != nil && p.Gen == r.rec.ClaimToken {
		parts.temps = false
	}
	for _, l := range r.p.Keys().generationKeys(r.route.files(r.ev.Key), r.ev.Key, r.rec.ClaimToken, parts) {
		if err := r.p.objects.Delete(context.WithoutCancel(r.ctx), l.Bucket, l.Key); err != nil {
			r.log.Warn("output not deleted; the reconciler will", "bucket", l.Bucket, "output_key", l.Key, "err", err)
		}
	}
}

// deleteTemp removes a temp object; one left behind (this failing) expires by lifecycle rule.
func (r *run) deleteTemp(key string) {
	if err := r.p.objects.Delete(context.WithoutCancel(r.ctx), r.p.cfg.OutputBucket, key); err != nil {
		r.log.Warn("temp object not deleted", "temp_key", key, "err", err)
	}
}
