package announce_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/pkg/announce"
	"github.com/sluice-dev/sluice/pkg/failure"
	"github.com/sluice-dev/sluice/pkg/state"
	"github.com/sluice-dev/sluice/pkg/testenv"
)

func record(key string, status state.Status) state.Record {
	return state.Record{
		ID: state.ID("staging", key), Bucket: "staging", Key: key, Status: status,
		ObjectVersion: "v:3HL4kqtJlcpXroDTDmJ", ObjectETag: `"9b2cf535f27731c974343645a3985328"`, ObjectSize: 1234,
		Sequencer: "0055AED6DCD90281E5", RecipeVersion: "r1", ClaimToken: "g1",
		ManifestKey: "renditions/" + key + "/manifest.json", Reason: "corrupt", Message: "bad bytes",
		Outputs:   []state.Output{{Name: "thumb", Key: "renditions/" + key + "/g1/thumb.jpg", Size: 99, SHA256: "ab", Width: 10, Height: 8, Format: "jpeg"}},
		UpdatedAt: time.Date(2026, 12, 7, 1, 2, 3, 0, time.UTC),
	}
}

// The outcome's id is the same on every announcement of it, and differs with anything that makes
// it another outcome: the source, its version, the recipe, the status, the generation.
func TestOutcomeIDNamesTheOutcome(t *testing.T) {
	base := record("a.jpg", state.Succeeded)
	same := base
	same.Rev, same.WriteID, same.Announced, same.UpdatedAt = 9, "w", "x", time.Now()
	if base.OutcomeID() == "" || base.OutcomeID() != same.OutcomeID() {
		t.Fatalf("ids %q and %q for one outcome", base.OutcomeID(), same.OutcomeID())
	}
	for name, change := range map[string]func(*state.Record){
		"key":        func(r *state.Record) { r.Key = "b.jpg" },
		"version":    func(r *state.Record) { r.ObjectVersion = "v:other" },
		"recipe":     func(r *state.Record) { r.RecipeVersion = "r2" },
		"status":     func(r *state.Record) { r.Status = state.Quarantined },
		"generation": func(r *state.Record) { r.ClaimToken = "g2" },
	} {
		other := base
		change(&other)
		if other.OutcomeID() == base.OutcomeID() {
			t.Errorf("another %s, same id", name)
		}
	}
	for _, s := range []state.Status{state.Processing, state.Removing, state.Failed} {
		if r := record("a.jpg", s); r.OutcomeID() != "" || r.Unannounced() {
			t.Errorf("%s: id %q, unannounced %v; it is no outcome", s, r.OutcomeID(), r.Unannounced())
		}
	}
	marked := base
	marked.Announced = base.OutcomeID()
	if !base.Unannounced() || marked.Unannounced() {
		t.Errorf("unannounced: %v before, %v after marking", base.Unannounced(), marked.Unannounced())
	}
}

func TestDetailOfEachOutcome(t *testing.T) {
	for _, tc := range []struct {
		status                     state.Status
		detailType                 string
		manifest, outputs, reasons bool
	}{
		{state.Succeeded, announce.Processed, true, true, false},
		{state.Quarantined, announce.Quarantined, false, false, true},
		{state.Deleted, announce.Deleted, false, false, false},
	} {
		rec := record("photos/a b.jpg", tc.status)
		d, ok := announce.DetailOf(rec)
		if !ok || announce.DetailType(tc.status) != tc.detailType {
			t.Fatalf("%s: ok %v, detail type %q", tc.status, ok, announce.DetailType(tc.status))
		}
		if d.EventID != rec.OutcomeID() || d.VersionID != "3HL4kqtJlcpXroDTDmJ" || d.Generation != "g1" || d.Key != "photos/a b.jpg" || !d.At.Equal(rec.UpdatedAt) {
			t.Errorf("%s: %+v", tc.status, d)
		}
		if (d.Manifest != "") != tc.manifest || (len(d.Outputs) > 0) != tc.outputs || (d.Reason != "") != tc.reasons {
			t.Errorf("%s: manifest %q, outputs %v, reason %q", tc.status, d.Manifest, d.Outputs, d.Reason)
		}
	}
	if _, ok := announce.DetailOf(record("a.jpg", state.Failed)); ok {
		t.Error("a FAILED record has a detail")
	}
	unversioned := record("a.jpg", state.Succeeded)
	unversioned.ObjectVersion = "etag:" + unversioned.ObjectETag
	if d, _ := announce.DetailOf(unversioned); d.VersionID != "" {
		t.Errorf("version id %q from an ETag", d.VersionID)
	}
}

// Twenty-five outcomes and a FAILED record: three calls of at most ten entries, one event per
// outcome with its detail, none for the FAILED record.
func TestBusPutsTenAtATime(t *testing.T) {
	eb := testenv.NewEventBridge(t)
	var recs []state.Record
	for i := range 25 {
		recs = append(recs, record(fmt.Sprintf("k%02d.jpg", i), state.Succeeded))
	}
	recs = append(recs, record("failed.jpg", state.Failed))
	if err := announce.NewBus(eb.Client(), "sluice-bus").Announce(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	evs := eb.Events()
	if len(evs) != 25 {
		t.Fatalf("%d events, want 25", len(evs))
	}
	for i, ev := range evs {
		var d announce.Detail
		if err := json.Unmarshal([]byte(ev.Detail), &d); err != nil {
			t.Fatal(err)
		}
		if ev.Bus != "sluice-bus" || ev.Source != "sluice" || ev.DetailType != announce.Processed || d.Key != recs[i].Key || d.EventID != recs[i].OutcomeID() {
			t.Errorf("event %d: %+v", i, ev)
		}
		if len(ev.Resources) != 1 || ev.Resources[0] != "arn:aws:s3:::staging/"+recs[i].Key {
			t.Errorf("event %d resources %v", i, ev.Resources)
		}
	}
}

// Entries EventBridge rejects (the call succeeds, FailedEntryCount says which did not) are put
// again; past a few tries the announcement fails as transient, naming the rejection.
func TestBusPutsRejectedEntriesAgain(t *testing.T) {
	eb := testenv.NewEventBridge(t)
	bus := announce.NewBus(eb.Client(), "b")
	recs := []state.Record{record("a.jpg", state.Succeeded), record("b.jpg", state.Quarantined), record("c.jpg", state.Deleted)}
	eb.Reject(2)
	if err := bus.Announce(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	if evs := eb.Events(); len(evs) != 3 {
		t.Fatalf("%d events after two rejections, want 3", len(evs))
	}
	eb.Reject(1000)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := bus.Announce(ctx, recs[:1])
	if err == nil || failure.Classify(err) != failure.IsTransient || !strings.Contains(err.Error(), "ThrottlingException") {
		t.Fatalf("err %v, want a transient error naming the rejection", err)
	}
	if evs := eb.Events(); len(evs) != 3 {
		t.Errorf("%d events, want still 3", len(evs))
	}
}

func TestPrinterWritesOneLinePerOutcome(t *testing.T) {
	var b strings.Builder
	recs := []state.Record{record("a.jpg", state.Succeeded), record("b.jpg", state.Processing), record("c.jpg", state.Deleted)}
	if err := announce.NewPrinter(&b).Announce(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"detail-type":"Object Processed"`) || !strings.Contains(lines[1], `"detail-type":"Object Deleted"`) {
		t.Errorf("printed %q", lines)
	}
}
