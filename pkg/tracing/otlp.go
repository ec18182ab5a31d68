package tracing

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/protobuf/encoding/protowire"
)

// exporter sends spans to an OTLP/HTTP receiver as binary protobuf (an ExportTraceServiceRequest,
// OTLP 1.x). It is ours rather than otlptracehttp because that exporter links gRPC and the
// generated OTLP types (8.6 MB of the 25 MB bootstrap budget, and cold-start time) to encode a
// dozen stable messages; the test decodes our bytes with the generated types.
type exporter struct {
	url    string
	client *http.Client
}

var _ sdktrace.SpanExporter = (*exporter)(nil)

// maxErrorBody bounds how much of a refusal's body goes into the error.
const maxErrorBody = 512

func (e *exporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if len(spans) == 0 {
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(encodeRequest(spans)))
	if err != nil {
		return fmt.Errorf("tracing: export request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	resp, err := e.client.Do(req)
	if err != nil {
		return fmt.Errorf("tracing: export to %s: %w", e.url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("tracing: %s refused %d spans: %s: %s", e.url, len(spans), resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

func (e *exporter) Shutdown(context.Context) error { return nil }

// The OTLP field numbers used here (opentelemetry/proto/{collector/trace,trace,common,resource}/v1).
const (
	fRequestResourceSpans = 1 // ExportTraceServiceRequest.resource_spans
	fResourceSpansRes     = 1 // ResourceSpans.resource
	fResourceSpansScopes  = 2 // ResourceSpans.scope_spans
	fResourceAttributes   = 1 // Resource.attributes
	fScopeSpansScope      = 1 // ScopeSpans.scope
	fScopeSpansSpans      = 2 // ScopeSpans.spans
	fScopeName            = 1 // InstrumentationScope.name
	fScopeVersion         = 2 // InstrumentationScope.version

	fSpanTraceID    = 1
	fSpanSpanID     = 2
	fSpanTraceState = 3
	fSpanParentID   = 4
	fSpanName       = 5
	fSpanKind       = 6
	fSpanStart      = 7
	fSpanEnd        = 8
	fSpanAttributes = 9
	fSpanDropAttrs  = 10
	fSpanEvents     = 11
	fSpanLinks      = 13
	fSpanStatus     = 15

	fEventTime       = 1
	fEventName       = 2
	fEventAttributes = 3

	fLinkTraceID    = 1
	fLinkSpanID     = 2
	fLinkTraceState = 3
	fLinkAttributes = 4

	fStatusMessage = 2
	fStatusCode    = 3

	fKeyValueKey   = 1
	fKeyValueValue = 2

	fAnyString = 1
	fAnyBool   = 2
	fAnyInt    = 3
	fAnyDouble = 4
	fAnyArray  = 5
	fAnyKVList = 6
	fAnyBytes  = 7
	fArrayVals = 1 // ArrayValue.values
	// KeyValueList.values
	fKVListValues = 1
)

// OTLP's status codes differ from the Go API's (codes.Error is 1 there, ERROR is 2 in OTLP).
var statusCodes = map[codes.Code]uint64{codes.Unset: 0, codes.Ok: 1, codes.Error: 2}

// encodeRequest groups spans by resource and scope, as OTLP nests them.
func encodeRequest(spans []sdktrace.ReadOnlySpan) []byte {
	type group struct {
		res   []byte
		scope []byte
		spans [][]byte
	}
	var groups []*group
	index := map[string]*group{}
	for _, s := range spans {
		var res []byte
		if r := s.Resource(); r != nil {
			res = attributes(nil, fResourceAttributes, r.Attributes())
		}
		scope := protowire.AppendString(protowire.AppendTag(nil, fScopeName, protowire.BytesType), s.InstrumentationScope().Name)
		if v := s.InstrumentationScope().Version; v != "" {
			scope = message(scope, fScopeVersion, []byte(v))
		}
		k := string(res) + "\x00" + string(scope)
		g := index[k]
		if g == nil {
			g = &group{res: res, scope: scope}
			index[k] = g
			groups = append(groups, g)
		}
		g.spans = append(g.spans, encodeSpan(s))
	}
	var out []byte
	for _, g := range groups {
		scopeSpans := message(nil, fScopeSpansScope, g.scope)
		for _, sp := range g.spans {
			scopeSpans = message(scopeSpans, fScopeSpansSpans, sp)
		}
		rs := message(nil, fResourceSpansRes, g.res)
		rs = message(rs, fResourceSpansScopes, scopeSpans)
		out = message(out, fRequestResourceSpans, rs)
	}
	return out
}

func encodeSpan(s sdktrace.ReadOnlySpan) []byte {
	sc := s.SpanContext()
	tid, sid := sc.TraceID(), sc.SpanID()
	b := message(nil, fSpanTraceID, tid[:])
	b = message(b, fSpanSpanID, sid[:])
	if ts := sc.TraceState().String(); ts != "" {
		b = message(b, fSpanTraceState, []byte(ts))
	}
	if p := s.Parent(); p.SpanID().IsValid() {
		pid := p.SpanID()
		b = message(b, fSpanParentID, pid[:])
	}
	b = message(b, fSpanName, []byte(s.Name()))
	// OTLP numbers span kinds as the Go API does (INTERNAL 1 ... CONSUMER 5).
	b = protowire.AppendVarint(protowire.AppendTag(b, fSpanKind, protowire.VarintType), uint64(s.SpanKind()))
	b = protowire.AppendFixed64(protowire.AppendTag(b, fSpanStart, protowire.Fixed64Type), uint64(s.StartTime().UnixNano()))
	b = protowire.AppendFixed64(protowire.AppendTag(b, fSpanEnd, protowire.Fixed64Type), uint64(s.EndTime().UnixNano()))
	b = attributes(b, fSpanAttributes, s.Attributes())
	if n := s.DroppedAttributes(); n > 0 {
		b = protowire.AppendVarint(protowire.AppendTag(b, fSpanDropAttrs, protowire.VarintType), uint64(n))
	}
	for _, ev := range s.Events() {
		e := protowire.AppendFixed64(protowire.AppendTag(nil, fEventTime, protowire.Fixed64Type), uint64(ev.Time.UnixNano()))
		e = message(e, fEventName, []byte(ev.Name))
		b = message(b, fSpanEvents, attributes(e, fEventAttributes, ev.Attributes))
	}
	for _, l := range s.Links() {
		ltid, lsid := l.SpanContext.TraceID(), l.SpanContext.SpanID()
		e := message(nil, fLinkTraceID, ltid[:])
		e = message(e, fLinkSpanID, lsid[:])
		if ts := l.SpanContext.TraceState().String(); ts != "" {
			e = message(e, fLinkTraceState, []byte(ts))
		}
		b = message(b, fSpanLinks, attributes(e, fLinkAttributes, l.Attributes))
	}
	if st := s.Status(); st.Code != codes.Unset {
		e := protowire.AppendVarint(protowire.AppendTag(nil, fStatusCode, protowire.VarintType), statusCodes[st.Code])
		if st.Description != "" {
			e = message(e, fStatusMessage, []byte(st.Description))
		}
		b = message(b, fSpanStatus, e)
	}
	return b
}

// message appends field num holding the bytes v (a string, bytes or an embedded message).
func message(b []byte, num protowire.Number, v []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), v)
}

// attributes appends each attribute as a KeyValue in field num.
func attributes(b []byte, num protowire.Number, attrs []attribute.KeyValue) []byte {
	for _, kv := range attrs {
		e := message(nil, fKeyValueKey, []byte(kv.Key))
		b = message(b, num, message(e, fKeyValueValue, anyValue(kv.Value)))
	}
	return b
}

// anyValue encodes an AnyValue.
func anyValue(v attribute.Value) []byte {
	switch v.Type() {
	case attribute.BOOL:
		x := uint64(0)
		if v.AsBool() {
			x = 1
		}
		return protowire.AppendVarint(protowire.AppendTag(nil, fAnyBool, protowire.VarintType), x)
	case attribute.INT64:
		return protowire.AppendVarint(protowire.AppendTag(nil, fAnyInt, protowire.VarintType), uint64(v.AsInt64()))
	case attribute.FLOAT64:
		return protowire.AppendFixed64(protowire.AppendTag(nil, fAnyDouble, protowire.Fixed64Type), math.Float64bits(v.AsFloat64()))
	case attribute.BOOLSLICE:
		return array(v.AsBoolSlice(), attribute.BoolValue)
	case attribute.INT64SLICE:
		return array(v.AsInt64Slice(), attribute.Int64Value)
	case attribute.FLOAT64SLICE:
		return array(v.AsFloat64Slice(), attribute.Float64Value)
	case attribute.STRINGSLICE:
		return array(v.AsStringSlice(), attribute.StringValue)
	case attribute.SLICE:
		return array(v.AsSlice(), func(x attribute.Value) attribute.Value { return x })
	case attribute.BYTESLICE:
		return message(nil, fAnyBytes, v.AsByteSlice())
	case attribute.MAP:
		return message(nil, fAnyKVList, attributes(nil, fKVListValues, v.AsMap()))
	case attribute.STRING:
		return message(nil, fAnyString, []byte(v.AsString()))
	default: // EMPTY: an AnyValue with no value set
		return nil
	}
}

func array[T any](xs []T, value func(T) attribute.Value) []byte {
	var arr []byte
	for _, x := range xs {
		arr = message(arr, fArrayVals, anyValue(value(x)))
	}
	return message(nil, fAnyArray, arr)
}
