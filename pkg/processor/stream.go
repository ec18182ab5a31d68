package processor

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"

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
	put storage.Put // its temp key (Key) and attributes
}

// outputPut is how output f of src is streamed to its temp key in generation gen (a resumed
// attempt goes on with the generation that started it).
func (r *run) outputPut(src storage.Object, gen string, f file, contentType string) storage.Put {
	return storage.Put{
		Bucket: r.p.cfg.OutputBucket, Key: r.p.Keys().Temp(gen, src.Key, f.name, f.ext), ContentType: contentType,
		CacheControl: r.route.cache().RenditionsCache(), Metadata: r.metadata(src),
	}
}

// startOutput starts streaming output f of src to its temp key.
func (r *run) startOutput(ctx context.Context, src storage.Object, f file, contentType string) *streamOut {
	p := r.outputPut(src, r.rec.ClaimToken, f, contentType)
	return &streamOut{f: f, up: r.p.objects.NewUpload(ctx, p), put: p}
}

// final is where output f of src is published: in the claim's generation of the output bucket;
// the list of rejected rows in the quarantine bucket, beside the source's quarantine entry.
func (r *run) final(src storage.Object, f file) (bucket, key string) {
	if f.name == rejectedName {
		return r.p.cfg.QuarantineBucket, r.p.Keys().Rejected(src.Key, r.rec.ClaimToken)
	}
	return r.p.cfg.OutputBucket, r.p.Keys().Final(src.Key, r.rec.ClaimToken, f.name, f.ext)
}

// land completes the temp object, verifies it, copies it to its final key and deletes it.
func (r *run) land(src storage.Object, o *streamOut) (state.Output, error) {
	w, err := o.up.Close()
	if err != nil {
		return state.Output{}, err
	}
	if err := r.verify(o.put.Key, w); err != nil {
		return state.Output{}, err
	}
	bucket, final := r.final(src, o.f)
	c := storage.Copy{
		SrcBucket: r.p.cfg.OutputBucket, SrcKey: o.put.Key, IfMatch: w.ETag,
		DstBucket: bucket, DstKey: final,
	}
	if w.Size > storage.MaxCopyBytes {
		// Copied part by part, the object's checksum is S3's composite one: its SHA-256 goes in
		// its metadata, where HEAD (storage.Head) finds it.
		c.Metadata = maps.Clone(o.put.Metadata)
		c.Metadata["sha256"], c.ContentType, c.CacheControl = w.SHA256, o.put.ContentType, o.put.CacheControl
		_, err = r.p.objects.CopyLarge(r.ctx, c, w.Size)
	} else {
		_, err = r.p.objects.Copy(r.ctx, c)
	}
	if err != nil {
		return state.Output{}, failure.Transient(err)
	}
	r.deleteTemp(o.put.Key)
	r.m.Add("BytesOut", metrics.Bytes, float64(w.Size))
	out := state.Output{Name: o.f.name, Key: final, Size: w.Size, SHA256: w.SHA256, Format: o.f.ext}
	if bucket != r.p.cfg.OutputBucket {
		out.Bucket = bucket
	}
	return out, nil
}

// reading is the source as a stream, counted and hashed as it is read. The last window bytes
// read are hashed only once they fall out of it, or when a checkpoint says they were consumed
// (hashTo): the readers above read ahead of the row they return, and a checkpoint's hash must
// cover exactly the bytes before its position.
type reading struct {
	body   io.ReadCloser
	sum    hash.Hash
	n      int64  // bytes read (from the file's start)
	held   []byte // the bytes read but not hashed yet: the file's [n-len(held), n)
	window int
}

// readAhead bounds how far the records readers read past a row boundary (their buffers).
const readAhead = 256 << 10

func (rd *reading) Read(b []byte) (int, error) {
	n, err := rd.body.Read(b)
	rd.held = append(rd.held, b[:n]...)
	rd.n += int64(n)
	if len(rd.held) > 2*rd.window {
		rd.hashTo(rd.n - int64(rd.window))
	}
	return n, err
}

// hashTo hashes the held bytes before file offset off.
func (rd *reading) hashTo(off int64) {
	k := len(rd.held) - int(rd.n-off)
	rd.sum.Write(rd.held[:k])
	rd.held = append(rd.held[:0], rd.held[k:]...)
}

// sumAt is the SHA-256 state of the file's bytes before off, a position the readers reported.
func (rd *reading) sumAt(off int64) ([]byte, error) {
	if held := rd.n - int64(len(rd.held)); off < held || off > rd.n {
		return nil, fmt.Errorf("checkpoint at byte %d, outside the bytes held [%d, %d]", off, held, rd.n)
	}
	rd.hashTo(off)
	return rd.sum.(encoding.BinaryMarshaler).MarshalBinary()
}

// open streams src as HEAD saw it, from offset on; hash is the SHA-256 of the bytes before
// offset (nil at the start).
func (r *run) open(ctx context.Context, src storage.Object, offset int64, hash []byte) (*reading, error) {
	rd := &reading{sum: sha256.New(), n: offset, window: readAhead}
	if hash != nil {
		if err := rd.sum.(encoding.BinaryUnmarshaler).UnmarshalBinary(hash); err != nil {
			return nil, err
		}
	}
	body, err := r.p.objects.StreamFrom(ctx, src, offset)
	if errors.Is(err, storage.ErrPreconditionFailed) || errors.Is(err, storage.ErrNotFound) {
		return nil, failure.Transient(fmt.Errorf("the object changed before it was read: %w", err))
	}
	if err != nil {
		return nil, err
	}
	rd.body = body
	return rd, nil
}

// finishReading drains and closes the source, and checks what was read against what HEAD and
// S3 declared: its size (a different one means another version was read) and its SHA-256.
func (r *run) finishReading(src storage.Object, rd *reading) error {
	_, err := io.Copy(io.Discard, rd)
	rd.body.Close()
	rd.hashTo(rd.n)
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
		rd, err := r.open(ctx, src, 0, nil)
		if err != nil {
			return err
		}
		// The output's type is the one its first bytes tell (routing may not have read them).
		br := bufio.NewReaderSize(rd, sniffBytes)
		head, _ := br.Peek(sniffBytes)
		o := r.startOutput(ctx, src, r.route.files(src.Key)[0], contentType(head))
		_, err = io.Copy(o.up, br)
		if err = errors.Join(err, r.finishReading(src, rd)); err != nil {
			o.up.Abort()
			return err
		}
		out, err = r.land(src, o)
		return err
	})
	return []state.Output{out}, err
}

// keepRejected completes the rejected rows' list of a file the gate refused, for the quarantine
// to keep as evidence; the gate's fault is the result either way.
func (r *run) keepRejected(o *streamOut, gate error) error {
	w, err := o.up.Close()
	if err == nil {
		err = r.verify(o.put.Key, w)
	}
	if err != nil {
		return failure.Transient(fmt.Errorf("%v; its rejected rows not kept: %w", gate, err))
	}
	r.learnt.rejected = o.put.Key
	return gate
}
