package testenv

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// OTLP is an OTLP/HTTP traces receiver (what an OpenTelemetry collector or X-Ray's OTLP endpoint
// answers on /v1/traces): it keeps each request and decodes its spans with OpenTelemetry's
// generated types. Refuse makes it answer with an error status instead.
type OTLP struct {
	URL string // the traces endpoint: <server>/v1/traces

	srv      *httptest.Server
	mu       sync.Mutex
	requests []*http.Request
	bodies   [][]byte
	refuse   int
}

// NewOTLP starts a receiver, stopped when the test ends.
func NewOTLP(t testing.TB) *OTLP {
	o := &OTLP{}
	o.srv = httptest.NewServer(http.HandlerFunc(o.serve))
	o.URL = o.srv.URL + "/v1/traces"
	t.Cleanup(o.srv.Close)
	return o
}

// Refuse makes later requests fail with status and an X-Ray-like reason.
func (o *OTLP) Refuse(status int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.refuse = status
}

func (o *OTLP) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	o.mu.Lock()
	o.requests, o.bodies = append(o.requests, req), append(o.bodies, body)
	status := o.refuse
	o.mu.Unlock()
	if status != 0 {
		http.Error(w, "AccessDeniedException: not authorized to perform xray:PutSpans", status)
	}
}

// Requests are the requests received so far (their bodies read).
func (o *OTLP) Requests() []*http.Request {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]*http.Request(nil), o.requests...)
}

// Spans are the spans received so far, decoded; a body that is not an ExportTraceServiceRequest
// fails the test.
func (o *OTLP) Spans(t testing.TB) []*tracepb.Span {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []*tracepb.Span
	for _, b := range o.bodies {
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &req); err != nil {
			t.Fatalf("OTLP request is not an ExportTraceServiceRequest: %v", err)
		}
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				out = append(out, ss.Spans...)
			}
		}
	}
	return out
}
