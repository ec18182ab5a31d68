package processor_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambdacontext"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluice-dev/sluice/pkg/metrics"
	"github.com/sluice-dev/sluice/pkg/processor"
	"github.com/sluice-dev/sluice/pkg/tracing"
)

// traced rebuilds r's processor with its spans in an in-memory exporter and its log lines in a
// buffer.
func (r *rig) traced(t *testing.T) (*tracetest.InMemoryExporter, *bytes.Buffer) {
	t.Helper()
	spans := tracetest.NewInMemoryExporter()
	logs := &bytes.Buffer{}
	p, err := processor.Build(context.Background(), r.cfg, r.env.S3, r.env.DDB, slog.New(slog.NewJSONHandler(logs, nil)), metrics.New(io.Discard, "processor"))
	if err != nil {
		t.Fatal(err)
	}
	r.proc = p.WithTracer(tracing.New("test", sdktrace.WithSyncer(spans)).Tracer())
	return spans, logs
}

// lambdaTraceHeader is the X-Ray header Lambda hands an invocation under active tracing.
const lambdaTraceHeader = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1;Lineage=a87bd80c:0"

// invocation is a context as the Lambda runtime client builds it: request id and trace header.
func invocation(requestID, traceHeader string) context.Context {
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: requestID})
	//lint:ignore SA1029 the key aws-lambda-go uses for the X-Ray trace header
	return context.WithValue(ctx, "x-amzn-trace-id", traceHeader)
}

// One object, one trace: a root span for the object with a span per stage under it, linked to
// the invocation's X-Ray trace, and the trace id in every log line about the object.
func TestEachObjectIsOneTraceWithASpanPerStage(t *testing.T) {
	r := newRig(t, nil)
	spans, logs := r.traced(t)
	r.upload(t, "uploads/traced.jpg", grayJPEG(t, 1200, 800), nil)
	r.upload(t, "uploads/not-an-image.jpg", []byte("plain text"), nil)
	batch, _ := json.Marshal(map[string]any{"Records": []any{
		map[string]any{"messageId": "m-1", "eventSource": "aws:sqs", "body": s3Body(r.staging, "uploads/traced.jpg")},
		map[string]any{"messageId": "m-2", "eventSource": "aws:sqs", "body": s3Body(r.staging, "uploads/not-an-image.jpg")},
	}})
	if _, err := r.proc.Handle(invocation("req-traced", lambdaTraceHeader), batch); err != nil {
		t.Fatal(err)
	}

	got := spans.GetSpans()
	traced := objectTrace(t, got, "uploads/traced.jpg")
	if want := []string{"head", "claim", "download", "decode", "render", "publish", "publish", "publish", "commit"}; !slices.Equal(names(traced.stages), want) {
		t.Errorf("stages %v, want %v", names(traced.stages), want)
	}
	attrs := attrMap(traced.root)
	if attrs["sluice.outcome"] != "succeeded" || attrs["aws.s3.key"] != "uploads/traced.jpg" || attrs["faas.invocation_id"] != "req-traced" {
		t.Errorf("object span attributes %v", attrs)
	}
	invocationTrace, _ := trace.TraceIDFromHex("5759e988bd862e3fe1be46a994272793")
	if len(traced.root.Links) != 1 || traced.root.Links[0].SpanContext.TraceID() != invocationTrace {
		t.Errorf("object span links %+v, want the invocation's X-Ray trace", traced.root.Links)
	}
	if traced.root.SpanContext.TraceID() == invocationTrace {
		t.Error("the object shares the invocation's trace: one trace per object was asked")
	}

	bad := objectTrace(t, got, "uploads/not-an-image.jpg")
	if a := attrMap(bad.root); a["sluice.outcome"] != "quarantined" || a["sluice.reason"] != "unsupported_type" {
		t.Errorf("quarantined object's span attributes %v", a)
	}
	if d := find(bad.stages, "decode"); d == nil || d.Status.Code != 1 /* codes.Error */ {
		t.Errorf("the decode span of a file that is not an image is not an error: %+v", d)
	}
	if find(bad.stages, "quarantine") == nil {
		t.Errorf("no quarantine span: %v", names(bad.stages))
	}
	if traced.root.SpanContext.TraceID() == bad.root.SpanContext.TraceID() {
		t.Error("two objects of one batch share a trace")
	}

	for key, tr := range map[string]objTrace{"uploads/traced.jpg": traced, "uploads/not-an-image.jpg": bad} {
		want := tracing.XRayTraceID(tr.root.SpanContext.TraceID())
		lines := logLines(t, logs, key)
		if len(lines) == 0 {
			t.Fatalf("no log line about %s", key)
		}
		for _, l := range lines {
			if l["trace_id"] != want {
				t.Errorf("log line about %s carries trace_id %v, want %s: %v", key, l["trace_id"], want, l)
			}
		}
	}
}

// The handler's own log lines (about no object) carry the invocation's trace id.
func TestHandlerLogLinesCarryTheInvocationsTrace(t *testing.T) {
	r := newRig(t, nil)
	_, logs := r.traced(t)
	if _, err := r.proc.Handle(invocation("req-bad", lambdaTraceHeader), []byte(`{"nonsense": true}`)); err == nil {
		t.Fatal("an unrecognised payload was accepted")
	}
	var line map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(logs.Bytes()[bytes.LastIndexByte(bytes.TrimSpace(logs.Bytes()), '\n')+1:]), &line); err != nil {
		t.Fatal(err)
	}
	if line["msg"] != "unrecognised payload" || line["trace_id"] != "1-5759e988-bd862e3fe1be46a994272793" || line["request_id"] != "req-bad" {
		t.Errorf("log line %v, want the invocation's request and trace ids", line)
	}
}

// An invocation X-Ray did not sample leaves its objects untraced: the sampling rules decide.
func TestUnsampledInvocationRecordsNoSpans(t *testing.T) {
	r := newRig(t, nil)
	spans, _ := r.traced(t)
	r.upload(t, "uploads/quiet.jpg", grayJPEG(t, 300, 200), nil)
	batch, _ := json.Marshal(map[string]any{"Records": []any{
		map[string]any{"messageId": "m-1", "eventSource": "aws:sqs", "body": s3Body(r.staging, "uploads/quiet.jpg")},
	}})
	header := strings.Replace(lambdaTraceHeader, "Sampled=1", "Sampled=0", 1)
	if _, err := r.proc.Handle(invocation("req-quiet", header), batch); err != nil {
		t.Fatal(err)
	}
	if n := len(spans.GetSpans()); n != 0 {
		t.Errorf("%d spans recorded for an invocation X-Ray did not sample", n)
	}
}

type objTrace struct {
	root   tracetest.SpanStub
	stages []tracetest.SpanStub // in start order
}

// objectTrace finds key's object span and the spans of its trace, checking that each stage is a
// child of the object span.
func objectTrace(t *testing.T, spans tracetest.SpanStubs, key string) objTrace {
	t.Helper()
	var tr objTrace
	found := false
	for _, s := range spans {
		if s.Name == "object" && attrMap(s)["aws.s3.key"] == key {
			tr.root, found = s, true
		}
	}
	if !found {
		t.Fatalf("no object span for %s among %v", key, names(spans))
	}
	for _, s := range spans {
		if s.SpanContext.TraceID() != tr.root.SpanContext.TraceID() || s.Name == "object" {
			continue
		}
		if s.Parent.SpanID() != tr.root.SpanContext.SpanID() {
			t.Errorf("span %s of %s is not a child of the object span", s.Name, key)
		}
		tr.stages = append(tr.stages, s)
	}
	slices.SortStableFunc(tr.stages, func(a, b tracetest.SpanStub) int { return a.StartTime.Compare(b.StartTime) })
	return tr
}

func names(spans []tracetest.SpanStub) []string {
	out := make([]string, len(spans))
	for i, s := range spans {
		out[i] = s.Name
	}
	return out
}

func find(spans []tracetest.SpanStub, name string) *tracetest.SpanStub {
	for i := range spans {
		if spans[i].Name == name {
			return &spans[i]
		}
	}
	return nil
}

func attrMap(s tracetest.SpanStub) map[string]string {
	m := map[string]string{}
	for _, kv := range s.Attributes {
		m[string(kv.Key)] = kv.Value.String()
	}
	return m
}

// logLines are the JSON log lines whose key is key.
func logLines(t *testing.T, logs *bytes.Buffer, key string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(logs.Bytes()))
	for sc.Scan() {
		var l map[string]any
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if l["key"] == key {
			out = append(out, l)
		}
	}
	return out
}
