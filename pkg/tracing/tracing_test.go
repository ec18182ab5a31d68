package tracing

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/sluice-dev/sluice/pkg/testenv"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

func TestLoadConfig(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	cases := []struct {
		name    string
		getenv  func(string) string
		want    Config
		wantErr string
	}{
		{"off by default", env(), Config{Mode: Off, Service: "sluice-processor"}, ""},
		{"xray in the function's region", env("SLUICE_TRACING", "xray", "AWS_REGION", "eu-west-1", "AWS_LAMBDA_FUNCTION_NAME", "fn"),
			Config{Mode: XRay, Endpoint: "https://xray.eu-west-1.amazonaws.com/v1/traces", Region: "eu-west-1", Service: "fn"}, ""},
		{"xray needs a region", env("SLUICE_TRACING", "XRay"), Config{}, "AWS_REGION"},
		{"otlp defaults to a local collector", env("SLUICE_TRACING", "otlp"), Config{Mode: OTLP, Endpoint: DefaultOTLPEndpoint, Service: "sluice-processor"}, ""},
		{"otlp base endpoint gets the traces path", env("SLUICE_TRACING", "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
			Config{Mode: OTLP, Endpoint: "http://collector:4318/v1/traces", Service: "sluice-processor"}, ""},
		{"otlp traces endpoint is taken whole", env("SLUICE_TRACING", "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT", "http://a", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://b/custom"),
			Config{Mode: OTLP, Endpoint: "https://b/custom", Service: "sluice-processor"}, ""},
		{"otlp endpoint must be http(s)", env("SLUICE_TRACING", "otlp", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "collector:4318"), Config{}, "not an http(s) URL"},
		{"unknown mode", env("SLUICE_TRACING", "jaeger"), Config{}, "want off, xray or otlp"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := LoadConfig(c.getenv)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err %v, want one mentioning %q", err, c.wantErr)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, c.want)
			}
		})
	}
}

// spanSet records a small trace with every kind of field the encoder writes.
func spanSet(t *testing.T) tracetest.SpanStubs {
	t.Helper()
	rec := tracetest.NewInMemoryExporter()
	p := New("svc", sdktrace.WithSyncer(rec))
	tr := p.Tracer()
	link := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5}, TraceFlags: trace.FlagsSampled, Remote: true})
	ctx, root := tr.Start(context.Background(), "object", trace.WithSpanKind(trace.SpanKindConsumer), trace.WithLinks(trace.Link{SpanContext: link, Attributes: []attribute.KeyValue{attribute.String("why", "invocation")}}),
		trace.WithAttributes(attribute.String("s", "hostile\x1b]52;c;\x07key"), attribute.Int64("i", -7), attribute.Float64("f", 0.5), attribute.Bool("b", true),
			attribute.StringSlice("ss", []string{"a", "b"}), attribute.Int64Slice("is", []int64{1, 2}), attribute.Float64Slice("fs", []float64{1.5}), attribute.BoolSlice("bs", []bool{false}),
			attribute.ByteSlice("by", []byte{0, 0xff}), attribute.Slice("mixed", attribute.StringValue("x"), attribute.IntValue(3)),
			attribute.Map("m", attribute.String("k", "v")), attribute.KeyValue{Key: "empty"}))
	_, child := tr.Start(ctx, "decode")
	child.AddEvent("retry", trace.WithAttributes(attribute.Int("try", 2)))
	child.SetStatus(codes.Error, "not an image")
	child.End()
	root.SetStatus(codes.Ok, "")
	root.End()
	return rec.GetSpans()
}

// The bytes we post decode, with OpenTelemetry's generated OTLP types, to the spans recorded.
func TestEncodedRequestDecodesAsOTLP(t *testing.T) {
	stubs := spanSet(t)
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(encodeRequest(stubs.Snapshots()), &req); err != nil {
		t.Fatal(err)
	}
	if len(req.ResourceSpans) != 1 || len(req.ResourceSpans[0].ScopeSpans) != 1 {
		t.Fatalf("want one resource and one scope: %v", &req)
	}
	rs := req.ResourceSpans[0]
	if got := kvs(rs.Resource.Attributes); got["service.name"] != "svc" || got["cloud.provider"] != "aws" {
		t.Errorf("resource attributes %v", got)
	}
	ss := rs.ScopeSpans[0]
	if ss.Scope.Name != tracerName {
		t.Errorf("scope %q", ss.Scope.Name)
	}
	if len(ss.Spans) != len(stubs) {
		t.Fatalf("%d spans, want %d", len(ss.Spans), len(stubs))
	}
	for i, want := range stubs {
		got := ss.Spans[i]
		tid, sid, pid := want.SpanContext.TraceID(), want.SpanContext.SpanID(), want.Parent.SpanID()
		if got.Name != want.Name || hex.EncodeToString(got.TraceId) != tid.String() || hex.EncodeToString(got.SpanId) != sid.String() ||
			got.StartTimeUnixNano != uint64(want.StartTime.UnixNano()) || got.EndTimeUnixNano != uint64(want.EndTime.UnixNano()) ||
			int(got.Kind) != int(want.SpanKind) {
			t.Errorf("span %d: got %v, want %+v", i, got, want)
		}
		if want.Parent.IsValid() != (len(got.ParentSpanId) > 0) || (want.Parent.IsValid() && hex.EncodeToString(got.ParentSpanId) != pid.String()) {
			t.Errorf("span %s: parent %x, want %s", want.Name, got.ParentSpanId, pid)
		}
	}
	decode, object := ss.Spans[0], ss.Spans[1]
	if decode.Status.Code != tracepb.Status_STATUS_CODE_ERROR || decode.Status.Message != "not an image" {
		t.Errorf("error status %v", decode.Status)
	}
	if object.Status.Code != tracepb.Status_STATUS_CODE_OK {
		t.Errorf("ok status %v", object.Status)
	}
	if len(decode.Events) != 1 || decode.Events[0].Name != "retry" || kvs(decode.Events[0].Attributes)["try"] != "2" {
		t.Errorf("events %v", decode.Events)
	}
	if len(object.Links) != 1 || hex.EncodeToString(object.Links[0].TraceId) != "01020300000000000000000000000000" || kvs(object.Links[0].Attributes)["why"] != "invocation" {
		t.Errorf("links %v", object.Links)
	}
	want := map[string]string{"s": "hostile\x1b]52;c;\x07key", "i": "-7", "f": "0.5", "b": "true", "ss": `["a","b"]`, "is": "[1,2]", "fs": "[1.5]", "bs": "[false]",
		"by": "bytes:00ff", "mixed": `["x",3]`, "m": "map:k=v", "empty": "empty"}
	if got := kvs(object.Attributes); !equalMaps(got, want) {
		t.Errorf("attributes %v, want %v", got, want)
	}
}

// kvs renders OTLP attributes as strings (arrays as JSON).
func kvs(attrs []*commonpb.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range attrs {
		m[kv.Key] = anyString(kv.Value)
	}
	return m
}

func anyString(v *commonpb.AnyValue) string {
	switch x := v.Value.(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		b, _ := json.Marshal(x.IntValue)
		return string(b)
	case *commonpb.AnyValue_DoubleValue:
		b, _ := json.Marshal(x.DoubleValue)
		return string(b)
	case *commonpb.AnyValue_BoolValue:
		b, _ := json.Marshal(x.BoolValue)
		return string(b)
	case *commonpb.AnyValue_BytesValue:
		return "bytes:" + hex.EncodeToString(x.BytesValue)
	case *commonpb.AnyValue_KvlistValue:
		var parts []string
		for _, kv := range x.KvlistValue.Values {
			parts = append(parts, kv.Key+"="+anyString(kv.Value))
		}
		return "map:" + strings.Join(parts, ",")
	case nil:
		return "empty"
	case *commonpb.AnyValue_ArrayValue:
		var parts []json.RawMessage
		for _, e := range x.ArrayValue.Values {
			s := anyString(e)
			if _, ok := e.Value.(*commonpb.AnyValue_StringValue); ok {
				b, _ := json.Marshal(s)
				s = string(b)
			}
			parts = append(parts, json.RawMessage(s))
		}
		b, _ := json.Marshal(parts)
		return string(b)
	}
	return "?"
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// The X-Ray mode posts protobuf signed with SigV4 for the xray service in the region; Flushing
// exports each invocation's spans before the invocation returns (Lambda may freeze right after).
func TestXRayExportIsSignedAndFlushedPerInvocation(t *testing.T) {
	rcv := testenv.NewOTLP(t)
	creds := credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "session-token")
	p := Start(Config{Mode: XRay, Endpoint: rcv.URL, Region: "eu-west-1", Service: "fn"}, aws.NewCredentialsCache(creds))

	h := p.Flushing(func(ctx context.Context, raw json.RawMessage) (any, error) {
		_, span := p.Tracer().Start(ctx, "object")
		span.End()
		return "ok", nil
	}, func(err error) { t.Errorf("flush: %v", err) })
	if out, err := h(context.Background(), nil); out != "ok" || err != nil {
		t.Fatalf("handler gave %v, %v", out, err)
	}
	spans := rcv.Spans(t)
	if len(spans) != 1 || spans[0].Name != "object" {
		t.Fatalf("received %v right after the invocation, want its span", spans)
	}
	req := rcv.Requests()[0]
	auth := req.Header.Get("Authorization")
	date := req.Header.Get("X-Amz-Date")
	if len(date) < 8 || !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"+date[:8]+"/eu-west-1/xray/aws4_request") || !strings.Contains(auth, "SignedHeaders=") {
		t.Errorf("Authorization %q (X-Amz-Date %q)", auth, date)
	}
	if req.Header.Get("X-Amz-Security-Token") != "session-token" || req.Header.Get("Content-Type") != "application/x-protobuf" || req.URL.Path != "/v1/traces" {
		t.Errorf("headers %v, path %s", req.Header, req.URL.Path)
	}
	if got := XRayTraceID(trace.TraceID(spans[0].TraceId)); time.Since(xrayEpoch(t, got)) > time.Minute {
		t.Errorf("trace id %s does not start with the current epoch, as X-Ray's do", got)
	}
}

func xrayEpoch(t *testing.T, id string) time.Time {
	t.Helper()
	var sec int64
	for _, c := range id[2:10] {
		sec = sec*16 + int64(strings.IndexRune("0123456789abcdef", c))
	}
	return time.Unix(sec, 0)
}

// A refused export is reported (with the receiver's reason) and does not fail the invocation.
func TestRefusedExportIsReportedNotFatal(t *testing.T) {
	rcv := testenv.NewOTLP(t)
	rcv.Refuse(http.StatusForbidden)
	p := Start(Config{Mode: OTLP, Endpoint: rcv.URL, Service: "fn"}, nil)
	var flushErr error
	h := p.Flushing(func(ctx context.Context, raw json.RawMessage) (any, error) {
		_, span := p.Tracer().Start(ctx, "object")
		span.End()
		return nil, errors.New("handler's own error")
	}, func(err error) { flushErr = err })
	if _, err := h(context.Background(), nil); err == nil || err.Error() != "handler's own error" {
		t.Fatalf("the handler's error became %v", err)
	}
	if flushErr == nil || !strings.Contains(flushErr.Error(), "403") || !strings.Contains(flushErr.Error(), "xray:PutSpans") {
		t.Errorf("flush error %v, want the refusal with its reason", flushErr)
	}
	if rcv.Requests()[0].Header.Get("Authorization") != "" {
		t.Error("the otlp mode signed its request")
	}
}

// Lambda's trace header becomes a remote span context; an object span linked to it follows its
// sampling decision, and stage spans follow the object span.
func TestObjectTracesFollowTheInvocationsSamplingDecision(t *testing.T) {
	for _, sampled := range []string{"1", "0"} {
		rec := tracetest.NewInMemoryExporter()
		tr := New("svc", sdktrace.WithSyncer(rec)).Tracer()
		ctx := Invocation(context.Background(), "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled="+sampled+";Lineage=a87bd80c:0")
		sc := trace.SpanContextFromContext(ctx)
		if got := XRayTraceID(sc.TraceID()); got != "1-5759e988-bd862e3fe1be46a994272793" || !sc.IsRemote() {
			t.Fatalf("invocation trace %s (remote %v)", got, sc.IsRemote())
		}
		octx, obj := tr.Start(ctx, "object", trace.WithNewRoot(), trace.WithLinks(trace.LinkFromContext(ctx)))
		_, stage := tr.Start(octx, "claim")
		stage.End()
		obj.End()
		want := map[string]int{"1": 2, "0": 0}[sampled]
		if n := len(rec.GetSpans()); n != want {
			t.Errorf("Sampled=%s: %d spans recorded, want %d", sampled, n, want)
		}
	}
	rec := tracetest.NewInMemoryExporter()
	tr := New("svc", sdktrace.WithSyncer(rec)).Tracer()
	_, obj := tr.Start(Invocation(context.Background(), ""), "object", trace.WithNewRoot())
	obj.End()
	if len(rec.GetSpans()) != 1 {
		t.Error("without an invocation trace (an operator's run) the object is not traced")
	}
}

func TestOffRecordsNothing(t *testing.T) {
	p := Start(Config{Mode: Off}, nil)
	_, span := p.Tracer().Start(context.Background(), "object")
	if span.SpanContext().IsValid() || span.IsRecording() {
		t.Error("tracing off still records spans")
	}
	if err := p.Flush(context.Background()); err != nil {
		t.Error(err)
	}
}
