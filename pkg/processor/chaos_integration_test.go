package processor_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sluice-dev/sluice/pkg/faultinject"
	"github.com/sluice-dev/sluice/pkg/ops"
	"github.com/sluice-dev/sluice/pkg/processor"
	"github.com/sluice-dev/sluice/pkg/state"
	"github.com/sluice-dev/sluice/pkg/trigger"
)

// Chaos parameters: `make chaos` sets SLUICE_CHAOS_OBJECTS=2000; `make test` runs the default.
const (
	chaosDefaultObjects = 200
	chaosWorkers        = 4
	chaosMaxReceives    = 50   // the template's MaxReceiveCount: past it a message goes to the DLQ
	soakFaultRate       = 0.02 // S3 and DynamoDB faults, per request of each operation
	chaosCrashRate      = 0.1  // per delivery: the worker dies at a random request of its protocol
	chaosDeadline       = 4 * time.Second
)

// soakKind is what the chaos does with one key.
type soakKind int

const (
	soakGood soakKind = iota
	soakBad
	soakOverwrite
	soakDelete
	soakReupload // deleted, then uploaded again at once
)

func (k soakKind) String() string {
	return [...]string{"good", "bad", "overwrite", "delete", "re-upload"}[k]
}

// soakQueue plays SQS between the notifications and the workers: at-least-once (some messages
// are delivered twice), out of order (some are held back), a message whose processing failed
// comes back after a delay (a busy one after the short delay the processor asks for), one whose
// worker died comes back after its visibility timeout, and one received chaosMaxReceives times
// goes to the dead-letter list.
type soakQueue struct {
	ch       chan soakMessage
	inflight atomic.Int64 // queued, being processed, or waiting to come back
	received atomic.Int64 // events that arrived through the notifications
	dups     atomic.Int64
	held     atomic.Int64
	resized  atomic.Int64 // sequencers rewritten to an equal one of another length
	crashes  atomic.Int64
	mu       sync.Mutex
	dlq      []soakMessage
}

type soakMessage struct {
	ev       trigger.ObjectEvent
	seq      string // the sequencer as MinIO sent it (one length for all, so plain order holds)
	receives int
}

func (q *soakQueue) send(m soakMessage) {
	q.inflight.Add(1)
	q.ch <- m
}

// later brings m back after d (it is in flight meanwhile).
func (q *soakQueue) later(m soakMessage, d time.Duration) {
	q.inflight.Add(1)
	time.AfterFunc(d, func() { q.ch <- m })
}

// soakOutcome is one processed delivery.
type soakOutcome struct {
	key, version, seq string
	outcome           processor.Outcome
}

// The chaos soak: objects uploaded, overwritten, deleted and re-uploaded right after their
// deletion, concurrently, through real MinIO notifications; deliveries duplicated, held back
// (out of order) and carrying sequencers rewritten to equal ones of other lengths; injected S3
// and DynamoDB faults; worker processes killed (SIGKILL) at random steps of the protocol; objects
// sharing their bytes, published as copies of their twins; reconcile --fix, a
// backfill and a redrive running meanwhile; a reader polling manifests. Then a checker asserts
// the invariants (chaosCheck) and the run prints its counts.
func TestChaos(t *testing.T) {
	n := chaosDefaultObjects
	if v := os.Getenv("SLUICE_CHAOS_OBJECTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 10 {
			t.Fatalf("SLUICE_CHAOS_OBJECTS=%q: want a whole number ≥ 10", v)
		}
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("SLUICE_CHAOS_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	t.Logf("chaos: %d objects, seed %d (SLUICE_CHAOS_SEED replays the plan and the faults, not the interleaving)", n, seed)
	rng := rand.New(rand.NewPCG(seed, 1))

	r := newRig(t, func(c *processor.Config) {
		c.CommitWindow = time.Second // a killed worker's lease lapses seconds after its deadline
		c.DeadlineMargin = 500 * time.Millisecond
		c.Dedupe = true // a third of the images share their bytes with others (soakImage)
	})
	inj := r.withFaults(t, soakFaults(rng, n)...)
	o := ops.New(r.cfg, r.objects, r.states, r.proc)
	o.Timeout = chaosDeadline

	q := &soakQueue{ch: make(chan soakMessage, 16*n)}
	var (
		mu       sync.Mutex
		outcomes []soakOutcome
		newest   = map[string]string{} // key → the sequencer of its latest event
		reqs     atomic.Int64
		qRand    = rand.New(rand.NewPCG(seed, 2))
	)
	chance := func(p float64) bool {
		mu.Lock()
		defer mu.Unlock()
		return qRand.Float64() < p
	}
	r.env.Notify(t, r.staging, []string{"s3:ObjectCreated:*", "s3:ObjectRemoved:*"}, "uploads/", http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		p, err := trigger.Parse(body)
		if err != nil {
			t.Errorf("notification: %v", err)
			return
		}
		for _, ev := range p.Events {
			q.received.Add(1)
			m := soakMessage{ev: ev, seq: ev.Sequencer}
			mu.Lock()
			newest[ev.Key] = max(newest[ev.Key], ev.Sequencer)
			mu.Unlock()
			if chance(0.3) && ev.Sequencer != "" {
				q.resized.Add(1)
				m.ev.Sequencer += strings.Repeat("0", 1+int(reqs.Load()%4)) // equal, right-padded
			}
			if chance(0.1) {
				q.held.Add(1)
				q.later(m, time.Duration(500+rand.IntN(1500))*time.Millisecond)
			} else {
				q.send(m)
			}
			if chance(0.1) {
				q.dups.Add(1)
				q.send(m)
			}
		}
	}))

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var workers sync.WaitGroup
	for range chaosWorkers {
		workers.Go(func() {
			for {
				var m soakMessage
				select {
				case m = <-q.ch:
				case <-ctx.Done():
					return
				}
				m.receives++
				res, answered, killed := chaosDeliver(ctx, t, r, fmt.Sprint("req-", reqs.Add(1)), m.ev, chance(chaosCrashRate))
				if killed {
					q.crashes.Add(1)
				}
				if answered {
					mu.Lock()
					outcomes = append(outcomes, soakOutcome{key: m.ev.Key, version: res.Version, seq: m.seq, outcome: res.Outcome})
					mu.Unlock()
				}
				switch {
				case !answered:
					// The process died: SQS brings the message back after its visibility timeout.
					q.later(m, time.Duration(500+rand.IntN(500))*time.Millisecond)
				case res.Err == nil:
				case m.receives >= chaosMaxReceives:
					q.mu.Lock()
					q.dlq = append(q.dlq, m)
					q.mu.Unlock()
				case res.RetryIn > 0:
					q.later(m, res.RetryIn/20) // the processor's short delay, scaled to the test's leases
				default:
					delay := min(100*time.Millisecond<<m.receives, 5*time.Second)
					q.later(m, delay/2+rand.N(delay/2))
				}
				q.inflight.Add(-1)
			}
		})
	}

	// The operators' actors, and a reader, while the workers run.
	var actors sync.WaitGroup
	var reconciles, fixes atomic.Int64
	var readerSeen sync.Map
	var reads atomic.Int64
	actors.Go(func() {
		for ctx.Err() == nil {
			findings, err := o.Reconcile(ctx, r.staging, "uploads/")
			if err == nil {
				c, _ := o.Fix(ctx, r.staging, "uploads/", findings, ops.FixOptions{Concurrency: 2}, nil)
				fixes.Add(c.Done)
			}
			reconciles.Add(1)
			sleep(ctx, 1500*time.Millisecond)
		}
	})
	actors.Go(func() {
		if sleep(ctx, 3*time.Second) {
			_, _ = o.Backfill(ctx, ops.BackfillOptions{Bucket: r.staging, Prefix: "uploads/", Concurrency: 2}, nil)
		}
		if sleep(ctx, 3*time.Second) {
			_, _ = o.Redrive(ctx, ops.RedriveOptions{Status: state.Quarantined, Concurrency: 2}, nil)
		}
	})

	plan, events := soakUpload(t, r, rng, n)
	actors.Go(func() {
		keys := sortedKeys(plan)
		for ctx.Err() == nil {
			if bad := chaosRead(r, keys[rand.IntN(len(keys))]); bad != "" {
				readerSeen.Store(bad, true)
			}
			reads.Add(1)
		}
	})
	deadline := time.Now().Add(20 * time.Minute)
	for q.received.Load() < int64(events) || q.inflight.Load() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("chaos did not settle: %d of %d events received, %d in flight", q.received.Load(), events, q.inflight.Load())
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	workers.Wait()
	actors.Wait()

	counts := map[processor.Outcome]int{}
	succeeded := map[string]int{}
	violations := 0
	for _, o := range outcomes {
		counts[o.outcome]++
		if o.outcome == processor.Succeeded {
			succeeded[o.key+" "+o.version]++
		}
		if o.outcome == processor.Stale && o.seq == newest[o.key] {
			violations++
			t.Errorf("%s: its newest event (sequencer %s) was dropped as stale", o.key, o.seq)
		}
	}
	if q.dups.Load() > 0 && counts[processor.Duplicate] == 0 {
		t.Errorf("%d duplicate deliveries, none detected as a duplicate", q.dups.Load())
	}
	if len(q.dlq) > 0 {
		t.Errorf("%d messages reached the dead-letter queue: %+v", len(q.dlq), q.dlq)
	}
	readerSeen.Range(func(k, _ any) bool {
		violations++
		t.Errorf("a reader saw a missing or mixed set: %s", k)
		return true
	})
	statuses, checked, checkFailed := chaosCheck(t, r, plan)

	kinds := map[soakKind]int{}
	for _, k := range plan {
		kinds[k]++
	}
	var calls []string
	for _, op := range []string{"S3.HeadObject", "S3.GetObject", "S3.PutObject", "S3.CopyObject", "S3.DeleteObject", "DynamoDB.GetItem", "DynamoDB.PutItem"} {
		service, name, _ := strings.Cut(op, ".")
		calls = append(calls, fmt.Sprintf("%s %d", op, inj.Calls(service, name)))
	}
	t.Logf("chaos plan: %d good, %d bad, %d overwritten, %d deleted, %d re-uploaded after a delete; %d notifications",
		kinds[soakGood], kinds[soakBad], kinds[soakOverwrite], kinds[soakDelete], kinds[soakReupload], q.received.Load())
	t.Logf("chaos deliveries: %d (%s); %d duplicated, %d held back, %d with a resized sequencer, %d worker processes killed (SIGKILL) mid-protocol",
		len(outcomes), formatCounts(counts), q.dups.Load(), q.held.Load(), q.resized.Load(), q.crashes.Load())
	t.Logf("chaos operators: %d reconcile runs fixing %d findings, one backfill, one redrive; %d reads of whole sets by a polling reader",
		reconciles.Load(), fixes.Load(), reads.Load())
	t.Logf("chaos requests (faults injected at %.0f%%): %s", soakFaultRate*100, strings.Join(calls, ", "))
	t.Logf("chaos final states: %s; invariants checked on %d sources: %d violations", formatCounts(statuses), checked, violations+checkFailed)
}

// chaosKillSteps are the protocol steps a killed worker dies at (SIGKILL right before the
// request, or right after its answer): after the claim, after temp puts and copies, before the
// commit's manifest read, after the manifest put (committed, not finished), before a sweep's or a
// removal's delete, around the completion write.
var chaosKillSteps = []struct {
	service, operation string
	call               int
	after              bool
}{
	{"DynamoDB", "PutItem", 1, true}, {"S3", "PutObject", 1, true}, {"S3", "CopyObject", 1, true},
	{"S3", "PutObject", 2, true}, {"S3", "CopyObject", 3, true}, {"S3", "GetObject", 2, false},
	{"S3", "PutObject", 4, true}, {"S3", "DeleteObject", 1, false}, {"DynamoDB", "PutItem", 2, false},
	{"DynamoDB", "PutItem", 2, true},
}

// chaosDeliver processes one delivery as a Lambda invocation would. With kill, a separate
// process runs it and is killed (SIGKILL) at a random protocol step: nothing after that step
// runs, no clean-up, no state write. answered is false when the invocation gave no answer (it
// was killed, or the child ended without one), so the queue brings the message back; killed
// counts real kills.
func chaosDeliver(ctx context.Context, t *testing.T, r *rig, requestID string, ev trigger.ObjectEvent, kill bool) (res processor.Result, answered, killed bool) {
	if !kill {
		ictx, cancel := context.WithTimeout(ctx, chaosDeadline)
		defer cancel()
		return r.proc.Process(ictx, requestID, ev), true, false
	}
	step := chaosKillSteps[rand.IntN(len(chaosKillSteps))]
	killed, err := r.crashChild(crashSpec{Event: ev, RequestID: requestID, Service: step.service, Operation: step.operation,
		Call: step.call, After: step.after, Deadline: chaosDeadline, CommitWindow: r.cfg.CommitWindow},
		map[string]string{"DEADLINE_MARGIN_MS": strconv.FormatInt(r.cfg.DeadlineMargin.Milliseconds(), 10)})
	if err != nil {
		t.Errorf("killed worker: %v", err)
	}
	return processor.Result{}, false, killed
}

// chaosRead reads key's set as a careful reader does: the manifest, then each output it lists.
// An output missing or not matching its checksum is fine only if the manifest changed (or went)
// meanwhile: the set was replaced or removed under the reader, who reads the manifest again. It
// describes a violation, or returns "".
func chaosRead(r *rig, key string) string {
	ctx := context.Background()
	manifestKey := r.proc.Keys().Manifest(key)
	head, body, err := r.objects.Read(ctx, r.output, manifestKey, 1<<20)
	if err != nil {
		return ""
	}
	m, err := processor.ReadManifest(body)
	if err != nil {
		return fmt.Sprintf("%s: manifest unreadable: %v", key, err)
	}
	for _, o := range m.Outputs {
		if out, ok := r.proc.Keys().ParseOutput(o.Key); !ok || out.Gen != m.Generation {
			return fmt.Sprintf("%s: the manifest of generation %s lists %s", key, m.Generation, o.Key)
		}
		_, b, err := r.objects.Read(ctx, r.output, o.Key, 64<<20)
		sum := sha256.Sum256(b)
		if err == nil && hex.EncodeToString(sum[:]) == o.SHA256 {
			continue
		}
		if now, err := r.objects.Head(ctx, r.output, manifestKey); err != nil || now.ETag != head.ETag {
			return "" // replaced or removed meanwhile: the reader starts again
		}
		return fmt.Sprintf("%s: the manifest lists %s (sha256 %s) but it is missing or holds other bytes", key, o.Key, o.SHA256)
	}
	return ""
}

func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-ctx.Done():
		return false
	}
}

// soakFaults injects a fault on a random soakFaultRate of the calls of every operation.
func soakFaults(rng *rand.Rand, n int) []faultinject.Rule {
	kinds := []faultinject.Fault{faultinject.InternalError, faultinject.ServiceUnavailable, faultinject.SlowDown, faultinject.ConnectionReset, faultinject.Timeout}
	ops := map[string][]string{
		"S3":       {"HeadObject", "GetObject", "PutObject", "CopyObject", "DeleteObject"},
		"DynamoDB": {"GetItem", "PutItem"},
	}
	var rules []faultinject.Rule
	for service, names := range ops {
		for _, op := range names {
			var calls []int
			for c := 1; c <= 20*n; c++ {
				if rng.Float64() < soakFaultRate {
					calls = append(calls, c)
				}
			}
			fault := kinds[rng.IntN(len(kinds))]
			if service == "DynamoDB" {
				fault = []faultinject.Fault{faultinject.Throttling, faultinject.ProvisionedThroughputExceeded, faultinject.InternalError}[rng.IntN(3)]
			}
			rules = append(rules, faultinject.Rule{Service: service, Operation: op, Calls: calls, Fault: fault})
		}
	}
	return rules
}

// soakUpload uploads, overwrites, deletes and re-uploads n keys with 8 concurrent clients; it
// returns what each key got and how many notifications that makes.
func soakUpload(t *testing.T, r *rig, rng *rand.Rand, n int) (map[string]soakKind, int) {
	t.Helper()
	type job struct {
		key   string
		kind  soakKind
		a, b  []byte
		pause time.Duration
	}
	jobs := make([]job, n)
	plan := map[string]soakKind{}
	events := 0
	for i := range jobs {
		kind := soakGood
		switch i % 10 {
		case 6:
			kind = soakBad
		case 7:
			kind = soakOverwrite
		case 8:
			kind = soakDelete
		case 9:
			kind = soakReupload
		}
		j := job{key: fmt.Sprintf("uploads/soak/%04d", i), kind: kind, pause: time.Duration(rng.IntN(300)) * time.Millisecond}
		img := func() []byte { return soakImage(t, rng) }
		switch kind {
		case soakGood:
			j.a, events = img(), events+1
		case soakBad:
			garbage := make([]byte, 64+rng.IntN(4096))
			for k := range garbage {
				garbage[k] = byte(rng.UintN(256))
			}
			j.a, events = garbage, events+1
		case soakOverwrite:
			j.a, j.b, events = img(), img(), events+2
		case soakDelete:
			j.a, events = img(), events+2
		case soakReupload:
			j.a, j.b, events = img(), img(), events+3
		}
		jobs[i], plan[j.key] = j, kind
	}
	work := make(chan job)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for j := range work {
				r.upload(t, j.key, j.a, nil)
				switch j.kind {
				case soakOverwrite:
					time.Sleep(j.pause)
					r.upload(t, j.key, j.b, nil)
				case soakDelete:
					time.Sleep(j.pause)
					r.deleteSource(t, j.key)
				case soakReupload: // what sync tools and "replace" buttons do
					time.Sleep(j.pause)
					r.deleteSource(t, j.key)
					r.upload(t, j.key, j.b, nil)
				}
			}
		})
	}
	for _, j := range jobs {
		work <- j
	}
	close(work)
	wg.Wait()
	return plan, events
}

// soakImage is a small JPEG or PNG of random size and colour, or (one in three) one of a few
// JPEGs many objects share, so that twins are copied from (DEDUPE) while they are overwritten,
// deleted and re-rendered.
func soakImage(t *testing.T, rng *rand.Rand) []byte {
	if rng.IntN(3) == 0 {
		return grayJPEG(t, 64+rng.IntN(4)*32, 64)
	}
	w, h := 48+rng.IntN(400), 48+rng.IntN(400)
	if rng.IntN(4) > 0 {
		return grayJPEG(t, w, h)
	}
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	c := color.NRGBA{uint8(rng.UintN(256)), uint8(rng.UintN(256)), uint8(rng.UintN(256)), 255}
	for y := range h {
		for x := range w {
			img.SetNRGBA(x, y, c)
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// chaosCheck asserts the invariants on the end state: every planned key has one terminal
// record matching its latest version (SUCCEEDED or QUARANTINED where it exists, DELETED where it
// was removed); every manifest describes that version, names the record's last generation, and
// lists outputs of that generation only, each present with its checksum; a QUARANTINED record's
// evidence is there; and no output, quarantine copy, report or temp object exists that no record
// accounts for. It returns the count of final statuses, of keys checked and of violations.
func chaosCheck(t *testing.T, r *rig, plan map[string]soakKind) (statuses map[state.Status]int, checked, violations int) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		violations++
		t.Errorf(format, args...)
	}
	ctx := context.Background()
	staging := listAll(t, r, r.staging)
	outputs := listAll(t, r, r.output)
	quarantine := listAll(t, r, r.quar)
	records := map[string]state.Record{}
	var start map[string]ddbtypes.AttributeValue
	for {
		out, err := r.env.DDB.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(r.table), ExclusiveStartKey: start, ConsistentRead: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		var page []state.Record
		if err := attributevalue.UnmarshalListOfMaps(out.Items, &page); err != nil {
			t.Fatal(err)
		}
		for _, rec := range page {
			records[rec.Key] = rec
		}
		if start = out.LastEvaluatedKey; len(start) == 0 {
			break
		}
	}

	statuses = map[state.Status]int{}
	accounted := map[string]bool{}
	copies := 0 // published sets copied from a twin
	defer func() {
		t.Logf("chaos dedupe: %d of the %d published sets are copies of their twins' renditions", copies, statuses[state.Succeeded])
	}()
	for key, kind := range plan {
		rec, ok := records[key]
		if !ok {
			fail("%s (%s): no state record", key, kind)
			continue
		}
		statuses[rec.Status]++
		etag, exists := staging[key]
		want := state.Succeeded
		switch kind {
		case soakDelete:
			want = state.Deleted
		case soakBad:
			want = state.Quarantined
		}
		if rec.Status != want {
			fail("%s (%s): status %s (reason %q, last error %q, lease of %s until %s, attempts %d; trail %+v), want %s", key, kind, rec.Status, rec.Reason, rec.LastError,
				rec.LeaseOwner, rec.LeaseExpires.Format(time.RFC3339Nano), rec.Attempts, rec.History, want)
			continue
		}
		if exists == (kind == soakDelete) {
			fail("%s (%s): staging object exists=%v", key, kind, exists)
			continue
		}
		if exists && rec.ObjectETag != etag {
			fail("%s (%s): record is for ETag %s, the latest version is %s", key, kind, rec.ObjectETag, etag)
		}
		manifestKey := r.proc.Keys().Manifest(key)
		switch rec.Status {
		case state.Succeeded:
			accounted[manifestKey] = true
			m, err := processor.ReadManifest(r.get(t, r.output, manifestKey))
			if err != nil {
				fail("%s: manifest: %v", key, err)
				continue
			}
			if m.CopiedFrom != nil {
				copies++
			}
			if m.Source.ETag != etag || len(m.Outputs) != len(r.cfg.Recipe.Renditions) || m.Generation != rec.ClaimToken {
				fail("%s: manifest of generation %s for ETag %s with %d outputs, want generation %s, ETag %s, %d outputs",
					key, m.Generation, m.Source.ETag, len(m.Outputs), rec.ClaimToken, etag, len(r.cfg.Recipe.Renditions))
			}
			for _, o := range m.Outputs {
				accounted[o.Key] = true
				if out, ok := r.proc.Keys().ParseOutput(o.Key); !ok || out.Gen != m.Generation {
					fail("%s: the manifest of generation %s lists %s", key, m.Generation, o.Key)
				}
				sum := sha256.Sum256(r.get(t, r.output, o.Key))
				if hex.EncodeToString(sum[:]) != o.SHA256 {
					fail("%s: %s does not match the manifest's checksum", key, o.Key)
				}
			}
		case state.Quarantined:
			object, report := r.proc.Keys().Quarantine(key, rec.QuarantineGen)
			if _, ok := quarantine[object]; !ok {
				fail("%s: quarantine copy missing", key)
			}
			if _, ok := quarantine[report]; !ok {
				fail("%s: quarantine report missing", key)
			}
			accounted[object], accounted[report] = true, true
		case state.Deleted:
			if _, ok := outputs[manifestKey]; ok {
				fail("%s: DELETED, but its manifest is there", key)
			}
		}
	}
	for _, k := range sortedKeys(outputs) {
		if !accounted[k] {
			fail("output bucket: %s is accounted for by no record", k)
		}
	}
	for _, k := range sortedKeys(quarantine) {
		if !accounted[k] {
			fail("quarantine bucket: %s is the evidence of no QUARANTINED record", k)
		}
	}
	return statuses, len(plan), violations
}

// listAll lists a bucket: key → ETag.
func listAll(t *testing.T, r *rig, bucket string) map[string]string {
	t.Helper()
	out, err := r.env.List(context.Background(), bucket)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func formatCounts[K ~string](m map[K]int) string {
	parts := make([]string, 0, len(m))
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s %d", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}
