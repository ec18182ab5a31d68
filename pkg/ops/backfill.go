package ops

import (
	"context"
	"errors"
	"sync"
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
	// After resumes a stopped backfill: the listing starts after this key (a Checkpoint's).
	After string
	// Checkpoint, when set, hears the key up to which every listed object has been handled
	// (skipped, processed or sent; not failed transiently), in listing order, as it advances: a
	// backfill started again with After set to it re-lists nothing it has done.
	Checkpoint func(key string)
}

// Sender hands object events to the deployed processor (queue.Target does, through SQS).
type Sender interface {
	SendEvents(ctx context.Context, evs []trigger.ObjectEvent, sent func()) error
}

// listAhead is how many child prefixes a backfill lists at once (storage.ListAhead), ahead of
// the one it is working through.
const listAhead = 8

// backfillFields are the attributes a backfill reads of each record.
var backfillFields = []string{"bucket", "key", "status", "reason", "object_etag", "recipe_version"}

// Backfill processes every object under the prefix that is not already SUCCEEDED (or
// QUARANTINED) for its current content and the current recipe, with opt.Concurrency workers in
// this process. It works as it lists (child prefixes listed in parallel, the objects still
// taken in key order): pages of up to state.MaxBatchGet objects are checked against state,
// checkersInFlight at a time, each with one BatchGetItem, and the due objects handed on, so it
// holds a few pages, not the listing, and its progress total grows until the listing ends. Stopping it (ctx) lets
// started objects finish; running it again resumes, since what finished is skipped (and, from
// opt.After, is not even listed). A recipe change makes everything due again.
func (o *Ops) Backfill(ctx context.Context, opt BackfillOptions, prog Progress) (Counts, error) {
	var (
		tally   Tally
		sendErr error // set by the consumer; read after wait
		mark    = newWatermark(opt.Checkpoint)
	)
	send, wait := dispatch(ctx, func(in <-chan job) {
		if opt.Via == nil {
			o.runJobs(ctx, in, opt.Concurrency, 0, &tally, prog)
			return
		}
		sendErr = o.sendJobs(ctx, in, opt.Via, &tally, prog)
	})
	// Pages of listed objects go to checkersInFlight goroutines, each checking one against state
	// at a time; the listing stops at the first failed check.
	listCtx, stopListing := context.WithCancel(ctx)
	defer stopListing()
	checks := make(chan []listedObject)
	var (
		checkErr error
		failOnce sync.Once
		checkers sync.WaitGroup
	)
	for range checkersInFlight {
		checkers.Go(func() {
			for page := range checks {
				if err := o.checkPage(ctx, page, send, &tally, prog); err != nil {
					failOnce.Do(func() { checkErr = err; stopListing() })
				}
			}
		})
	}
	page := make([]listedObject, 0, state.MaxBatchGet)
	handOn := func() error {
		select {
		case checks <- page:
			page = make([]listedObject, 0, state.MaxBatchGet)
			return nil
		case <-listCtx.Done():
			return listCtx.Err()
		}
	}
	err := o.objects.ListAhead(listCtx, opt.Bucket, opt.Prefix, opt.After, listAhead, func(ob storage.Object) error {
		if (!opt.From.IsZero() && ob.LastModified.Before(opt.From)) || (!opt.To.IsZero() && !ob.LastModified.Before(opt.To)) {
			return nil
		}
		total := tally.Total.Add(1)
		if prog != nil {
			prog.SetTotal(total)
		}
		if page = append(page, listedObject{ob, mark.add(ob.Key)}); len(page) == cap(page) {
			return handOn()
		}
		return nil
	})
	if err == nil && len(page) > 0 {
		err = handOn()
	}
	close(checks)
	checkers.Wait()
	wait()
	if checkErr != nil {
		err = checkErr // the listing's error is only that it was stopped
	}
	if err := errors.Join(err, sendErr); err != nil {
		return tally.Snapshot(), err
	}
	return tally.Snapshot(), ctx.Err()
}

// checkersInFlight is how many pages a backfill checks against state at once.
const checkersInFlight = 4

// listedObject is a listed object and the func that marks it handled (its watermark entry).
type listedObject struct {
	ob   storage.Object
	done func()
}

// checkPage reads the page's records with one BatchGetItem, counts as skipped what is done for
// its content and the current recipe, and hands the rest on with send.
func (o *Ops) checkPage(ctx context.Context, page []listedObject, send func(job) bool, tally *Tally, prog Progress) error {
	ids := make([]string, len(page))
	for i, l := range page {
		ids[i] = state.ID(l.ob.Bucket, l.ob.Key)
	}
	recs, err := o.states.GetMany(ctx, ids, state.Read{Fields: backfillFields})
	if err != nil {
		return err
	}
	for i, l := range page {
		current := func(version string) bool { return o.proc.Current(l.ob.Key, version) }
		if rec, found := recs[ids[i]]; found && rec.Ended(l.ob.ETag, current) {
			tally.add(KindSkipped)
			if prog != nil {
				prog.Finished(KindSkipped, l.ob.Key, resultOf(rec))
			}
			l.done()
			continue
		}
		ev := trigger.ObjectEvent{Action: trigger.Created, Name: "sluice:Backfill", Bucket: l.ob.Bucket, Key: l.ob.Key, Size: l.ob.Size, ETag: l.ob.ETag}
		if !send(job{ev: ev, done: l.done}) {
			return ctx.Err()
		}
	}
	return nil
}

// sendJobs sends jobs to the deployed processor in batches of ten. After a failed send it
// drains the rest of the jobs and returns the error.
func (o *Ops) sendJobs(ctx context.Context, in <-chan job, via Sender, tally *Tally, prog Progress) error {
	var (
		batch  []job
		failed error
	)
	flush := func() {
		if len(batch) > 0 && failed == nil {
			evs := make([]trigger.ObjectEvent, len(batch))
			for i, j := range batch {
				evs[i] = j.ev
			}
			failed = via.SendEvents(ctx, evs, func() {
				tally.add(KindDone)
				if prog != nil {
					prog.Finished(KindDone, "", processor.Result{Detail: "sent to the queue"})
				}
			})
			if failed == nil {
				for _, j := range batch {
					j.finish()
				}
			}
		}
		batch = batch[:0]
	}
	for j := range in {
		if batch = append(batch, j); len(batch) == 10 {
			flush()
		}
	}
	flush()
	return failed
}

// watermark follows the listing order of a backfill's objects and reports, through advance,
// the last key up to which every one has been handled: objects finish out of order (workers),
// so it keeps the keys in flight, at most a page and the workers' share, never the listing.
// advance is called in order, with the lock held: it should only note the key.
type watermark struct {
	mu      sync.Mutex
	next    int64            // sequence number of the next object listed
	low     int64            // every object numbered below low is handled
	pending map[int64]string // handled objects at or above low: sequence → key
	advance func(key string)
}

func newWatermark(advance func(string)) *watermark {
	return &watermark{pending: map[int64]string{}, advance: advance}
}

// add numbers the next listed object and returns the func that marks it handled.
func (w *watermark) add(key string) func() {
	w.mu.Lock()
	seq := w.next
	w.next++
	w.mu.Unlock()
	return func() { w.handled(seq, key) }
}

func (w *watermark) handled(seq int64, key string) {
	w.mu.Lock()
	defer w.mu.Unlock() // advance is called in order, under the lock
	w.pending[seq] = key
	last, moved := "", false
	for {
		k, ok := w.pending[w.low]
		if !ok {
			break
		}
		delete(w.pending, w.low)
		w.low++
		last, moved = k, true
	}
	if moved && w.advance != nil {
		w.advance(last)
	}
}
