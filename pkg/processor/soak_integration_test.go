package processor_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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
	"github.com/sluice-dev/sluice/pkg/processor"
	"github.com/sluice-dev/sluice/pkg/state"
	"github.com/sluice-dev/sluice/pkg/trigger"
)

// Soak parameters: `make soak` sets SLUICE_SOAK_OBJECTS=500; `make test` runs the default.
const (
	soakDefaultObjects = 100
	soakWorkers        = 4
	soakMaxReceives    = 10 // the queue's maxReceiveCount: past it a message goes to the DLQ
	soakFaultRate      = 0.02
)

// soakKind is what the soak does with one key.
type soakKind int

const (
	soakGood soakKind = iota
	soakBad
	soakOverwrite
	soakDelete
)

func (k soakKind) String() string {
	return [...]string{"good", "bad", "overwrite", "delete"}[k]
}

// soakQueue plays SQS between the notifications and the workers: at-least-once (some messages
// are delivered twice), a message whose processing failed transiently comes back after a delay,
// and one received soakMaxReceives times goes to the dead-letter list.
type soakQueue struct {
	ch       chan soakMessage
	inflight atomic.Int64 // queued, being processed, or waiting to come back
	received atomic.Int64 // events that arrived through the notifications
	dups     atomic.Int64
	mu       sync.Mutex
	dlq      []soakMessage
}

type soakMessage struct {
	ev       trigger.ObjectEvent
	receives int
}

func (q *soakQueue) send(m soakMessage) {
	q.inflight.Add(1)
	q.ch <- m
}

// soakOutcome is one processed delivery.
type soakOutcome struct {
	key, version string
	outcome      processor.Outcome
}

// The soak: objects uploaded, overwritten and deleted concurrently through real MinIO
// notifications, duplicate deliveries, injected S3 and DynamoDB faults, several workers; then a
// checker reconciles buckets, records and outputs.
func TestSoak(t *testing.T) {
	n := soakDefaultObjects
	if v := os.Getenv("SLUICE_SOAK_OBJECTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 10 {
			t.Fatalf("SLUICE_SOAK_OBJECTS=%q: want a whole number ≥ 10", v)
		}
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("SLUICE_SOAK_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	t.Logf("soak: %d objects, seed %d (SLUICE_SOAK_SEED replays the plan and the faults, not the interleaving)", n, seed)
	rng := rand.New(rand.NewPCG(seed, 1))

	r := newRig(t, nil)
	inj := r.withFaults(t, soakFaults(rng, n)...)

	q := &soakQueue{ch: make(chan soakMessage, 16*n)}
	var (
		mu       sync.Mutex
		outcomes []soakOutcome
		reqs     atomic.Int64
		dupRand  = rand.New(rand.NewPCG(seed, 2))
	)
	r.env.Notify(t, r.staging, []string{"s3:ObjectCreated:*", "s3:ObjectRemoved:*"}, "uploads/", http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		p, err := trigger.Parse(body)
		if err != nil {
			t.Errorf("notification: %v", err)
			return
		}
		for _, ev := range p.Events {
			q.received.Add(1)
			q.send(soakMessage{ev: ev})
			mu.Lock()
			dup := dupRand.Float64() < 0.1
			mu.Unlock()
			if dup {
				q.dups.Add(1)
				q.send(soakMessage{ev: ev})
			}
		}
	}))

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var workers sync.WaitGroup
	for range soakWorkers {
		workers.Go(func() {
			for {
				var m soakMessage
				select {
				case m = <-q.ch:
				case <-ctx.Done():
					return
				}
				m.receives++
				// Each receive is a new invocation with its own request id and deadline.
				ictx, cancel := context.WithTimeout(ctx, time.Minute)
				res := r.proc.Process(ictx, fmt.Sprint("req-", reqs.Add(1)), m.ev)
				cancel()
				mu.Lock()
				outcomes = append(outcomes, soakOutcome{key: m.ev.Key, version: res.Version, outcome: res.Outcome})
				mu.Unlock()
				switch {
				case res.Err == nil:
				case m.receives >= soakMaxReceives:
					q.mu.Lock()
					q.dlq = append(q.dlq, m)
					q.mu.Unlock()
				default:
					// SQS brings a message back after its visibility timeout (30 min in the template);
					// here, after an exponentially growing delay, so that a retry that found another
					// worker's live lease does not use up its receives before that worker is done.
					q.inflight.Add(1)
					delay := min(100*time.Millisecond<<m.receives, 5*time.Second)
					time.AfterFunc(delay/2+rand.N(delay/2), func() { q.ch <- m })
				}
				q.inflight.Add(-1)
			}
		})
	}

	plan, events := soakUpload(t, r, rng, n)
	deadline := time.Now().Add(10 * time.Minute)
	for q.received.Load() < int64(events) || q.inflight.Load() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("soak did not settle: %d of %d events received, %d in flight", q.received.Load(), events, q.inflight.Load())
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	workers.Wait()

	counts := map[processor.Outcome]int{}
	succeeded := map[string]int{}
	for _, o := range outcomes {
		counts[o.outcome]++
		if o.outcome == processor.Succeeded {
			succeeded[o.key+" "+o.version]++
		}
	}
	for kv, c := range succeeded {
		if c > 1 {
			t.Errorf("%s was processed %d times", kv, c)
		}
	}
	if q.dups.Load() > 0 && counts[processor.Duplicate] == 0 {
		t.Errorf("%d duplicate deliveries, none detected as a duplicate", q.dups.Load())
	}
	if len(q.dlq) > 0 {
		t.Errorf("%d messages reached the dead-letter queue: %+v", len(q.dlq), q.dlq)
	}
	statuses := soakCheck(t, r, plan)

	kinds := map[soakKind]int{}
	for _, k := range plan {
		kinds[k]++
	}
	var faults []string
	for _, op := range []string{"S3.HeadObject", "S3.GetObject", "S3.PutObject", "S3.CopyObject", "S3.DeleteObject", "DynamoDB.GetItem", "DynamoDB.PutItem"} {
		service, name, _ := strings.Cut(op, ".")
		faults = append(faults, fmt.Sprintf("%s %d", op, inj.Calls(service, name)))
	}
	t.Logf("soak plan: %d good, %d bad, %d overwritten, %d deleted; %d notifications, %d duplicated deliveries",
		kinds[soakGood], kinds[soakBad], kinds[soakOverwrite], kinds[soakDelete], q.received.Load(), q.dups.Load())
	t.Logf("soak deliveries: %d (%s)", len(outcomes), formatCounts(counts))
	t.Logf("soak final states: %s", formatCounts(statuses))
	t.Logf("soak requests (faults injected at %.0f%%): %s", soakFaultRate*100, strings.Join(faults, ", "))
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

// soakUpload uploads, overwrites and deletes n keys with 8 concurrent clients; it returns what
// each key got and how many notifications that makes.
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
		case 7:
			kind = soakBad
		case 8:
			kind = soakOverwrite
		case 9:
			kind = soakDelete
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

// soakImage is a small JPEG or PNG of random size and colour.
func soakImage(t *testing.T, rng *rand.Rand) []byte {
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

// soakCheck reconciles the end state: every planned key has exactly one terminal record that
// matches its latest version (SUCCEEDED or QUARANTINED where it exists, DELETED where it was
// removed); every SUCCEEDED record's manifest describes that version and lists outputs that
// exist with their checksums; no output, quarantine copy or temp object exists that no record
// accounts for. It returns the count of final statuses.
func soakCheck(t *testing.T, r *rig, plan map[string]soakKind) map[state.Status]int {
	t.Helper()
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

	statuses := map[state.Status]int{}
	accounted := map[string]bool{}
	for key, kind := range plan {
		rec, ok := records[key]
		if !ok {
			t.Errorf("%s (%s): no state record", key, kind)
			continue
		}
		statuses[rec.Status]++
		etag, exists := staging[key]
		want := state.Succeeded
		switch {
		case kind == soakDelete:
			want = state.Deleted
		case kind == soakBad:
			want = state.Quarantined
		}
		if rec.Status != want {
			t.Errorf("%s (%s): status %s (reason %q, last error %q), want %s", key, kind, rec.Status, rec.Reason, rec.LastError, want)
			continue
		}
		if exists == (kind == soakDelete) {
			t.Errorf("%s (%s): staging object exists=%v", key, kind, exists)
			continue
		}
		if exists && rec.ObjectETag != etag {
			t.Errorf("%s (%s): record is for ETag %s, the latest version is %s", key, kind, rec.ObjectETag, etag)
		}
		switch rec.Status {
		case state.Succeeded:
			accounted[rec.ManifestKey] = true
			var m processor.Manifest
			if err := json.Unmarshal(r.get(t, r.output, rec.ManifestKey), &m); err != nil {
				t.Errorf("%s: manifest: %v", key, err)
				continue
			}
			if m.Source.ETag != etag || len(m.Outputs) != len(r.cfg.Recipe.Renditions) {
				t.Errorf("%s: manifest for ETag %s with %d outputs, want %s with %d", key, m.Source.ETag, len(m.Outputs), etag, len(r.cfg.Recipe.Renditions))
			}
			for _, o := range m.Outputs {
				accounted[o.Key] = true
				sum := sha256.Sum256(r.get(t, r.output, o.Key))
				if hex.EncodeToString(sum[:]) != o.SHA256 {
					t.Errorf("%s: %s does not match the manifest's checksum", key, o.Key)
				}
			}
		case state.Quarantined:
			object, report := r.proc.Keys().Quarantine(key, rec.QuarantineGen)
			if _, ok := quarantine[object]; !ok {
				t.Errorf("%s: quarantine copy missing", key)
			}
			if _, ok := quarantine[report]; !ok {
				t.Errorf("%s: quarantine report missing", key)
			}
			accounted[object], accounted[report] = true, true
		}
	}
	for _, k := range sortedKeys(outputs) {
		if !accounted[k] {
			t.Errorf("output bucket: %s belongs to no SUCCEEDED record", k)
		}
	}
	for _, k := range sortedKeys(quarantine) {
		if !accounted[k] {
			t.Errorf("quarantine bucket: %s belongs to no QUARANTINED record", k)
		}
	}
	return statuses
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
