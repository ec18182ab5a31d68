package state_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/sluice-dev/sluice/pkg/state"
)

// seed writes n records, every third QUARANTINED with a reason, the rest SUCCEEDED, each with an
// audit trail a projection leaves behind.
func seed(t *testing.T, st *state.Store, n int) {
	t.Helper()
	for i := range n {
		rec := state.Record{ID: state.ID("b", fmt.Sprintf("k/%04d", i)), Bucket: "b", Key: fmt.Sprintf("k/%04d", i), Status: state.Succeeded, DurationMS: int64(i + 1),
			History: []state.Transition{{RequestID: "r", From: state.Processing, To: state.Succeeded}}}
		if i%3 == 0 {
			rec.Status, rec.Reason = state.Quarantined, "corrupt"
		}
		if _, err := st.Create(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
	}
}

// A parallel, projected scan visits every record once, reads only the fields asked for, and
// never calls its callback concurrently; a status filter hands back only that status.
func TestScanSegmentsProjectionAndFilter(t *testing.T) {
	st := newStore(t)
	const n = 250
	seed(t, st, n)
	ctx := context.Background()
	seen := map[string]int{}
	var inside atomic.Int32
	err := st.Scan(ctx, state.Read{Fields: []string{"key", "status"}, Segments: 4}, func(r state.Record) error {
		if inside.Add(1) != 1 {
			t.Error("the callback ran concurrently")
		}
		defer inside.Add(-1)
		seen[r.Key]++
		if r.Status == "" || r.Bucket != "" || r.DurationMS != 0 || r.History != nil {
			t.Errorf("projection not applied: %+v", r)
		}
		return nil
	})
	if err != nil || len(seen) != n {
		t.Fatalf("scan: %v; %d distinct records of %d", err, len(seen), n)
	}
	for k, c := range seen {
		if c != 1 {
			t.Errorf("%s seen %d times", k, c)
		}
	}
	quarantined := 0
	err = st.Scan(ctx, state.Read{Fields: []string{"status", "reason"}, Status: state.Quarantined, Segments: 3}, func(r state.Record) error {
		if r.Status != state.Quarantined || r.Reason != "corrupt" {
			t.Errorf("filtered scan handed back %+v", r)
		}
		quarantined++
		return nil
	})
	if want := (n + 2) / 3; err != nil || quarantined != want {
		t.Errorf("filtered scan: %v; %d records, want %d", err, quarantined, want)
	}
}

// The callback's error stops every segment and is what Scan returns.
func TestScanStopsAtTheCallbacksError(t *testing.T) {
	st := newStore(t)
	seed(t, st, 40)
	stop := errors.New("stop")
	calls := 0
	err := st.Scan(context.Background(), state.Read{Segments: 4}, func(state.Record) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("err %v after %d calls, want %v after 1", err, calls, stop)
	}
}

// GetMany reads more ids than one BatchGetItem takes, leaves out those without a record and
// applies the projection.
func TestGetManyBatches(t *testing.T) {
	st := newStore(t)
	const n = 230
	seed(t, st, n)
	var ids []string
	for i := range n + 5 {
		ids = append(ids, state.ID("b", fmt.Sprintf("k/%04d", i)))
	}
	recs, err := st.GetMany(context.Background(), ids, state.Read{Fields: []string{"status"}})
	if err != nil || len(recs) != n {
		t.Fatalf("GetMany: %v; %d records, want %d", err, len(recs), n)
	}
	r := recs[state.ID("b", "k/0003")]
	if r.Status != state.Quarantined || r.ID != state.ID("b", "k/0003") || r.Key != "" || r.History != nil {
		t.Errorf("record %+v", r)
	}
}
