// Package reconciler is the scheduled Lambda that keeps a deployment consistent without an
// operator: each run reconciles the staging bucket, the state table and the outputs (pkg/ops),
// repairs up to a bounded number of findings the way a delivery would (so MAX_ATTEMPTS still
// stops a file that keeps failing), and emits one metric per finding kind. It changes state only
// through the processor's conditional claims, so it is idempotent and safe to run while the
// processor works, or twice at once.
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
}

// LoadConfig reads the configuration from getenv, reporting every problem at once.
func LoadConfig(getenv func(string) string) (Config, error) {
	var errs []error
	pc, err := processor.LoadConfig(getenv)
	if err != nil {
		errs = append(errs, err)
	}
	c := Config{Processor: pc, StagingBucket: strings.TrimSpace(getenv("STAGING_BUCKET")), UploadPrefix: strings.TrimSpace(getenv("UPLOAD_PREFIX")), MaxFixes: 500, Concurrency: 4}
	if c.StagingBucket == "" {
		errs = append(errs, errors.New("STAGING_BUCKET is required"))
	}
	if c.UploadPrefix == "" {
		c.UploadPrefix = "uploads/"
	}
	for name, dst := range map[string]*int{"RECONCILE_MAX_FIXES": &c.MaxFixes, "RECONCILE_CONCURRENCY": &c.Concurrency} {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 100_000 {
				errs = append(errs, fmt.Errorf("%s=%q: want a whole number from 0 to 100000", name, v))
				continue
			}
			*dst = n
		}
	}
	return c, errors.Join(errs...)
}

// FromEnv is LoadConfig on the process environment.
func FromEnv() (Config, error) { return LoadConfig(os.Getenv) }

// Reconciler runs one reconciliation per invocation.
type Reconciler struct {
	cfg     Config
	ops     *ops.Ops
	log     *slog.Logger
	metrics *metrics.Emitter
}

// New wires a reconciler.
func New(cfg Config, o *ops.Ops, log *slog.Logger, m *metrics.Emitter) *Reconciler {
	return &Reconciler{cfg: cfg, ops: o, log: log, metrics: m}
}

// Summary is what a run found and did.
type Summary struct {
	Findings map[ops.FindingKind]int `json:"findings"`
	Fixed    ops.Counts              `json:"fixed"`
	Deferred int                     `json:"deferred"` // found but left for the next run (RECONCILE_MAX_FIXES)
}

// Handle is the Lambda entry point; the scheduled event's content does not matter.
func (r *Reconciler) Handle(ctx context.Context, _ json.RawMessage) (Summary, error) {
	findings, err := r.ops.Reconcile(ctx, r.cfg.StagingBucket, r.cfg.UploadPrefix)
	if err != nil {
		return Summary{}, err
	}
	sum := Summary{Findings: map[ops.FindingKind]int{}}
	m := metrics.NewSet()
	for _, f := range findings {
		sum.Findings[f.Kind]++
		r.log.Info("finding", "kind", f.Kind, "bucket", f.Bucket, "key", f.Key, "detail", f.Detail)
	}
	for kind, n := range sum.Findings {
		m.Add("Reconcile_"+string(kind), metrics.Count, float64(n))
	}
	todo := findings[:min(len(findings), r.cfg.MaxFixes)]
	sum.Deferred = len(findings) - len(todo)
	sum.Fixed, err = r.ops.Fix(ctx, r.cfg.StagingBucket, r.cfg.UploadPrefix, todo, ops.FixOptions{Concurrency: r.cfg.Concurrency}, nil)
	m.Add("ReconcileFindings", metrics.Count, float64(len(findings)))
	m.Add("ReconcileFixed", metrics.Count, float64(sum.Fixed.Done))
	m.Add("ReconcileFixFailed", metrics.Count, float64(sum.Fixed.Failed))
	if ferr := r.metrics.Flush(m); ferr != nil {
		r.log.Warn("metrics flush failed", "err", ferr)
	}
	r.log.Info("reconciled", "findings", len(findings), "fixed", sum.Fixed.Done, "quarantined", sum.Fixed.Quarantined,
		"failed", sum.Fixed.Failed, "deferred", sum.Deferred)
	return sum, err
}
