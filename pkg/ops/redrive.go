package ops

import (
	"context"
	"errors"
	"fmt"

	"github.com/sluice-dev/sluice/pkg/state"
	"github.com/sluice-dev/sluice/pkg/trigger"
)

// RedriveOptions chooses the records to process again: QUARANTINED (optionally only one
// reason) or FAILED.
type RedriveOptions struct {
	Status      state.Status
	Reason      string
	Rate        float64 // starts per second; 0 is unlimited
	Concurrency int
}

// Redrive processes the chosen records again, as if uploaded anew (attempts start from one), at
// most opt.Rate per second, as the scan finds them: it holds no list of them, so the total its
// progress shows grows until the scan ends. A file that now passes (a limit was raised, a bug fixed) is
// published and its quarantine copy removed; one that fails again is quarantined again.
func (o *Ops) Redrive(ctx context.Context, opt RedriveOptions, prog Progress) (Counts, error) {
	if opt.Status != state.Quarantined && opt.Status != state.Failed {
		return Counts{}, fmt.Errorf("redrive %s: want QUARANTINED or FAILED", opt.Status)
	}
	var tally Tally
	send, wait := dispatch(ctx, func(in <-chan job) { o.runJobs(ctx, in, opt.Concurrency, opt.Rate, &tally, prog) })
	err := o.states.Scan(ctx, state.Read{Fields: redriveFields, Status: opt.Status, Segments: o.Segments}, func(r state.Record) error {
		if opt.Reason != "" && r.Reason != opt.Reason {
			return nil
		}
		total := tally.Total.Add(1)
		if prog != nil {
			prog.SetTotal(total)
		}
		if !send(job{ev: trigger.ObjectEvent{Action: trigger.Created, Name: "sluice:Redrive", Bucket: r.Bucket, Key: r.Key, Redrive: true}}) {
			return ctx.Err()
		}
		return nil
	})
	wait()
	if err != nil {
		return tally.Snapshot(), err
	}
	return tally.Snapshot(), ctx.Err()
}

// redriveFields are the attributes a redrive reads of each record.
var redriveFields = []string{"bucket", "key", "status", "reason"}

// ErrNoRecord is returned by Status for a key with no state record.
var ErrNoRecord = errors.New("no state record")

// Status reads one source's record, with its audit trail.
func (o *Ops) Status(ctx context.Context, bucket, key string) (state.Record, error) {
	rec, found, err := o.states.Get(ctx, state.ID(bucket, key))
	if err != nil {
		return state.Record{}, err
	}
	if !found {
		return state.Record{}, fmt.Errorf("s3://%s/%s: %w", bucket, key, ErrNoRecord)
	}
	return rec, nil
}
