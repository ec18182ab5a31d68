package localrun_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluice-dev/sluice/pkg/localrun"
	"github.com/sluice-dev/sluice/pkg/localstack"
	"github.com/sluice-dev/sluice/pkg/processor"
	"github.com/sluice-dev/sluice/pkg/state"
	"github.com/sluice-dev/sluice/pkg/testenv"
	"github.com/sluice-dev/sluice/pkg/tracing"
	"github.com/sluice-dev/sluice/pkg/trigger"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// rieRig is the processor's built bootstrap and the local stack's Runtime Interface Emulator.
type rieRig struct {
	env       *testenv.Env
	root, rie string
	bootstrap string
	stack     [][2]string // the local stack's endpoints and keys, as its env file records them
}

func newRIERig(t *testing.T) rieRig {
	t.Helper()
	env := testenv.Open(t)
	root, err := localstack.FindRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := localstack.Running(root)
	if err != nil {
		t.Fatal(err)
	}
	rie := cfg.RIEBinary()
	if _, err := os.Stat(rie); err != nil {
		if os.Getenv(testenv.RequireEnv) == "1" {
			t.Fatalf("the local stack installs the Runtime Interface Emulator: %v", err)
		}
		t.Skipf("no Runtime Interface Emulator (`make local-up` installs it): %v", err)
	}
	bootstrap, err := localrun.BuildBootstrap(context.Background(), root, "functions/processor", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return rieRig{env: env, root: root, rie: rie, bootstrap: bootstrap, stack: cfg.Env()}
}

// started is a bootstrap running under the emulator, and where it works.
type started struct {
	rie            *localrun.RIE
	staging, table string
}

// start runs the bootstrap under the emulator on fresh buckets and a fresh table, with the
// template's settings, overrides, and timeout if not zero.
func (r rieRig) start(t *testing.T, timeout time.Duration, overrides map[string]string) started {
	t.Helper()
	return r.startLogged(t, timeout, overrides, testWriter{t})
}

// startLogged is start with the function's and the emulator's output going to log.
func (r rieRig) startLogged(t *testing.T, timeout time.Duration, overrides map[string]string, log io.Writer) started {
	t.Helper()
	st := started{staging: r.env.Bucket(t), table: r.env.Table(t, state.TableDefinition)}
	vars := map[string]string{"STATE_TABLE": st.table, "OUTPUT_BUCKET": r.env.Bucket(t), "QUARANTINE_BUCKET": r.env.Bucket(t)}
	for k, v := range overrides {
		vars[k] = v
	}
	fn, err := localrun.ProcessorFunction(r.root, r.bootstrap, r.stack, vars)
	if err != nil {
		t.Fatal(err)
	}
	if timeout > 0 {
		fn.Timeout = timeout
	}
	if st.rie, err = localrun.StartRIE(context.Background(), r.rie, fn, log); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.rie.Close)
	return st
}

// s3Event is an S3 notification of one created object.
func s3Event(bucket, key string) string {
	b, _ := json.Marshal(map[string]any{"Records": []any{map[string]any{
		"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
		"s3": map[string]any{"bucket": map[string]any{"name": bucket}, "object": map[string]any{"key": key}},
	}}})
	return string(b)
}

// testWriter sends the function's output to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Every file in testdata/events goes through the processor's built bootstrap under AWS's
// Runtime Interface Emulator, as `sam local invoke` runs it: the real Runtime API, the template's
// timeout and memory size. Each answers without error, with a REPORT line.
func TestEveryEventFileThroughTheBuiltBootstrap(t *testing.T) {
	r := newRIERig(t)
	files, err := filepath.Glob(filepath.Join(r.root, "testdata", "events", "*.json*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no event files: %v", err)
	}
	var img bytes.Buffer
	if err := jpeg.Encode(&img, image.NewGray(image.Rect(0, 0, 320, 240)), nil); err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			st := r.start(t, 0, nil)
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"sluice-staging", "sourcebucket"} {
				raw = bytes.ReplaceAll(raw, []byte(name), []byte(st.staging))
			}
			payloads, err := localrun.Payloads(raw)
			if err != nil {
				t.Fatal(err)
			}
			for _, payload := range payloads {
				p, _ := trigger.Parse(payload)
				evs := p.Events
				for _, m := range p.Messages {
					evs = append(evs, m.Events...)
				}
				for _, task := range p.Tasks {
					evs = append(evs, task.Event)
				}
				for _, ev := range evs {
					if ev.Action == trigger.Created {
						if _, err := r.env.S3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(ev.Bucket), Key: aws.String(ev.Key), Body: bytes.NewReader(img.Bytes())}); err != nil {
							t.Fatal(err)
						}
					}
				}
				resp, report, err := st.rie.Invoke(context.Background(), payload)
				if err != nil {
					t.Fatalf("invoke: %v\n%s", err, resp)
				}
				if !strings.HasPrefix(report, "REPORT RequestId: ") || !strings.Contains(report, "Memory Size: 1536 MB") {
					t.Errorf("REPORT line %q", report)
				}
				checkResponse(t, p.Kind, resp)
			}
		})
	}
}

// checkResponse asserts a response reports every event done.
func checkResponse(t *testing.T, kind trigger.Kind, resp []byte) {
	t.Helper()
	if kind == trigger.KindSQS {
		var r events.SQSEventResponse
		if err := json.Unmarshal(resp, &r); err != nil || len(r.BatchItemFailures) != 0 {
			t.Errorf("SQS response %s (%v)", resp, err)
		}
		return
	}
	if kind == trigger.KindBatch {
		var r events.S3BatchJobResponse
		if err := json.Unmarshal(resp, &r); err != nil || len(r.Results) == 0 {
			t.Fatalf("S3 Batch Operations response %s (%v)", resp, err)
		}
		for _, res := range r.Results {
			if res.ResultCode != "Succeeded" {
				t.Errorf("task %s: %s %s", res.TaskID, res.ResultCode, res.ResultString)
			}
		}
		return
	}
	var r processor.Response
	if err := json.Unmarshal(resp, &r); err != nil {
		t.Fatalf("response %s: %v", resp, err)
	}
	for _, res := range r.Results {
		if res.Outcome != processor.Succeeded && res.Outcome != processor.Removed {
			t.Errorf("%s: %s (%s)", res.Key, res.Outcome, res.Detail)
		}
	}
}

// The deadline margin against the real deadline: the function's timeout is 7 s, the margin the
// default 5 s, and S3 stalls the first temp PUT (a proxy in front of MinIO holds it). The attempt
// stops at the margin, records FAILED with its claim released, and the invocation ends in the
// handler's named error well before Lambda would kill it.
func TestDeadlineMarginUnderTheRealDeadline(t *testing.T) {
	r := newRIERig(t)
	target, err := url.Parse(os.Getenv("AWS_ENDPOINT_URL_S3"))
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	stall := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodPut && strings.Contains(req.URL.Path, "/tmp/") {
			// Read the body, so that the server sees the client hang up, then hold the answer.
			_, _ = io.Copy(io.Discard, req.Body)
			select {
			case <-req.Context().Done():
			case <-time.After(20 * time.Second):
				http.Error(w, "stalled", http.StatusServiceUnavailable)
			}
			return
		}
		proxy.ServeHTTP(w, req)
	}))
	defer stall.Close()
	st := r.start(t, 7*time.Second, map[string]string{"AWS_ENDPOINT_URL_S3": stall.URL, "RETRIES_PER_ATTEMPT": "0"})
	const key = "uploads/stalled.jpg"
	var img bytes.Buffer
	if err := jpeg.Encode(&img, image.NewGray(image.Rect(0, 0, 320, 240)), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := r.env.S3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(st.staging), Key: aws.String(key), Body: bytes.NewReader(img.Bytes())}); err != nil {
		t.Fatal(err)
	}
	_, report, err := st.rie.Invoke(context.Background(), []byte(s3Event(st.staging, key)))
	// The handler's own error, not Lambda's timeout: the attempt stopped before the deadline.
	var fe *localrun.FunctionError
	if !errors.As(err, &fe) || fe.Type != "EventsFailedError" {
		t.Fatalf("invocation: %v, want the function error EventsFailedError", err)
	}
	if !strings.Contains(report, "REPORT") {
		t.Errorf("REPORT line %q", report)
	}
	t.Log(report)
	rec, found, err := state.New(r.env.DDB, st.table, 0).Get(context.Background(), state.ID(st.staging, key))
	if err != nil || !found || rec.Status != state.Failed || rec.Claimed() || !strings.Contains(rec.LastError, "deadline") {
		t.Errorf("state %+v (found %v, %v), want FAILED at the deadline with the claim released", rec, found, err)
	}
}

// The main job (make demo) through the real runtime: every sample uploaded, each notification
// handed by the hub to the processor's built bootstrap under the emulator, every file terminal.
func TestDemoThroughTheBuiltBootstrap(t *testing.T) {
	r := newRIERig(t)
	var out bytes.Buffer
	err := localrun.Demo(context.Background(), r.env.S3, r.env.DDB, localrun.DemoOptions{
		Lambda: localrun.Lambda{RIE: r.rie, StackEnv: r.stack, BuildDir: t.TempDir()},
		Root:   r.root, HubURL: r.env.HubURL, NotifyARN: r.env.NotifyARN,
		Out: &out, Output: testWriter{t}, Log: slog.New(slog.NewJSONHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	if s, q := strings.Count(out.String(), "SUCCEEDED"), strings.Count(out.String(), "QUARANTINED"); s != 6 || q != 4 {
		t.Errorf("%d succeeded and %d quarantined, want 6 and 4:\n%s", s, q, out.String())
	}
}

// make bench: the cold start as Lambda measures it (the emulator's init: process start to the
// function's first poll of the Runtime API), for the processor and for the smallest aws-lambda-go
// function, each over fresh starts. A report, not a test: it runs only when make bench asks.
func TestColdStartUnderTheEmulator(t *testing.T) {
	if os.Getenv("SLUICE_BENCH_COLDSTART") == "" {
		t.Skip("a make bench report")
	}
	r := newRIERig(t)
	baseline, err := localrun.BuildBootstrap(context.Background(), r.root, "functions/processor/testdata/baseline", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const starts = 15
	measure := func(bootstrap string) []time.Duration {
		var out []time.Duration
		for range starts {
			fn, err := localrun.ProcessorFunction(r.root, bootstrap, r.stack, nil)
			if err != nil {
				t.Fatal(err)
			}
			rie, err := localrun.StartRIE(context.Background(), r.rie, fn, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			_, _, _ = rie.Invoke(context.Background(), []byte(`{"Event":"s3:TestEvent"}`))
			out = append(out, rie.InitDuration())
			rie.Close()
		}
		slices.Sort(out)
		return out
	}
	for _, c := range []struct{ name, bootstrap string }{{"processor", r.bootstrap}, {"baseline (aws-lambda-go, empty handler)", baseline}} {
		d := measure(c.bootstrap)
		fmt.Printf("cold start under the RIE, %s: Init Duration median %.1f ms, p90 %.1f ms (%d starts)\n",
			c.name, ms(d[len(d)/2]), ms(d[len(d)*9/10]), len(d))
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// A handler that panics, or calls os.Exit, as Lambda reports it through the real Runtime API: an
// invocation error naming what happened, and the next invocation answered by a restarted runtime.
// (The processor's own handler turns its panics into failed attempts; this is what happens to
// whatever escapes it.)
func TestPanicAndExitAsLambdaReportsThem(t *testing.T) {
	r := newRIERig(t)
	crasher, err := localrun.BuildBootstrap(context.Background(), r.root, "functions/processor/testdata/crasher", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fn, err := localrun.ProcessorFunction(r.root, crasher, r.stack, nil)
	if err != nil {
		t.Fatal(err)
	}
	rie, err := localrun.StartRIE(context.Background(), r.rie, fn, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	defer rie.Close()
	for _, c := range []struct{ payload, wantType string }{
		{`{"panic": true}`, "string"}, // aws-lambda-go names a panic by its value's type
		{`{"exit": 3}`, "Runtime.ExitError"},
	} {
		_, _, err := rie.Invoke(context.Background(), []byte(c.payload))
		var fe *localrun.FunctionError
		if !errors.As(err, &fe) {
			t.Errorf("%s: %v, want a function error", c.payload, err)
		} else {
			t.Logf("%s: errorType %q, errorMessage %q", c.payload, fe.Type, fe.Message)
			if fe.Type != c.wantType {
				t.Errorf("%s: errorType %q, want %q", c.payload, fe.Type, c.wantType)
			}
		}
		resp, _, err := rie.Invoke(context.Background(), []byte(`{}`))
		if err != nil || string(resp) != `"ok"` {
			t.Errorf("after %s the next invocation: %s %v", c.payload, resp, err)
		}
	}
}

// Traces from the built bootstrap: with SLUICE_TRACING=otlp, the object's spans reach the
// receiver before the invocation's answer (Lambda may freeze the process right after it), and the
// function's log lines about the object carry its trace id. (The emulator passes no X-Ray trace
// header to the function, so the link to Lambda's trace is tested in pkg/processor, with the
// context key aws-lambda-go sets.)
func TestTracesLeaveTheBuiltBootstrapWithEachInvocation(t *testing.T) {
	r := newRIERig(t)
	rcv := testenv.NewOTLP(t)
	var logs syncBuffer
	st := r.startLogged(t, 0, map[string]string{"SLUICE_TRACING": "otlp", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": rcv.URL}, io.MultiWriter(&logs, testWriter{t}))
	var img bytes.Buffer
	if err := jpeg.Encode(&img, image.NewGray(image.Rect(0, 0, 320, 240)), nil); err != nil {
		t.Fatal(err)
	}
	key := "uploads/traced.jpg"
	if _, err := r.env.S3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(st.staging), Key: aws.String(key), Body: bytes.NewReader(img.Bytes())}); err != nil {
		t.Fatal(err)
	}
	if resp, _, err := st.rie.Invoke(context.Background(), []byte(s3Event(st.staging, key))); err != nil {
		t.Fatalf("invoke: %v\n%s", err, resp)
	}

	spans := rcv.Spans(t) // read right after the answer: no waiting for a batch to leave
	var object *tracepb.Span
	var stages []string
	for _, s := range spans {
		if s.Name == "object" {
			object = s
		}
	}
	if object == nil {
		t.Fatalf("no object span among %d received", len(spans))
	}
	for _, s := range spans {
		if bytes.Equal(s.ParentSpanId, object.SpanId) {
			stages = append(stages, s.Name)
		}
	}
	if want := []string{"head", "claim", "download", "decode", "render", "publish", "publish", "publish", "commit"}; !slices.Equal(stages, want) {
		t.Errorf("stages %v, want %v", stages, want)
	}
	want := tracing.XRayTraceID(trace.TraceID(object.TraceId))
	n := 0
	for _, line := range strings.Split(logs.String(), "\n") {
		var l map[string]any
		if json.Unmarshal([]byte(line), &l) != nil || l["key"] != key {
			continue
		}
		n++
		if l["trace_id"] != want {
			t.Errorf("log line about the object has trace_id %v, want %s: %s", l["trace_id"], want, line)
		}
	}
	if n == 0 {
		t.Error("no log line about the object")
	}
}

// syncBuffer is a bytes.Buffer safe for the emulator's output goroutine and the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// `sluice local serve` prints the event each outcome would put on EventBridge: the built
// bootstrap under the emulator announces through the real SDK to serve's stand-in.
func TestServePrintsEachOutcomesEvent(t *testing.T) {
	r := newRIERig(t)
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- localrun.Serve(ctx, r.env.S3, r.env.DDB, localrun.DemoOptions{
			Lambda: localrun.Lambda{RIE: r.rie, StackEnv: r.stack, BuildDir: t.TempDir()},
			Root:   r.root, HubURL: r.env.HubURL, NotifyARN: r.env.NotifyARN,
			Out: &out, Output: testWriter{t}, Log: slog.New(slog.NewJSONHandler(io.Discard, nil)),
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	for !strings.Contains(out.String(), "serving:") {
		select {
		case err := <-done: // it stopped before serving: a build or setup failure
			done <- nil
			t.Fatalf("serve stopped before serving: %v\n%s", err, out.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	var img bytes.Buffer
	if err := jpeg.Encode(&img, image.NewGray(image.Rect(0, 0, 320, 240)), nil); err != nil {
		t.Fatal(err)
	}
	// The local stack's buckets and table outlive the test: a key of its own, each run.
	key := fmt.Sprintf("uploads/served/%d.jpg", time.Now().UnixNano())
	if _, err := r.env.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(localrun.StagingBucket), Key: aws.String(key), Body: bytes.NewReader(img.Bytes())}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		for _, line := range strings.Split(out.String(), "\n") {
			var ev struct {
				Source     string `json:"source"`
				DetailType string `json:"detail-type"`
				Detail     struct {
					Key      string `json:"key"`
					EventID  string `json:"event_id"`
					Manifest string `json:"manifest"`
				} `json:"detail"`
			}
			if json.Unmarshal([]byte(line), &ev) != nil || ev.Detail.Key != key {
				continue
			}
			if ev.Source != "sluice" || ev.DetailType != "Object Processed" || ev.Detail.EventID == "" || ev.Detail.Manifest == "" {
				t.Fatalf("printed %s", line)
			}
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("no event printed for %s:\n%s", key, out.String())
}
