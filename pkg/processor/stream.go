package processor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/sluice-dev/sluice/pkg/failure"
	"github.com/sluice-dev/sluice/pkg/metrics"
	"github.com/sluice-dev/sluice/pkg/state"
	"github.com/sluice-dev/sluice/pkg/storage"
)

// The streamed kinds (records, passthrough) never hold a file: the source is read as a stream
// (hashed on the way), and each output streams to its temp key (storage.Upload, a part at a
// time, each part's SHA-256 checked by S3), is verified, and is copied to its generation's
// final key, as a rendition is.

// streamOut is one output being streamed to its temp key.
type streamOut struct {
	f   file
	up  *storage.Upload
	tmp string
}

// startOutput starts streaming output f of src to its temp key.
func (r *run) startOutput(ctx context.Context, src storage.Object, f file, contentType string) *streamOut {
	tmp := r.p.Keys().Temp(r.rec.ClaimToken, src.Key, f.name, f.ext)
	up := r.p.objects.NewUpload(ctx, storage.Put{
		Bucket: r.p.cfg.OutputBucket, Key: tmp, ContentType: contentType,
		CacheControl: r.route.cache().RenditionsCache(), Metadata: r.metadata(src),
	})
	return &streamOut{f: f, up: up, tmp: tmp}
}

// land completes the temp object, verifies it, copies it to its final key and deletes it.
func (r *run) land(src storage.Object, o *streamOut) (state.Output, error) {
	w, err := o.up.Close()
	if err != nil {
		return state.Output{}, err
	}
	if err := r.verify(o.tmp, w); err != nil {
		return state.Output{}, err
	}
	final := r.p.Keys().Final(src.Key, r.rec.ClaimToken, o.f.name, o.f.ext)
	if _, err := r.p.objects.Copy(r.ctx, storage.Copy{
		SrcBucket: r.p.cfg.OutputBucket, SrcKey: o.tmp, IfMatch: w.ETag,
		DstBucket: r.p.cfg.OutputBucket, DstKey: final,
	}); err != nil {
		return state.Output{}, failure.Transient(err)
	}
	r.deleteTemp(o.tmp)
	r.m.Add("BytesOut", metrics.Bytes, float64(w.Size))
	return state.Output{Name: o.f.name, Key: final, Size: w.Size, SHA256: w.SHA256, Format: o.f.ext}, nil
}

// reading is the source as a stream, hashed and counted as it is read.
type reading struct {
	body io.ReadCloser
	sum  hash.Hash
	n    int64
}

func (rd *reading) Read(b []byte) (int, error) {
	n, err := rd.body.Read(b)
	rd.sum.Write(b[:n])
	rd.n += int64(n)
	return n, err
}

// open streams src as HEAD saw it.
func (r *run) open(ctx context.Context, src storage.Object) (*reading, error) {
	body, err := r.p.objects.Stream(ctx, src)
	if errors.Is(err, storage.ErrPreconditionFailed) || errors.Is(err, storage.ErrNotFound) {
		return nil, failure.Transient(fmt.Errorf("the object changed before it was read: %w", err))
	}
	if err != nil {
		return nil, err
	}
	return &reading{body: body, sum: sha256.New()}, nil
}

// finishReading drains and closes the source, and checks what was read against what HEAD and
// S3 declared: its size (a different one means another version was read) and its SHA-256.
func (r *run) finishReading(src storage.Object, rd *reading) error {
	_, err := io.Copy(io.Discard, rd)
	rd.body.Close()
	if err != nil {
		return fmt.Errorf("read s3://%s/%s: %w", src.Bucket, src.Key, err)
	}
	r.m.Add("BytesIn", metrics.Bytes, float64(rd.n))
	r.learnt.sha256 = hex.EncodeToString(rd.sum.Sum(nil))
	if rd.n != src.Size {
		return failure.Transient(fmt.Errorf("read %d bytes of s3://%s/%s, HEAD said %d", rd.n, src.Bucket, src.Key, src.Size))
	}
	if src.SHA256 != "" && src.SHA256 != r.learnt.sha256 {
		return failure.Permanent(failure.ChecksumMismatch, "the file's SHA-256 is %s but the object declares %s", r.learnt.sha256, src.SHA256)
	}
	return nil
}

// passthrough publishes the source itself, once read in full and checked.
func (r *run) passthrough(src storage.Object) ([]state.Output, error) {
	var out state.Output
	err := r.stage("Passthrough", func(ctx context.Context) error {
		rd, err := r.open(ctx, src)
		if err != nil {
			return err
		}
		o := r.startOutput(ctx, src, r.route.files(src.Key)[0], r.learnt.contentType)
		_, err = io.Copy(o.up, rd)
		if err = errors.Join(err, r.finishReading(src, rd)); err != nil {
			o.up.Abort()
			return err
		}
		out, err = r.land(src, o)
		return err
	})
	return []state.Output{out}, err
}

// recordsOutputs runs the records recipe over the source: the valid rows and the rejected
// rows' list each stream to their temp key, and both are published once every row has been
// judged and the counts add up. When the bad rows are more than the recipe allows, the list of
// them is kept (copyToQuarantine puts it beside the report) and the file is quarantined.
func (r *run) recordsOutputs(src storage.Object) ([]state.Output, error) {
	var outs []state.Output
	err := r.stage("Records", func(ctx context.Context) error {
		rd, err := r.open(ctx, src)
		if err != nil {
			return err
		}
		files := r.route.files(src.Key)
		rowsType := "application/x-ndjson"
		if r.route.entry.Records.Output.Gzip {
			rowsType = "application/gzip"
		}
		rows := r.startOutput(ctx, src, files[0], rowsType)
		rejected := r.startOutput(ctx, src, files[1], "application/x-ndjson")
		sum, err := r.route.plan.Run(rd, rows.up, rejected.up)
		r.learnt.rows = &sum
		err = errors.Join(err, r.finishReading(src, rd))
		if failure.ReasonOf(err) == failure.TooManyBadRows {
			rows.up.Abort()
			return r.keepRejected(rejected, err)
		}
		if err != nil {
			rows.up.Abort()
			rejected.up.Abort()
			return err
		}
		r.m.Add("RowsValid", metrics.Count, float64(sum.Valid))
		r.m.Add("RowsInvalid", metrics.Count, float64(sum.Invalid))
		for _, o := range []*streamOut{rows, rejected} {
			out, err := r.land(src, o)
			if err != nil {
				return err
			}
			outs = append(outs, out)
		}
		return nil
	})
	return outs, err
}

// keepRejected completes the rejected rows' list of a file the gate refused, for the quarantine
// to keep as evidence; the gate's fault is the result either way.
func (r *run) keepRejected(o *streamOut, gate error) error {
	w, err := o.up.Close()
	if err == nil {
		err = r.verify(o.tmp, w)
	}
	if err != nil {
		return failure.Transient(fmt.Errorf("%v; its rejected rows not kept: %w", gate, err))
	}
	r.learnt.rejected = o.tmp
	return gate
}
