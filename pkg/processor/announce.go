package processor

import (
	"context"
	"errors"
	"fmt"

	"github.com/sluice-dev/sluice/pkg/failure"
	"github.com/sluice-dev/sluice/pkg/metrics"
	"github.com/sluice-dev/sluice/pkg/state"
)

// announce announces the outcome the run committed, or found committed but not announced (a
// duplicate delivery repairs a worker that died between its commit and its announcement), then
// records that it did. An announcement that fails turns the result into a failure to retry: the
// next delivery finds the outcome unannounced and announces it. A record changed since (a newer
// claim) is left to its writer, who announces its own outcome.
func (r *run) announce(res *Result) {
	switch {
	case r.p.announcer == nil, !r.rec.Unannounced():
		return
	case res.Outcome != Succeeded && res.Outcome != Quarantined && res.Outcome != Removed && res.Outcome != Duplicate:
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), finishTimeout)
	defer cancel()
	r.ctx = ctx
	err := r.stage("Announce", func(ctx context.Context) error { return r.p.announcer.Announce(ctx, []state.Record{r.rec}) })
	if err != nil {
		r.m.Add("AnnounceFailed", metrics.Count, 1)
		res.Outcome, res.Err = Failed, failure.Transient(fmt.Errorf("%s committed, not announced: %w", r.rec.Status, err))
		return
	}
	r.m.Add("Announced", metrics.Count, 1)
	if err := r.p.states.MarkAnnounced(ctx, r.rec); err != nil && !errors.Is(err, state.ErrConflict) {
		// The event is out; the record will have it announced again, under the same id.
		r.log.Warn("announced, but not recorded as announced", "err", err)
	}
}
