package processor

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/sluice-dev/sluice/pkg/announce"
	"github.com/sluice-dev/sluice/pkg/awsclient"
	"github.com/sluice-dev/sluice/pkg/cdn"
	"github.com/sluice-dev/sluice/pkg/failure"
	"github.com/sluice-dev/sluice/pkg/metrics"
	"github.com/sluice-dev/sluice/pkg/state"
)

// announcer tells downstream systems about outcomes (pkg/announce).
type announcer interface {
	Announce(ctx context.Context, recs []state.Record) error
}

// invalidator drops replaced objects from a CDN's caches (pkg/cdn).
type invalidator interface {
	Invalidate(ctx context.Context, ref string, keys []string) error
}

var (
	_ announcer   = (*announce.Bus)(nil)
	_ invalidator = (*cdn.Invalidator)(nil)
)

// WithAnnouncer announces each outcome the processor commits (and one it finds committed but
// not announced) through a, and records on the state record that it did.
func (p *Processor) WithAnnouncer(a announcer) *Processor {
	p.announcer = a
	return p
}

// WithCDN invalidates, through c, the manifest an outcome replaced or removed, before the
// outcome is announced.
func (p *Processor) WithCDN(c invalidator) *Processor {
	p.cdn = c
	return p
}

// WithDownstream wires, on SDK clients from awsCfg, what the configuration asks to be told of
// each outcome: the EventBridge bus (EVENT_BUS_NAME) and the CloudFront distribution
// (CLOUDFRONT_DISTRIBUTION_ID).
func (p *Processor) WithDownstream(awsCfg aws.Config) *Processor {
	if p.cfg.EventBus != "" {
		p.WithAnnouncer(announce.NewBus(awsclient.EventBridge(awsCfg), p.cfg.EventBus))
	}
	if p.cfg.Distribution != "" {
		p.WithCDN(cdn.New(awsclient.CloudFront(awsCfg), p.cfg.Distribution))
	}
	return p
}

// announce tells downstream of the outcome the run committed, or found committed but not
// announced (a duplicate delivery repairs a worker that died between its commit and its
// announcement): the CDN invalidation and the event (tell), then records that it did. An
// announcement that fails turns the result into a failure to retry: the next delivery finds the
// outcome unannounced and announces it. A record changed since (a newer claim) is left to its
// writer, who announces its own outcome.
func (r *run) announce(res *Result) {
	switch {
	case r.p.announcer == nil && r.p.cdn == nil, !r.rec.Unannounced():
		return
	case res.Outcome != Succeeded && res.Outcome != Quarantined && res.Outcome != Removed && res.Outcome != Duplicate:
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), finishTimeout)
	defer cancel()
	r.ctx = ctx
	err := r.stage("Announce", func(ctx context.Context) error { return r.tell(ctx) })
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

// tell invalidates the manifest the outcome replaced or removed, if a CDN is wired and it did,
// then puts the outcome's event, if a bus is wired. Both are named by the outcome's id, so doing
// them again (a duplicate delivery, a repair) changes nothing downstream.
func (r *run) tell(ctx context.Context) error {
	if r.p.cdn != nil && r.rec.Replaced {
		if err := r.p.cdn.Invalidate(ctx, r.rec.OutcomeID(), []string{r.p.Keys().Manifest(r.rec.Key)}); err != nil {
			return err
		}
		r.m.Add("Invalidations", metrics.Count, 1)
	}
	if r.p.announcer == nil {
		return nil
	}
	return r.p.announcer.Announce(ctx, []state.Record{r.rec})
}
