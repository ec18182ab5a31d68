package state

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	req := ClaimRequest{Bucket: "b", Key: "k", ObjectVersion: "v2", RecipeVersion: "r1", RequestID: "req", Token: "t", LeaseUntil: now.Add(time.Minute), MaxAttempts: 3}
	rec := func(status Status, version, recipe string, attempts int, lease time.Time) *Record {
		return &Record{ID: "b/k", Status: status, ObjectVersion: version, RecipeVersion: recipe, Attempts: attempts, LeaseExpires: lease, Rev: 7, ClaimToken: "prev"}
	}
	progressed := func(r *Record, by string) *Record {
		r.Progress = &Progress{Token: by, Gen: "g", Data: "{}"}
		return r
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
		{"failed, attempts used up", rec(Failed, "v2", "r1", 3, time.Time{}), Exhausted, 3},
		{"crashed, attempts used up", rec(Processing, "v2", "r1", 3, now.Add(-time.Second)), Exhausted, 3},
		{"failed, new version resets attempts", rec(Failed, "v1", "r1", 3, time.Time{}), Claim, 1},
		{"deleted, same content re-created", rec(Deleted, "v2", "r1", 3, time.Time{}), Claim, 1},
		{"removing, live lease: the re-upload waits", rec(Removing, "v1", "r1", 1, now.Add(time.Second)), Busy, 0},
		{"removing, the remover died", rec(Removing, "v2", "r1", 3, now.Add(-time.Second)), Claim, 1},
		{"paused with progress: no attempt used", progressed(rec(Failed, "v2", "r1", 3, time.Time{}), "prev"), Claim, 3},
		{"killed after progress: no attempt used", progressed(rec(Processing, "v2", "r1", 2, now.Add(-time.Second)), "prev"), Claim, 2},
		{"no progress since an earlier claim's: counts", progressed(rec(Failed, "v2", "r1", 2, time.Time{}), "older"), Claim, 3},
		{"no progress, attempts used up", progressed(rec(Failed, "v2", "r1", 3, time.Time{}), "older"), Exhausted, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, next := Decide(c.prev, req, now)
			if got != c.want {
				t.Fatalf("verdict %s, want %s", got, c.want)
			}
			if got != Claim && got != Exhausted {
				return
			}
			if next.Status != Processing || next.Attempts != c.attempts || next.ClaimToken != "t" || next.LeaseOwner != "req" ||
				!next.LeaseExpires.Equal(req.LeaseUntil) || next.ObjectVersion != "v2" || next.RecipeVersion != "r1" {
				t.Fatalf("claimed record %+v", next)
			}
			if n := len(next.History); n == 0 || next.History[n-1].To != Processing {
				t.Fatalf("history %+v", next.History)
			}
			if keep := c.prev != nil && c.prev.ObjectVersion == "v2" && c.prev.Status != Deleted && c.prev.Status != Removing; (next.Progress != nil) != (keep && c.prev.Progress != nil) {
				t.Fatalf("progress %+v kept from %+v", next.Progress, c.prev)
			}
			if c.prev != nil && next.Fence <= c.prev.Fence {
				t.Fatalf("fence %d does not grow past %d", next.Fence, c.prev.Fence)
			}
		})
	}
}

// A claim's fence grows past the record's, and past anything an expired record of the same key
// handed out (the clock), so a stale writer's fence never beats a later claim's.
func TestFenceGrowsAcrossLifetimes(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	req := ClaimRequest{Bucket: "b", Key: "k", ObjectVersion: "v1", RecipeVersion: "r1", RequestID: "req", Token: "t", LeaseUntil: now.Add(time.Minute), MaxAttempts: 3}
	_, first := Decide(nil, req, now.Add(-48*time.Hour)) // a record long expired by TTL
	_, fresh := Decide(nil, req, now)                    // the key's next record starts again
	if fresh.Fence <= first.Fence {
		t.Fatalf("a new record's fence %d is not above an expired one's %d", fresh.Fence, first.Fence)
	}
	ahead := Record{ID: "b/k", Status: Failed, ObjectVersion: "v1", RecipeVersion: "r1", Attempts: 1, Fence: now.UnixMicro() + 5}
	if _, next := Decide(&ahead, req, now); next.Fence != ahead.Fence+1 {
		t.Fatalf("fence %d after %d (a clock behind the last claim's)", next.Fence, ahead.Fence)
	}
	_, rm := DecideRemove(&ahead, RemoveRequest{Bucket: "b", Key: "k", RequestID: "rm", Token: "r"}, now)
	if rm.Fence != ahead.Fence+1 {
		t.Fatalf("removal fence %d after %d", rm.Fence, ahead.Fence)
	}
}

func TestMayDeleteEvidence(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		rec  *Record
		gen  string
		want bool
	}{
		{"the record's evidence", &Record{Status: Quarantined, QuarantineGen: "g1", ClaimToken: "g1"}, "g1", false},
		{"evidence of a quarantine redriven since", &Record{Status: Processing, QuarantineGen: "g1", ClaimToken: "g2", LeaseExpires: now.Add(time.Minute)}, "g1", false},
		{"being written by a live claim", &Record{Status: Processing, ClaimToken: "g2", LeaseExpires: now.Add(time.Minute)}, "g2", false},
		{"superseded by a success", &Record{Status: Succeeded, ClaimToken: "g2"}, "g1", true},
		{"a dead claim's", &Record{Status: Processing, ClaimToken: "g2", LeaseExpires: now.Add(-time.Second)}, "g2", true},
		{"no record", nil, "g1", true},
	}
	for _, c := range cases {
		if got := MayDeleteEvidence(c.rec, c.gen, now); got != c.want {
			t.Errorf("%s: MayDeleteEvidence = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestMayDeleteOutput(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	live := &Record{Status: Processing, ClaimToken: "g2", LeaseExpires: now.Add(time.Minute)}
	expired := &Record{Status: Processing, ClaimToken: "g2", LeaseExpires: now.Add(-time.Second)}
	done := &Record{Status: Succeeded, ClaimToken: "g2"}
	cases := []struct {
		name           string
		rec            *Record
		committed, gen string
		want           bool
	}{
		{"the committed generation", done, "g2", "g2", false},
		{"the committed generation, record expired", nil, "g1", "g1", false},
		{"a live claim's generation, not committed yet", live, "g1", "g2", false},
		{"a superseded generation", live, "g1", "g0", true},
		{"a dead claim's generation", expired, "g1", "g2", true},
		{"an ended claim's generation that lost the commit", done, "g3", "g2", true},
		{"no record, no manifest", nil, "", "g1", true},
		{"a removal's claim holds no generation", &Record{Status: Removing, ClaimToken: "g4", LeaseExpires: now.Add(time.Minute)}, "", "g1", true},
	}
	for _, c := range cases {
		if got := MayDeleteOutput(c.rec, c.committed, c.gen, now); got != c.want {
			t.Errorf("%s: MayDeleteOutput = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestDecideRedrive(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	req := ClaimRequest{Bucket: "b", Key: "k", ObjectVersion: "v1", RecipeVersion: "r1", RequestID: "req", Token: "t", LeaseUntil: now.Add(time.Minute), MaxAttempts: 3, Redrive: true}
	for _, prev := range []Record{
		{Status: Succeeded, ObjectVersion: "v1", RecipeVersion: "r1", Attempts: 1},
		{Status: Quarantined, ObjectVersion: "v1", RecipeVersion: "r1", Attempts: 3, Reason: "max_attempts"},
		{Status: Failed, ObjectVersion: "v1", RecipeVersion: "r1", Attempts: 3},
	} {
		if v, next := Decide(&prev, req, now); v != Claim || next.Attempts != 1 {
			t.Errorf("redrive of %s: %s, attempts %d", prev.Status, v, next.Attempts)
		}
	}
	live := Record{Status: Processing, ObjectVersion: "v1", RecipeVersion: "r1", LeaseExpires: now.Add(time.Second)}
	if v, _ := Decide(&live, req, now); v != Busy {
		t.Errorf("redrive during a live lease: %s, want busy", v)
	}
}

func TestDecideOrdersBySequencer(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	req := ClaimRequest{Bucket: "b", Key: "k", ObjectVersion: "v2", RecipeVersion: "r1", RequestID: "req", Token: "t", LeaseUntil: now.Add(time.Minute), MaxAttempts: 3}
	prev := Record{ID: "b/k", Status: Succeeded, ObjectVersion: "v1", RecipeVersion: "r1", Sequencer: "0062E9A2B1C3D4E5F6", Attempts: 1}

	older := req
	older.Sequencer = "0062E9A2B1C3D4E5F5"
	if v, _ := Decide(&prev, older, now); v != Stale {
		t.Errorf("older event: %s, want stale", v)
	}
	live := prev
	live.Status, live.LeaseExpires = Processing, now.Add(time.Minute)
	if v, _ := Decide(&live, older, now); v != Stale {
		t.Errorf("older event during a live lease: %s, want stale (not busy: a retry cannot help it)", v)
	}
	newer := req
	newer.Sequencer = "0062E9A2B1C3D4E5F600" // longer: compared after right-padding
	v, next := Decide(&prev, newer, now)
	if v != Claim || next.Sequencer != newer.Sequencer {
		t.Errorf("newer event: %s, sequencer %q", v, next.Sequencer)
	}
	backfill := req // no sequencer: orders nothing, keeps the record's
	if v, next := Decide(&prev, backfill, now); v != Claim || next.Sequencer != prev.Sequencer {
		t.Errorf("event without a sequencer: %s, sequencer %q", v, next.Sequencer)
	}
}

func TestDecideListsAbandonedAttempts(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	req := ClaimRequest{Bucket: "b", Key: "k", ObjectVersion: "v1", RecipeVersion: "r1", RequestID: "req-3", Token: "t", LeaseUntil: now.Add(time.Minute), MaxAttempts: 5}
	crashed := &Record{ID: "b/k", Status: Processing, ObjectVersion: "v1", RecipeVersion: "r1", Attempts: 2,
		ClaimToken: "tok-2", LeaseOwner: "req-2", LeaseExpires: now.Add(-time.Second), Abandoned: []string{"tok-1"}}
	_, next := Decide(crashed, req, now)
	if want := []string{"tok-1", "tok-2"}; !slices.Equal(next.Abandoned, want) {
		t.Errorf("abandoned %v, want %v", next.Abandoned, want)
	}
	if !slices.Equal(crashed.Abandoned, []string{"tok-1"}) {
		t.Errorf("Decide changed its input: %v", crashed.Abandoned)
	}
	failed := *crashed
	failed.Status = Failed
	if _, next := Decide(&failed, req, now); !slices.Equal(next.Abandoned, []string{"tok-1", "tok-2"}) {
		t.Errorf("abandoned %v", next.Abandoned)
	}
	removal := *crashed
	removal.Status = Removing // a removal that died writes nothing under its token
	if _, next := Decide(&removal, req, now); !slices.Equal(next.Abandoned, []string{"tok-1"}) {
		t.Errorf("abandoned %v after a removal's claim, want only the earlier leftovers", next.Abandoned)
	}
	succeeded := &Record{ID: "b/k", Status: Succeeded, ObjectVersion: "v0", RecipeVersion: "r1", ClaimToken: "tok-0"}
	if _, next := Decide(succeeded, req, now); len(next.Abandoned) != 0 {
		t.Errorf("a finished attempt cleaned up after itself, but abandoned = %v", next.Abandoned)
	}
	many := *crashed
	many.Abandoned = nil
	for i := range MaxAbandoned + 3 {
		many.Abandoned = append(many.Abandoned, fmt.Sprint("old-", i))
	}
	if _, next := Decide(&many, req, now); len(next.Abandoned) != MaxAbandoned || next.Abandoned[MaxAbandoned-1] != "tok-2" {
		t.Errorf("abandoned not bounded: %v", next.Abandoned)
	}
}

func TestDecideRemove(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	req := RemoveRequest{Bucket: "b", Key: "k", Sequencer: "0062E9A2B1C3D4E5F6", RequestID: "req-rm", Token: "rm-tok", LeaseUntil: now.Add(time.Minute)}
	rec := func(status Status, seq string, lease time.Time) *Record {
		return &Record{ID: "b/k", Status: status, Sequencer: seq, LeaseExpires: lease, LeaseOwner: "req-1", ClaimToken: "tok", Rev: 4,
			Outputs: []Output{{Name: "thumb", Key: "renditions/k/thumb.jpg"}}, ManifestKey: "renditions/k/manifest.json"}
	}
	cases := []struct {
		name string
		prev *Record
		want Verdict
	}{
		{"no record: a claim all the same", nil, Claim},
		{"succeeded", rec(Succeeded, "0062E9A2B1C3D4E5F0", time.Time{}), Claim},
		{"quarantined, no sequencer", rec(Quarantined, "", time.Time{}), Claim},
		{"crashed worker", rec(Processing, "", now.Add(-time.Second)), Claim},
		{"live worker", rec(Processing, "", now.Add(time.Second)), Busy},
		{"live removal", rec(Removing, "", now.Add(time.Second)), Busy},
		{"a removal that died", rec(Removing, "", now.Add(-time.Second)), Claim},
		{"already removed", rec(Deleted, "0062E9A2B1C3D4E5F6", time.Time{}), Duplicate},
		{"re-created after this removal", rec(Succeeded, "0062E9A2B1C3D4E5F7", time.Time{}), Stale},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, claim := DecideRemove(c.prev, req, now)
			if v != c.want {
				t.Fatalf("verdict %s, want %s", v, c.want)
			}
			if v != Claim {
				return
			}
			if claim.Status != Removing || claim.Sequencer != req.Sequencer || claim.ClaimToken != "rm-tok" || claim.LeaseOwner != "req-rm" ||
				!claim.LeaseExpires.Equal(req.LeaseUntil) || claim.ID != "b/k" {
				t.Fatalf("removal claim %+v", claim)
			}
			if c.prev != nil && (len(claim.Outputs) != 1 || claim.ManifestKey == "") {
				t.Fatalf("the claim lost what there is to remove: %+v", claim)
			}
			if c.prev != nil && c.prev.Status == Processing && !slices.Contains(claim.Abandoned, "tok") {
				t.Fatalf("the dead claim's generation is not listed: %v", claim.Abandoned)
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

// A records file's list of rejected rows is kept while its generation is published or is the
// quarantine's evidence, or may still become either.
func TestMayDeleteRejected(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name           string
		rec            *Record
		committed, gen string
		want           bool
	}{
		{"published with the valid rows", &Record{Status: Succeeded, ClaimToken: "g2"}, "g2", "g2", false},
		{"the evidence of too many bad rows", &Record{Status: Quarantined, QuarantineGen: "g2", ClaimToken: "g2"}, "", "g2", false},
		{"a live claim's, not committed yet", &Record{Status: Processing, ClaimToken: "g3", LeaseExpires: now.Add(time.Minute)}, "g2", "g3", false},
		{"superseded by a newer publication", &Record{Status: Succeeded, ClaimToken: "g3"}, "g3", "g2", true},
		{"a dead claim's", &Record{Status: Processing, ClaimToken: "g3", LeaseExpires: now.Add(-time.Second)}, "g2", "g3", true},
	}
	for _, c := range cases {
		if got := MayDeleteRejected(c.rec, c.committed, c.gen, now); got != c.want {
			t.Errorf("%s: MayDeleteRejected = %v, want %v", c.name, got, c.want)
		}
	}
}
