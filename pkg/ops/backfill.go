package ops

import (
	"context"
	"errors"
	"time"

	"github.com/sluice-dev/sluice/pkg/processor"
	"github.com/sluice-dev/sluice/pkg/state"
	"github.com/sluice-dev/sluice/pkg/storage"
	"github.com/sluice-dev/sluice/pkg/trigger"
)

// BackfillOptions chooses what a backfill processes. The dates filter on the objects' own
// LastModified times (zero means unbounded), never on the wall clock.
type BackfillOptions struct {
	Bucket, Prefix string
	From, To       time.Time // From ≤ LastModified < To
	Concurrency    int
	// Via, when set, sends each due object to the deployed processor's queue (an S3-shaped
	// message) instead of processing it here; sent objects count as done.
	Via Sender
}

// Sender hands object events to the deployed processor (queue.Target does, through SQS).
type Sender interface {
	SendEvents(ctx context.Context, evs []trigger.ObjectEvent, sent func()) error
}

// Backfill processes every object under the prefix that is not already SUCCEEDED (or
// QUARANTINED) for its current content and the current recipe, with opt.Concurrency workers in
// this process. Stopping it (ctx) lets started objects finish; running it again resumes, since
// what finished is skipped. A recipe change makes everything due again.
func (o *Ops) Backfill(ctx context.Context, opt BackfillOptions, prog Progress) (Counts, error) {
	var objs []storage.Object
	err := o.objects.List(ctx, opt.Bucket, opt.Prefix, func(ob storage.Object) error {
		if (opt.From.IsZero() || !ob.LastModified.Before(opt.From)) && (opt.To.IsZero() || ob.LastModified.Before(opt.To)) {
			objs = append(objs, ob)
		}
		return nil
	})
	if err != nil {
		return Counts{}, err
	}
	var tally Tally
	tally.Total.Store(int64(len(objs)))
	if prog != nil {
		prog.SetTotal(int64(len(objs)))
	}
	var sendErr error // set by the consumer; read after wait
	send, wait := dispatch(ctx, func(in <-chan job) {
		if opt.Via == nil {
			o.runJobs(ctx, in, opt.Concurrency, 0, &tally, prog)
			return
		}
		sendErr = o.sendJobs(ctx, in, opt.Via, &tally, prog)
	})
	recipe := o.proc.RecipeVersion()
	var feedErr error
	for _, ob := range objs {
		if ctx.Err() != nil {
			break
		}
		rec, found, err := o.states.Get(ctx, state.ID(ob.Bucket, ob.Key))
		if err != nil {
			feedErr = err
			break
		}
		if found && rec.Ended(ob.ETag, recipe) {
			tally.add(KindSkipped)
			if prog != nil {
				prog.Finished(KindSkipped, ob.Key, resultOf(rec))
			}
			continue
		}
		if !send(job{ev: trigger.ObjectEvent{Action: trigger.Created, Name: "sluice:Backfill", Bucket: ob.Bucket, Key: ob.Key, Size: ob.Size, ETag: ob.ETag}}) {
			break
		}
	}
	wait()
	if err := errors.Join(feedErr, sendErr); err != nil {
		return tally.Snapshot(), err
	}
	return tally.Snapshot(), ctx.Err()
}

// sendJobs sends jobs to the deployed processor in batches of ten. After a failed send it
// drains the rest of the jobs and returns the error.
func (o *Ops) sendJobs(ctx context.Context, in <-chan job, via Sender, tally *Tally, prog Progress) error {
	var (
		batch  []trigger.ObjectEvent
		failed error
	)
	sent := func() {
		tally.add(KindDone)
		if prog != nil {
			prog.Finished(KindDone, "", processor.Result{Detail: "sent to the queue"})
		}
	}
	flush := func() {
		if len(batch) > 0 && failed == nil {
			failed = via.SendEvents(ctx, batch, sent)
		}
		batch = batch[:0]
	}
	for j := range in {
		if batch = append(batch, j.ev); len(batch) == 10 {
			flush()
		}
	}
	flush()
	return failed
}
