// Package ops is what operators run against a deployment (or the local stack): backfill a
// prefix, redrive quarantined or failed files, reconcile the staging bucket, the state table and
// the published outputs, and report. The state table is the checkpoint: every command can be
// stopped and run again, and it does only what is left.
package ops

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-dev/sluice/pkg/processor"
	"github.com/sluice-dev/sluice/pkg/state"
	"github.com/sluice-dev/sluice/pkg/storage"
	"github.com/sluice-dev/sluice/pkg/trigger"
)

// objectStore is what ops needs of S3.
type objectStore interface {
	List(ctx context.Context, bucket, prefix string, f func(storage.Object) error) error
	ListAfter(ctx context.Context, bucket, prefix, after string, f func(storage.Object) error) error
	ListAhead(ctx context.Context, bucket, prefix, after string, ahead int, f func(storage.Object) error) error
	Head(ctx context.Context, bucket, key string) (storage.Object, error)
	Read(ctx context.Context, bucket, key string, limit int64) (storage.Object, []byte, error)
	Delete(ctx context.Context, bucket, key string) error
}

// stateStore is what ops needs of the state table.
type stateStore interface {
	Get(ctx context.Context, id string) (state.Record, bool, error)
	Scan(ctx context.Context, r state.Read, f func(state.Record) error) error
	GetMany(ctx context.Context, ids []string, r state.Read) (map[string]state.Record, error)
	Keys(ctx context.Context, bucket, prefix, after string, f func(key string) error) error
}

// worker processes one object event, as the Lambda does.
type worker interface {
	Process(ctx context.Context, requestID string, ev trigger.ObjectEvent) processor.Result
	Current(key, recipeVersion string) bool
	Keys() processor.Keys
}

var (
	_ objectStore = (*storage.Store)(nil)
	_ stateStore  = (*state.Store)(nil)
	_ worker      = (*processor.Processor)(nil)
)

// Ops runs operator commands for one deployment.
type Ops struct {
	cfg     processor.Config
	objects objectStore
	states  stateStore
	proc    worker
	now     func() time.Time
	// Timeout bounds one object's processing, as the Lambda timeout does (its claim's lease
	// follows it).
	Timeout time.Duration
	// Segments is how many segments of the state table a scan reads in parallel.
	Segments int
}

// New wires the operator commands to a processor built from cfg.
func New(cfg processor.Config, objects objectStore, states stateStore, proc worker) *Ops {
	return &Ops{cfg: cfg, objects: objects, states: states, proc: proc, now: time.Now, Timeout: 5 * time.Minute, Segments: 4}
}

// Tally is what a command did, by kind; safe for concurrent use.
type Tally struct {
	Total       atomic.Int64 // known once listing ends
	Done        atomic.Int64 // processed now
	Skipped     atomic.Int64 // nothing to do (already done, duplicate, gone)
	Quarantined atomic.Int64
	Failed      atomic.Int64 // transient: run again later
}

// Kind is one counter of a Tally.
type Kind string

// Kinds.
const (
	KindDone        Kind = "done"
	KindSkipped     Kind = "skipped"
	KindQuarantined Kind = "quarantined"
	KindFailed      Kind = "failed"
)

func (t *Tally) add(k Kind) {
	switch k {
	case KindDone:
		t.Done.Add(1)
	case KindSkipped:
		t.Skipped.Add(1)
	case KindQuarantined:
		t.Quarantined.Add(1)
	case KindFailed:
		t.Failed.Add(1)
	}
}

// Counts is a snapshot of a Tally.
type Counts struct {
	Total       int64 `json:"total"`
	Done        int64 `json:"done"`
	Skipped     int64 `json:"skipped"`
	Quarantined int64 `json:"quarantined"`
	Failed      int64 `json:"failed"`
}

// Snapshot reads the counters.
func (t *Tally) Snapshot() Counts {
	return Counts{t.Total.Load(), t.Done.Load(), t.Skipped.Load(), t.Quarantined.Load(), t.Failed.Load()}
}

// Progress hears about every finished item; the CLI draws its bar from it. Nil is allowed.
type Progress interface {
	SetTotal(n int64)
	Finished(k Kind, key string, res processor.Result)
}

// kindOf maps a processor outcome onto a counter.
func kindOf(o processor.Outcome) Kind {
	switch o {
	case processor.Succeeded, processor.Removed:
		return KindDone
	case processor.Quarantined:
		return KindQuarantined
	case processor.Failed:
		return KindFailed
	}
	return KindSkipped
}

// job is one event to process.
type job struct {
	ev   trigger.ObjectEvent
	done func() // called once the job is handled (not failed transiently); may be nil
}

func (j job) finish() {
	if j.done != nil {
		j.done()
	}
}

// dispatch starts consume on a channel of jobs and returns send, which hands it one job (false
// once ctx has ended: the caller stops feeding), and wait, which ends the feed and waits for
// consume to finish.
func dispatch(ctx context.Context, consume func(<-chan job)) (send func(job) bool, wait func()) {
	jobs := make(chan job)
	done := make(chan struct{})
	go func() {
		defer close(done)
		consume(jobs)
	}()
	send = func(j job) bool {
		select {
		case jobs <- j:
			return true
		case <-ctx.Done():
			return false
		}
	}
	wait = func() {
		close(jobs)
		<-done
	}
	return send, wait
}

// runJobs processes jobs from in with n workers until in is closed or ctx ends; an item already
// started finishes even after ctx ends (a clean stop), the rest are left for the next run. A rate
// above zero spaces the starts to at most that many per second.
func (o *Ops) runJobs(ctx context.Context, in <-chan job, n int, rate float64, tally *Tally, prog Progress) {
	var tick <-chan time.Time
	if rate > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer t.Stop()
		tick = t.C
	}
	var (
		wg  sync.WaitGroup
		seq atomic.Int64
	)
	for range max(n, 1) {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case j, ok := <-in:
					if !ok {
						return
					}
					if tick != nil {
						select {
						case <-tick:
						case <-ctx.Done():
							return
						}
					}
					// Finish what was started even if the operator stops the run, but not past the
					// run's own deadline (a Lambda's), which the claim's lease then follows.
					deadline := o.now().Add(o.Timeout)
					if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
						deadline = dl
					}
					ictx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
					res := o.proc.Process(ictx, fmt.Sprintf("ops-%d-%d", o.now().UnixNano(), seq.Add(1)), j.ev)
					cancel()
					k := kindOf(res.Outcome)
					if k != KindFailed {
						j.finish() // a failed one is to do again: a resumed listing must reach it
					}
					tally.add(k)
					if prog != nil {
						prog.Finished(k, j.ev.Key, res)
					}
				}
			}
		})
	}
	wg.Wait()
}

// resultOf describes a record that needed no work, for Progress.
func resultOf(rec state.Record) processor.Result {
	return processor.Result{Bucket: rec.Bucket, Key: rec.Key, Outcome: processor.Duplicate, Reason: rec.Reason,
		Detail: "already " + string(rec.Status) + " for this content and recipe"}
}

func resultOfFix(f Finding, k Kind) processor.Result {
	return processor.Result{Bucket: f.Bucket, Key: f.Key, Detail: string(f.Kind) + ": " + string(k)}
}
