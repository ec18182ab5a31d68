package state

import (
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	req := ClaimRequest{Bucket: "b", Key: "k", ObjectVersion: "v2", RecipeVersion: "r1", RequestID: "req", Token: "t", LeaseUntil: now.Add(time.Minute), MaxAttempts: 3}
	rec := func(status Status, version, recipe string, attempts int, lease time.Time) *Record {
		return &Record{ID: "b/k", Status: status, ObjectVersion: version, RecipeVersion: recipe, Attempts: attempts, LeaseExpires: lease, Rev: 7}
	}
	cases := []struct {
		name     string
		prev     *Record
		want     Verdict
		attempts int
	}{
		{"no record", nil, Claim, 1},
		{"succeeded, same work", rec(Succeeded, "v2", "r1", 1, time.Time{}), Duplicate, 0},
		{"quarantined, same work", rec(Quarantined, "v2", "r1", 1, time.Time{}), Duplicate, 0},
		{"succeeded, older version", rec(Succeeded, "v1", "r1", 1, time.Time{}), Claim, 1},
		{"succeeded, older recipe", rec(Succeeded, "v2", "r0", 1, time.Time{}), Claim, 1},
		{"processing, live lease", rec(Processing, "v2", "r1", 1, now.Add(time.Second)), Busy, 0},
		{"processing, live lease, other version", rec(Processing, "v1", "r1", 1, now.Add(time.Second)), Busy, 0},
		{"processing, expired lease", rec(Processing, "v2", "r1", 1, now.Add(-time.Second)), Claim, 2},
		{"failed, attempts left", rec(Failed, "v2", "r1", 2, time.Time{}), Claim, 3},
		{"failed, attempts used up", rec(Failed, "v2", "r1", 3, time.Time{}), Exhausted, 0},
		{"crashed, attempts used up", rec(Processing, "v2", "r1", 3, now.Add(-time.Second)), Exhausted, 0},
		{"failed, new version resets attempts", rec(Failed, "v1", "r1", 3, time.Time{}), Claim, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, next := Decide(c.prev, req, now)
			if got != c.want {
				t.Fatalf("verdict %s, want %s", got, c.want)
			}
			if got != Claim {
				return
			}
			if next.Status != Processing || next.Attempts != c.attempts || next.ClaimToken != "t" || next.LeaseOwner != "req" ||
				!next.LeaseExpires.Equal(req.LeaseUntil) || next.ObjectVersion != "v2" || next.RecipeVersion != "r1" {
				t.Fatalf("claimed record %+v", next)
			}
			if n := len(next.History); n == 0 || next.History[n-1].To != Processing {
				t.Fatalf("history %+v", next.History)
			}
		})
	}
}

func TestHistoryIsBounded(t *testing.T) {
	var r Record
	for i := range MaxHistory + 5 {
		r.transition(Processing, "req", "", time.Unix(int64(i), 0))
	}
	if len(r.History) != MaxHistory || r.History[MaxHistory-1].At.Unix() != MaxHistory+4 {
		t.Fatalf("history has %d entries, last at %v", len(r.History), r.History[len(r.History)-1].At)
	}
}
