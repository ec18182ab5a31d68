package ops

import (
	"context"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/pkg/state"
)

// announcer tells downstream systems about outcomes (pkg/announce).
type announcer interface {
	Announce(ctx context.Context, recs []state.Record) error
}

// ReplayOptions chooses the outcomes to announce again.
type ReplayOptions struct {
	Bucket string    // the staging bucket ("" for every bucket's)
	Prefix string    // only sources under it
	Since  time.Time // only outcomes recorded at or after it (zero for all)
}

// replayBatch is how many outcomes a replay announces at once (one PutEvents call).
const replayBatch = 10

// Replay announces again, through a, every outcome (SUCCEEDED, QUARANTINED, DELETED) the scan
// finds that opt selects, announced before or not: each under the id it was first announced
// with, so consumers that dedupe see only what they missed. It holds ten records at a time and
// returns how many it announced.
func (o *Ops) Replay(ctx context.Context, a announcer, opt ReplayOptions) (int, error) {
	var (
		batch []state.Record
		n     int
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := a.Announce(ctx, batch); err != nil {
			return err
		}
		n += len(batch)
		batch = batch[:0]
		return nil
	}
	err := o.states.Scan(ctx, state.Read{Fields: replayFields, Segments: o.Segments}, func(r state.Record) error {
		if !r.Outcome() || (opt.Bucket != "" && r.Bucket != opt.Bucket) || !strings.HasPrefix(r.Key, opt.Prefix) || r.UpdatedAt.Before(opt.Since) {
			return nil
		}
		batch = append(batch, r)
		if len(batch) < replayBatch {
			return nil
		}
		return flush()
	})
	if err == nil {
		err = flush()
	}
	return n, err
}

// replayFields are the attributes an announcement reads of a record (pkg/announce.DetailOf).
var replayFields = []string{"bucket", "key", "status", "object_version", "object_etag", "object_size", "sequencer",
	"recipe_version", "claim_token", "manifest_key", "outputs", "reason", "message", "updated_at"}
