package processor_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/pkg/announce"
	"github.com/sluice-dev/sluice/pkg/awsclient"
	"github.com/sluice-dev/sluice/pkg/failure"
	"github.com/sluice-dev/sluice/pkg/faultinject"
	"github.com/sluice-dev/sluice/pkg/metrics"
	"github.com/sluice-dev/sluice/pkg/ops"
	"github.com/sluice-dev/sluice/pkg/processor"
	"github.com/sluice-dev/sluice/pkg/state"
	"github.com/sluice-dev/sluice/pkg/testenv"
	"github.com/sluice-dev/sluice/pkg/trigger"
)

// crashChildEnv names the variable that turns this test binary into a processor process that
// kills itself (SIGKILL) at a chosen request.
const crashChildEnv = "SLUICE_CRASH_CHILD"

func TestMain(m *testing.M) {
	if spec := os.Getenv(crashChildEnv); spec != "" {
		os.Exit(crashChild(spec))
	}
	os.Exit(m.Run())
}

// crashSpec tells a child process what to process and where to die.
type crashSpec struct {
	Env         map[string]string // the processor's configuration variables
	Event       trigger.ObjectEvent
	RequestID   string
	Service     string
	Operation   string
	Call        int
	After       bool          // die once the server has answered that call, else before sending it
	ClockOffset time.Duration // the child's clock runs this far ahead (past earlier leases)
	// Deadline, if set, is the invocation's timeout (a Lambda's), and CommitWindow the
	// processor's (the chaos soak's short leases).
	Deadline, CommitWindow time.Duration
}

// crashChild runs one invocation on real SDK clients and SIGKILLs its own process at the
// chosen call; it returns (exit status 3) only if that call never came.
func crashChild(raw string) int {
	var spec crashSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "crash child: bad spec:", err)
		return 2
	}
	ctx := context.Background()
	cfg, err := processor.LoadConfig(func(k string) string { return spec.Env[k] })
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		return 2
	}
	if spec.CommitWindow > 0 {
		cfg.CommitWindow = spec.CommitWindow
	}
	if spec.Deadline > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, spec.Deadline)
		defer cancel()
	}
	awsCfg, err := awsclient.Load(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		return 2
	}
	die := func(int) {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
	rule := faultinject.Rule{Service: spec.Service, Operation: spec.Operation, Calls: []int{spec.Call}, Before: die}
	if spec.After {
		rule.Before, rule.After = nil, die
	}
	inj := faultinject.New(nil)
	inj.Add(rule)
	awsCfg.HTTPClient = inj.Client()
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	p, err := processor.Build(ctx, cfg, awsclient.S3(awsCfg), awsclient.DynamoDB(awsCfg), log, metrics.New(io.Discard, "processor"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		return 2
	}
	p.WithDownstream(awsCfg)
	processor.SetClock(p, func() time.Time { return time.Now().Add(spec.ClockOffset) })
	res := p.Process(ctx, spec.RequestID, spec.Event)
	fmt.Fprintf(os.Stderr, "crash child: finished without reaching %s.%s #%d: %s %v\n", spec.Service, spec.Operation, spec.Call, res.Outcome, res.Err)
	return 3
}

// crashAt runs the processor as a separate process on ev and requires it to die by SIGKILL.
func (r *rig) crashAt(t *testing.T, spec crashSpec) {
	t.Helper()
	killed, err := r.crashChild(spec, nil)
	if err != nil || !killed {
		t.Fatalf("child: killed %v, err %v; want death by SIGKILL", killed, err)
	}
}

// crashChild runs the processor as a separate process on spec's event, with the rig's buckets and
// table and env's variables, to be killed by SIGKILL at spec's call: killed reports that it was,
// false when it finished without reaching that call.
func (r *rig) crashChild(spec crashSpec, env map[string]string) (killed bool, err error) {
	spec.Env = map[string]string{
		"STATE_TABLE": r.table, "OUTPUT_BUCKET": r.output, "QUARANTINE_BUCKET": r.quar,
		"MAX_ATTEMPTS": strconv.Itoa(r.cfg.MaxAttempts),
	}
	if r.cfg.EventBus != "" {
		spec.Env["EVENT_BUS_NAME"] = r.cfg.EventBus // the child finds the fake by AWS_ENDPOINT_URL_EVENTBRIDGE
	}
	if r.cfg.Dedupe {
		spec.Env["DEDUPE"] = "true"
	}
	maps.Copy(spec.Env, env)
	raw, err := json.Marshal(spec)
	if err != nil {
		return false, err
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+string(raw))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case !errors.As(err, &exit):
		return false, fmt.Errorf("child: %v\n%s", err, stderr.String())
	case exit.ExitCode() == 3:
		return false, nil // finished without reaching the call
	}
	if ws, ok := exit.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		return false, fmt.Errorf("child: %v, want death by SIGKILL\n%s", err, stderr.String())
	}
	return true, nil
}

// checkPublished asserts the publishing invariants for one source, whatever moment a worker
// died at: under the source's output prefix there is nothing but its manifest and renditions of
// generations; every rendition is complete (its bytes hash to the SHA-256 S3 stored with it);
// the manifest, when present, lists outputs of its own generation only, each present with the
// listed checksum. With settled, no generation but the committed one is left either. It returns
// the keys under the temp prefix.
func (r *rig) checkPublished(t *testing.T, key string, settled bool) (temps []string) {
	t.Helper()
	keys := r.proc.Keys()
	seg := keys.Segment(key)
	sums := map[string]string{}
	gens := map[string]bool{}
	for _, k := range r.list(t, r.output) {
		if strings.HasPrefix(k, r.cfg.TempPrefix) {
			if strings.Contains(k, "/"+seg+"/") {
				temps = append(temps, k)
			}
			continue
		}
		o, ok := keys.ParseOutput(k)
		switch {
		case !strings.HasPrefix(k, r.cfg.OutputPrefix+seg+"/"):
			continue // another source's
		case !ok || o.Seg != seg:
			t.Errorf("unexpected output key %s", k)
			continue
		case !o.Manifest:
			gens[o.Gen] = true
		}
		body := r.get(t, r.output, k)
		head, err := r.objects.Head(context.Background(), r.output, k)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(body)
		sums[k] = hex.EncodeToString(sum[:])
		if head.SHA256 != sums[k] || head.Size != int64(len(body)) {
			t.Errorf("%s is not complete: %d bytes hashing to %s, stored as %d bytes %s", k, len(body), sums[k], head.Size, head.SHA256)
		}
	}
	manifestKey := keys.Manifest(key)
	if _, ok := sums[manifestKey]; !ok {
		if settled && len(gens) > 0 {
			t.Errorf("no manifest, but generations %v are left", gens)
		}
		return temps
	}
	m, err := processor.ReadManifest(r.get(t, r.output, manifestKey))
	if err != nil {
		t.Fatalf("manifest: %v", err)
	}
	for _, o := range m.Outputs {
		if o.Bucket == r.quar { // a records file's rejected rows, beside the quarantine entry
			if _, gen, ok := keys.ParseQuarantine(o.Key); !ok || gen != m.Generation || !keys.IsRejected(o.Key) {
				t.Errorf("the manifest of generation %s lists s3://%s/%s", m.Generation, o.Bucket, o.Key)
			}
			if sum := sha256.Sum256(r.get(t, r.quar, o.Key)); hex.EncodeToString(sum[:]) != o.SHA256 {
				t.Errorf("s3://%s/%s does not match its listed checksum", o.Bucket, o.Key)
			}
			continue
		}
		if got, ok := sums[o.Key]; !ok || got != o.SHA256 {
			t.Errorf("the manifest lists %s with sha256 %s; stored: present=%v sha256 %s", o.Key, o.SHA256, ok, got)
		}
		if ok, _ := keys.ParseOutput(o.Key); ok.Gen != m.Generation {
			t.Errorf("the manifest of generation %s lists %s, of another generation", m.Generation, o.Key)
		}
	}
	if delete(gens, m.Generation); settled && len(gens) > 0 {
		t.Errorf("superseded generations left beside the committed %s: %v", m.Generation, gens)
	}
	return temps
}

// The processor is killed (SIGKILL, a real separate process) right after each step of the
// protocol, then the event is delivered again once the dead worker's lease has expired. After
// the crash nothing half-written is visible; after the redelivery the file is SUCCEEDED, fully
// published, and the dead attempt's temp objects are gone. Every outcome is announced (on a fake
// EventBridge) at least once, and a consumer that dedupes by event id sees exactly one event per
// source: a worker that died after its commit and before its announcement (or before recording
// it) is repaired by the redelivery, under the same id. A replay announces them all again, with
// the same ids.
func TestCrashAtEveryStepThenRedelivery(t *testing.T) {
	steps := []struct {
		name               string
		service, operation string
		call               int
		after              bool
		redelivered        processor.Outcome
	}{
		{"before the claim", "DynamoDB", "PutItem", 1, false, processor.Succeeded},
		{"after the claim", "DynamoDB", "PutItem", 1, true, processor.Succeeded},
		{"after temp put 1", "S3", "PutObject", 1, true, processor.Succeeded},
		{"after copy 1", "S3", "CopyObject", 1, true, processor.Succeeded},
		{"after temp put 2", "S3", "PutObject", 2, true, processor.Succeeded},
		{"after copy 2", "S3", "CopyObject", 2, true, processor.Succeeded},
		{"after temp put 3", "S3", "PutObject", 3, true, processor.Succeeded},
		{"after copy 3", "S3", "CopyObject", 3, true, processor.Succeeded},
		{"after the manifest", "S3", "PutObject", 4, true, processor.Succeeded},
		{"before the completion write", "DynamoDB", "PutItem", 2, false, processor.Succeeded},
		{"after the completion write", "DynamoDB", "PutItem", 2, true, processor.Duplicate},
		{"after the announcement", "EventBridge", "PutEvents", 1, true, processor.Duplicate},
		{"after recording the announcement", "DynamoDB", "UpdateItem", 1, true, processor.Duplicate},
	}
	eb := testenv.NewEventBridge(t)
	t.Setenv("AWS_ENDPOINT_URL_EVENTBRIDGE", eb.URL())
	r := newRig(t, func(c *processor.Config) { c.EventBus = "sluice-events" })
	r.proc.WithAnnouncer(announce.NewBus(eb.Client(), r.cfg.EventBus))
	processor.SetClock(r.proc, func() time.Time { return time.Now().Add(time.Hour) }) // past the dead worker's lease
	body := grayJPEG(t, 900, 600)
	for i, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			key := fmt.Sprintf("uploads/crash-%02d.jpg", i)
			r.upload(t, key, body, nil)
			ev := r.event(key)
			r.crashAt(t, crashSpec{Event: ev, RequestID: "req-killed", Service: step.service, Operation: step.operation, Call: step.call, After: step.after})
			r.checkPublished(t, key, false)

			res := r.proc.Process(context.Background(), "req-redelivered", ev)
			if res.Outcome != step.redelivered || res.Err != nil {
				t.Fatalf("redelivery: outcome %s err %v (%s), want %s", res.Outcome, res.Err, res.Detail, step.redelivered)
			}
			if temps := r.checkPublished(t, key, true); len(temps) != 0 {
				t.Errorf("temp objects left after the redelivery: %v", temps)
			}
			rec := r.record(t, key)
			if rec.Status != state.Succeeded || len(rec.Outputs) != 3 || rec.ManifestKey == "" || len(rec.Abandoned) != 0 {
				t.Fatalf("state %+v", rec)
			}
			for _, o := range rec.Outputs {
				if sum := sha256.Sum256(r.get(t, r.output, o.Key)); hex.EncodeToString(sum[:]) != o.SHA256 {
					t.Errorf("%s does not match its recorded checksum", o.Key)
				}
			}
		})
	}
	if n := len(r.list(t, r.output)); n != 4*len(steps) {
		t.Errorf("%d output keys in all, want 4 per source", n)
	}
	seen := r.checkAnnounced(t, eb.Events(), len(steps))
	if t.Failed() {
		return
	}
	before := len(eb.Events())
	o := ops.New(r.cfg, r.objects, r.states, r.proc)
	n, err := o.Replay(context.Background(), announce.NewBus(eb.Client(), r.cfg.EventBus), ops.ReplayOptions{Bucket: r.staging})
	if err != nil || n != len(steps) {
		t.Fatalf("replay: %d announced, err %v; want %d", n, err, len(steps))
	}
	replayed := r.checkAnnounced(t, eb.Events()[before:], len(steps))
	if !maps.Equal(seen, replayed) {
		t.Errorf("the replay announced %v, want the same ids as before: %v", replayed, seen)
	}
}

// checkAnnounced asserts that the events, deduplicated by event id, hold exactly one event per
// source of the rig's staging bucket (sources of them), each the outcome its record holds and
// records as announced; it returns the event id per key.
func (r *rig) checkAnnounced(t *testing.T, evs []testenv.BusEvent, sources int) map[string]string {
	t.Helper()
	byKey := map[string]string{}
	for _, ev := range evs {
		var d announce.Detail
		if err := json.Unmarshal([]byte(ev.Detail), &d); err != nil {
			t.Fatalf("event %s: %v", ev.ID, err)
		}
		if prev, ok := byKey[d.Key]; ok && prev != d.EventID {
			t.Errorf("%s: two outcomes announced, %s and %s", d.Key, prev, d.EventID)
		}
		byKey[d.Key] = d.EventID
		rec := r.record(t, d.Key)
		if d.EventID != rec.OutcomeID() || d.Status != rec.Status || ev.DetailType != announce.DetailType(rec.Status) || d.Manifest != rec.ManifestKey || len(d.Outputs) != len(rec.Outputs) {
			t.Errorf("%s: announced %s %s %+v; the record is %s %s", d.Key, ev.DetailType, d.EventID, d, rec.Status, rec.OutcomeID())
		}
		if rec.Unannounced() {
			t.Errorf("%s: announced, but the record says it is not", d.Key)
		}
	}
	if len(byKey) != sources {
		t.Errorf("%d sources announced, want %d: %v", len(byKey), sources, byKey)
	}
	return byKey
}

// A file that kills the processor every time stops after MAX_ATTEMPTS: the next delivery finds
// the attempts used up and quarantines it with reason max_attempts, cleaning the dead attempts'
// temp objects. No delivery loops forever.
func TestPoisonPillThatCrashesStopsAfterMaxAttempts(t *testing.T) {
	r := newRig(t, func(c *processor.Config) { c.MaxAttempts = 3 })
	const key = "uploads/poison.jpg"
	r.upload(t, key, grayJPEG(t, 600, 400), nil)
	ev := r.event(key)
	for attempt := 1; attempt <= 3; attempt++ {
		r.crashAt(t, crashSpec{Event: ev, RequestID: fmt.Sprint("req-", attempt), Service: "S3", Operation: "PutObject", Call: 1, After: true,
			ClockOffset: time.Duration(attempt) * time.Hour})
		if rec := r.record(t, key); rec.Status != state.Processing || rec.Attempts != attempt {
			t.Fatalf("after crash %d: state %s attempts %d", attempt, rec.Status, rec.Attempts)
		}
	}
	processor.SetClock(r.proc, func() time.Time { return time.Now().Add(4 * time.Hour) })
	res := r.proc.Process(context.Background(), "req-4", ev)
	if res.Outcome != processor.Quarantined || res.Reason != string(failure.MaxAttempts) || res.Err != nil {
		t.Fatalf("outcome %s reason %s err %v", res.Outcome, res.Reason, res.Err)
	}
	if rec := r.record(t, key); rec.Status != state.Quarantined || rec.Reason != string(failure.MaxAttempts) || len(rec.Abandoned) != 0 {
		t.Fatalf("state %+v", rec)
	}
	if keys := r.list(t, r.output); len(keys) != 0 {
		t.Errorf("output bucket %v, want nothing (the dead attempts' temp objects cleaned)", keys)
	}
	if res := r.proc.Process(context.Background(), "req-5", ev); res.Outcome != processor.Duplicate {
		t.Errorf("a delivery after the quarantine: %s, want duplicate", res.Outcome)
	}
}

// A file that makes the processor panic fails each attempt (the claim released as FAILED with
// the panic as its last error) and is quarantined with reason max_attempts once they are used.
func TestPoisonPillThatPanicsStopsAfterMaxAttempts(t *testing.T) {
	r := newRig(t, func(c *processor.Config) { c.MaxAttempts = 2 })
	const key = "uploads/panics.jpg"
	r.upload(t, key, grayJPEG(t, 300, 200), nil)
	// The source's GET of each of the two attempts panics (the third delivery reads only what
	// quarantining needs).
	r.withFaults(t, faultinject.Rule{Service: "S3", Operation: "GetObject", Calls: []int{1, 2}, Before: func(int) { panic("decoder bug") }})
	for attempt := 1; attempt <= 2; attempt++ {
		res := r.proc.Process(context.Background(), fmt.Sprint("req-", attempt), r.event(key))
		if res.Outcome != processor.Failed || failure.Classify(res.Err) != failure.IsTransient || !strings.Contains(res.Err.Error(), "decoder bug") {
			t.Fatalf("attempt %d: outcome %s err %v", attempt, res.Outcome, res.Err)
		}
		if rec := r.record(t, key); rec.Status != state.Failed || rec.Attempts != attempt || !strings.Contains(rec.LastError, "panic: decoder bug") {
			t.Fatalf("attempt %d: state %+v", attempt, rec)
		}
	}
	res := r.proc.Process(context.Background(), "req-3", r.event(key))
	if res.Outcome != processor.Quarantined || res.Reason != string(failure.MaxAttempts) {
		t.Fatalf("outcome %s reason %s err %v", res.Outcome, res.Reason, res.Err)
	}
}
