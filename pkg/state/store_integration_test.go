package state_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/pkg/state"
	"github.com/sluice-dev/sluice/pkg/testenv"
)

func newStore(t *testing.T) *state.Store {
	env := testenv.Open(t)
	return state.New(env.DDB, env.Table(t, state.TableDefinition), 0)
}

func TestCreateIsConditional(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	rec := state.Record{ID: state.ID("b", "k"), Bucket: "b", Key: "k", Status: state.Processing}
	if _, err := st.Create(ctx, rec); err != nil {
		t.Fatalf("first create: %v", err)
	}
	_, err := st.Create(ctx, rec)
	if !errors.Is(err, state.ErrConflict) {
		t.Fatalf("second create: err = %v, want state.ErrConflict", err)
	}
}

func claimReq(token string, lease time.Time) state.ClaimRequest {
	return state.ClaimRequest{
		Bucket: "b", Key: "photo.jpg", ObjectVersion: "v1", ObjectETag: "e1", RecipeVersion: "r1",
		RequestID: "req-" + token, Token: token, LeaseUntil: lease, MaxAttempts: 3,
	}
}

func TestClaimFinishAndLeaseLoss(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := func() time.Time { return now }

	v, first, err := st.Claim(ctx, claimReq("a", now.Add(time.Minute)), clock)
	if err != nil || v != state.Claim {
		t.Fatalf("first claim: %v %v", v, err)
	}
	if v, _, err := st.Claim(ctx, claimReq("b", now.Add(time.Minute)), clock); err != nil || v != state.Busy {
		t.Fatalf("claim during a live lease: %v %v, want busy", v, err)
	}
	// The lease runs out; a second worker takes over.
	now = now.Add(2 * time.Minute)
	v, second, err := st.Claim(ctx, claimReq("b", now.Add(time.Minute)), clock)
	if err != nil || v != state.Claim || second.Attempts != 2 {
		t.Fatalf("claim after expiry: %v attempts=%d %v", v, second.Attempts, err)
	}
	// The first worker wakes up: it cannot complete.
	if _, err := st.Finish(ctx, first, state.Succeeded, "", now); !errors.Is(err, state.ErrLeaseLost) {
		t.Fatalf("stale finish: err = %v, want ErrLeaseLost", err)
	}
	done, err := st.Finish(ctx, second, state.Succeeded, "", now)
	if err != nil {
		t.Fatalf("owner's finish: %v", err)
	}
	got, found, err := st.Get(ctx, done.ID)
	if err != nil || !found || got.Status != state.Succeeded || got.Rev != done.Rev {
		t.Fatalf("stored %+v found=%v err=%v", got, found, err)
	}
	if n := len(got.History); n != 3 || got.History[n-1].To != state.Succeeded {
		t.Fatalf("history = %+v, want 3 transitions ending SUCCEEDED", got.History)
	}
	if v, _, err := st.Claim(ctx, claimReq("c", now.Add(time.Minute)), clock); err != nil || v != state.Duplicate {
		t.Fatalf("claim of finished work: %v %v, want duplicate", v, err)
	}
}
