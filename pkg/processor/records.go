package processor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/sluice-dev/sluice/pkg/failure"
	"github.com/sluice-dev/sluice/pkg/metrics"
	"github.com/sluice-dev/sluice/pkg/records"
	"github.com/sluice-dev/sluice/pkg/state"
	"github.com/sluice-dev/sluice/pkg/storage"
)

// A records file may take longer than one invocation. At each of the recipe's checkpoints
// (pkg/records: at a row boundary, every checkpoint_bytes of input) the attempt records in the
// state table, under its claim, where it stands: the position in the file, the SHA-256 of the
// bytes read so far, and each output's upload (its id, the parts sent, the bytes not yet sent,
// put at a key of their own for that position, and the SHA-256 written so far). An attempt
// near its deadline stops at a checkpoint, and the next claim on the same content and recipe
// goes on from the last one, with the same temp keys and upload; an attempt that recorded
// progress uses up no attempt (state.Decide). Whatever stops it (a deadline, a crash, a lost
// answer), the rows after the checkpoint are read again and the parts after it sent again,
// with the same bytes: the output is a function of the file and the recipe alone.

// recordsState is what a records attempt's checkpoint holds (state.Progress.Data).
type recordsState struct {
	At       records.Position    `json:"at"`
	Source   []byte              `json:"source_sha256_state"`
	Rows     storage.UploadState `json:"rows"`
	Rejected storage.UploadState `json:"rejected"`
}

// maxProgressBytes bounds a checkpoint in the state table (an item holds 400 KB): one with a
// header too large to keep is not taken, and the attempt goes on without it.
const maxProgressBytes = 64 << 10

// recordsJob is a records attempt under way: where it started, and its outputs.
type recordsJob struct {
	gen            string // the generation whose temp keys the outputs go to
	from           recordsState
	rd             *reading
	rows, rejected *streamOut
	last           time.Time // when the last checkpoint (or the start) was
	pending        []string  // the keys the last checkpoint put unsent bytes at
}

// recordsOutputs runs the records recipe over the source, from the last checkpoint if a
// claim on this content and recipe left one: the valid rows and the rejected rows' list stream
// to their temp keys, and both are published once every row has been judged and the counts
// add up. When the bad rows are more than the recipe allows, the list of them is kept
// (copyToQuarantine puts it beside the report) and the file is quarantined.
func (r *run) recordsOutputs(src storage.Object) ([]state.Output, error) {
	var outs []state.Output
	err := r.stage("Records", func(ctx context.Context) error {
		job, err := r.startRecords(ctx, src)
		if err != nil {
			return err
		}
		sum, err := r.route.plan.Resume(job.rd, job.from.At, job.rows.up, job.rejected.up, func(at records.Position) error {
			return r.checkpoint(ctx, src, job, at)
		})
		r.learnt.rows = &sum
		if err == nil {
			err = r.finishReading(src, job.rd)
		} else {
			job.rd.body.Close()
		}
		switch {
		case failure.ReasonOf(err) == failure.TooManyBadRows:
			job.rows.up.Abort()
			return r.keepRejected(job.rejected, err)
		case errors.Is(err, storage.ErrTooLarge):
			job.rows.up.Abort()
			job.rejected.up.Abort()
			return failure.PermanentWrap(failure.TooLarge, err, "an output would be larger than %d bytes", storage.MaxUploadBytes)
		case failure.Classify(err) == failure.IsPermanent:
			job.rows.up.Abort()
			job.rejected.up.Abort()
			return err
		case err != nil:
			return err // the uploads stay for the attempt that resumes from the checkpoint
		}
		r.m.Add("RowsValid", metrics.Count, float64(sum.Valid))
		r.m.Add("RowsInvalid", metrics.Count, float64(sum.Invalid))
		for _, o := range []*streamOut{job.rows, job.rejected} {
			out, err := r.land(src, o)
			if err != nil {
				return err
			}
			outs = append(outs, out)
		}
		r.dropTemps(job.gen, src.Key)
		return nil
	})
	return outs, err
}

// dropTemps deletes what is left under the temp prefix of the generation the outputs were
// streamed in, once they are published: the unsent bytes of checkpoints that a killed attempt
// could not delete (one LIST). What this misses expires with the temp prefix.
func (r *run) dropTemps(gen, sourceKey string) {
	err := r.p.objects.List(r.ctx, r.p.cfg.OutputBucket, r.p.Keys().TempDir(gen, sourceKey), func(o storage.Object) error {
		r.deleteTemp(o.Key)
		return nil
	})
	if err != nil {
		r.log.Warn("temp objects not listed; they expire with the temp prefix", "err", err)
	}
}

// startRecords opens the source and the outputs where the claim's progress left them, or at
// the start. A checkpoint whose upload S3 no longer has (its lifecycle rule aborts one after a
// day) is dropped: the file starts again.
func (r *run) startRecords(ctx context.Context, src storage.Object) (*recordsJob, error) {
	job := &recordsJob{gen: r.rec.ClaimToken, last: r.p.now()}
	if p := r.rec.Progress; p != nil {
		if err := json.Unmarshal([]byte(p.Data), &job.from); err != nil {
			return nil, fmt.Errorf("progress of %s: %w", src.Key, err)
		}
		job.gen = p.Gen
	}
	files := r.route.files(src.Key)
	var err error
	_, rowsType := r.route.rowsFile()
	job.rows, err = r.resumeOutput(ctx, r.outputPut(src, job.gen, files[0], rowsType), files[0], job.from.Rows)
	if err == nil {
		job.rejected, err = r.resumeOutput(ctx, r.outputPut(src, job.gen, files[1], "application/x-ndjson"), files[1], job.from.Rejected)
	}
	if errors.Is(err, storage.ErrNotFound) && r.rec.Progress != nil {
		r.log.Warn("checkpoint's upload is gone; starting the file again", "err", err)
		r.rec.Progress = nil
		return r.startRecords(ctx, src)
	}
	if err != nil {
		return nil, err
	}
	if job.rd, err = r.open(ctx, src, job.from.At.Offset, job.from.Source); err != nil {
		return nil, err
	}
	job.pending = []string{job.from.Rows.Pending, job.from.Rejected.Pending}
	if r.rec.Progress != nil {
		r.m.Add("Resumed", metrics.Count, 1)
		r.log.Info("resuming at the checkpoint", "offset", job.from.At.Offset, "rows", job.from.At.Sum.RowsIn)
	}
	return job, nil
}

// resumeOutput goes on with an output's upload from its checkpointed state, or starts it.
func (r *run) resumeOutput(ctx context.Context, p storage.Put, f file, st storage.UploadState) (*streamOut, error) {
	if st.Hash == nil {
		return &streamOut{f: f, up: r.p.objects.NewUpload(ctx, p), put: p}, nil
	}
	up, err := r.p.objects.ResumeUpload(ctx, p, st)
	return &streamOut{f: f, up: up, put: p}, err
}

// DescribeProgress says, for an operator, how far a records file's checkpoint got.
func DescribeProgress(p state.Progress, size int64) string {
	var st recordsState
	if err := json.Unmarshal([]byte(p.Data), &st); err != nil {
		return "checkpoint unreadable: " + err.Error()
	}
	return fmt.Sprintf("byte %d of %d, %d rows (%d valid, %d invalid), checkpoint at %s by claim %s",
		st.At.Offset, size, st.At.Sum.RowsIn, st.At.Sum.Valid, st.At.Sum.Invalid, p.At.Format(time.RFC3339), p.Token)
}

// errPaused stops an attempt at a checkpoint before its deadline.
var errPaused = errors.New("paused at a checkpoint")

// checkpoint records the attempt's progress at position at, then stops the attempt when the
// next stretch would likely not finish before the deadline (it took as long as the last).
func (r *run) checkpoint(ctx context.Context, src storage.Object, job *recordsJob, at records.Position) error {
	st, err := r.progressState(src, job, at)
	if err != nil {
		return err
	}
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if len(data) > maxProgressBytes {
		return nil
	}
	p := state.Progress{Token: r.rec.ClaimToken, Gen: job.gen, Data: string(data), At: r.p.now().UTC()}
	if err := r.p.states.SaveProgress(ctx, r.rec, p); err != nil {
		return err
	}
	r.rec.Progress = &p
	r.m.Add("Checkpoints", metrics.Count, 1)
	r.dropPending(job.pending)
	job.pending = []string{st.Rows.Pending, st.Rejected.Pending}
	now := r.p.now()
	stretch := now.Sub(job.last)
	job.last = now
	if dl, ok := r.ctx.Deadline(); ok && dl.Sub(now) < stretch+stretch/2 {
		return fmt.Errorf("%w: byte %d of %d, %d rows, before the deadline; the next delivery resumes there", errPaused, at.Offset, src.Size, at.Sum.RowsIn)
	}
	return nil
}

// progressState is the attempt's state at position at: each output's upload (its unsent bytes
// put at a key of that position's) and the source's running SHA-256.
func (r *run) progressState(src storage.Object, job *recordsJob, at records.Position) (recordsState, error) {
	st := recordsState{At: at}
	var err error
	suffix := ".pending-" + strconv.FormatInt(at.Offset, 10)
	if st.Rows, err = job.rows.up.Checkpoint(job.rows.put.Key + suffix); err != nil {
		return st, err
	}
	if st.Rejected, err = job.rejected.up.Checkpoint(job.rejected.put.Key + suffix); err != nil {
		return st, err
	}
	st.Source, err = job.rd.sumAt(at.Offset)
	return st, err
}

// dropPending deletes unsent bytes a checkpoint kept that no checkpoint needs any more (one
// left behind expires with the temp prefix).
func (r *run) dropPending(keys []string) {
	for _, k := range keys {
		if k != "" {
			r.deleteTemp(k)
		}
	}
}
