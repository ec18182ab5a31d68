// Package reconciler is the scheduled Lambda that keeps a deployment consistent without an
// operator. Each run carries a reconciliation pass (pkg/ops) forward from the cursor the last run
// saved in the state table: it stops at RECONCILE_MAX_FIXES findings or halfway through its
// time, repairs what it found the way a delivery would (so MAX_ATTEMPTS still stops a file that
// keeps failing), most urgent first, and only then saves the cursor, so a run that dies is
// redone. Its memory is a page of objects, whatever the bucket holds. It emits one metric per
// finding kind. It changes state only through the processor's conditional claims, so it is
// idempotent and safe to run while the processor works, or twice at once.
package reconciler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/pkg/metrics"
	"github.com/sluice-dev/sluice/pkg/ops"
	"github.com/sluice-dev/sluice/pkg/processor"
)

// Config is the reconciler's configuration: the processor's, plus where the uploads are and how
// much one run may repair.
type Config struct {
	Processor     processor.Config
	StagingBucket string
	UploadPrefix  string
	MaxFixes      int
	Concurrency   int
	SamplePercent int // of SUCCEEDED records whose outputs a pass HEADs (besides those changed)
}

// LoadConfig reads the configuration from getenv, reporting every problem at once.
func LoadConfig(getenv func(string) string) (Config, error) {
	var errs []error
	pc, err := processor.LoadConfig(getenv)
	if err != nil {
		errs = append(errs, err)
	}
	c := Config{Processor: pc, StagingBucket: strings.TrimSpace(getenv("STAGING_BUCKET")), UploadPrefix: strings.TrimSpace(getenv("UPLOAD_PREFIX")), MaxFixes: 500, Concurrency: 4, SamplePercent: 5}
	if c.StagingBucket == "" {
		errs = append(errs, errors.New("STAGING_BUCKET is required"))
	}
	if c.UploadPrefix == "" {
		c.UploadPrefix = "uploads/"
	}
	for name, dst := range map[string]*int{"RECONCILE_MAX_FIXES": &c.MaxFixes, "RECONCILE_CONCURRENCY": &c.Concurrency, "RECONCILE_SAMPLE_PERCENT": &c.SamplePercent} {
		ceiling := 100_000
		if name == "RECONCILE_SAMPLE_PERCENT" {
			ceiling = 100
		}
		if v := strings.TrimSpace(getenv(name)); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > ceiling {
				errs = append(errs, fmt.Errorf("%s=%q: want a whole number from 0 to %d", name, v, ceiling))
				continue
			}
			*dst = n
		}
	}
	return c, errors.Join(errs...)
}

// FromEnv is LoadConfig on the process environment.
func FromEnv() (Config, error) { return LoadConfig(os.Getenv) }

// checkpoints keep the pass's cursor between runs (state.Store does, in the state table).
type checkpoints interface {
	LoadCheckpoint(ctx context.Context, name string, v any) (bool, error)
	SaveCheckpoint(ctx context.Context, name string, v any, now time.Time) error
}

// Reconciler carries a reconciliation pass forward, one run per invocation.
type Reconciler struct {
	cfg     Config
	ops     *ops.Ops
	cps     checkpoints
	log     *slog.Logger
	metrics *metrics.Emitter
}

// New wires a reconciler.
func New(cfg Config, o *ops.Ops, cps checkpoints, log *slog.Logger, m *metrics.Emitter) *Reconciler {
	return &Reconciler{cfg: cfg, ops: o, cps: cps, log: log, metrics: m}
}

// Summary is what a run found and did, and where the pass stands.
type Summary struct {
	Findings map[ops.FindingKind]int `json:"findings"`
	Fixed    ops.Counts              `json:"fixed"`
	Cursor   ops.Cursor              `json:"cursor"` // phase "done": the pass is complete
}

// Handle is the Lambda entry point; the scheduled event's content does not matter.
func (r *Reconciler) Handle(ctx context.Context, _ json.RawMessage) (Summary, error) {
	name := "reconcile/" + r.cfg.StagingBucket + "/" + r.cfg.UploadPrefix
	var from ops.Cursor
	if _, err := r.cps.LoadCheckpoint(ctx, name, &from); err != nil {
		return Summary{}, err
	}
	opt := ops.ReconcileOptions{SamplePercent: r.cfg.SamplePercent, MaxFindings: r.cfg.MaxFixes}
	if dl, ok := ctx.Deadline(); ok {
		opt.Until = time.Now().Add(time.Until(dl) / 2) // the other half is for the repairs
	}
	findings, next, err := r.ops.ReconcileFrom(ctx, r.cfg.StagingBucket, r.cfg.UploadPrefix, from, opt)
	if err != nil {
		return Summary{}, err
	}
	sum := Summary{Findings: map[ops.FindingKind]int{}, Cursor: next}
	m := metrics.NewSet()
	for _, f := range findings {
		sum.Findings[f.Kind]++
		r.log.Info("finding", "kind", f.Kind, "bucket", f.Bucket, "key", f.Key, "detail", f.Detail)
	}
	for kind, n := range sum.Findings {
		m.Add("Reconcile_"+string(kind), metrics.Count, float64(n))
	}
	if r.cfg.MaxFixes > 0 { // 0: report only
		sum.Fixed, err = r.ops.Fix(ctx, r.cfg.StagingBucket, r.cfg.UploadPrefix, findings, ops.FixOptions{Concurrency: r.cfg.Concurrency}, nil)
	}
	if err == nil {
		// Only now: a run that dies before its repairs are done is redone from the old cursor.
		err = r.cps.SaveCheckpoint(ctx, name, next, time.Now())
	}
	m.Add("ReconcileFindings", metrics.Count, float64(len(findings)))
	m.Add("ReconcileFixed", metrics.Count, float64(sum.Fixed.Done))
	m.Add("ReconcileFixFailed", metrics.Count, float64(sum.Fixed.Failed))
	if ferr := r.metrics.Flush(m); ferr != nil {
		r.log.Warn("metrics flush failed", "err", ferr)
	}
	r.log.Info("reconciled", "findings", len(findings), "fixed", sum.Fixed.Done, "quarantined", sum.Fixed.Quarantined,
		"failed", sum.Fixed.Failed, "phase", next.Phase, "after", next.After, "pass", next.Pass)
	return sum, err
}
