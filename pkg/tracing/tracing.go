// Package tracing sets up the processor's traces with OpenTelemetry: trace ids in X-Ray's
// format (so they line up with the trace Lambda records for each invocation under active
// tracing), the invocation's X-Ray trace header read as a link, and spans exported over
// OTLP/HTTP, either to X-Ray's OTLP endpoint (signed with SigV4, no collector layer) or to any
// OTLP receiver. Tracing is off unless SLUICE_TRACING says otherwise.
//
// Lambda freezes the process between invocations, so spans are flushed at the end of each one
// (Flushing); a batching exporter alone would hold them until a later invocation or never.
package tracing

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"go.opentelemetry.io/contrib/propagators/aws/xray"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Mode says where spans go.
type Mode string

// Modes.
const (
	Off  Mode = "off"  // no spans (the default): a no-op tracer, nothing allocated per span
	XRay Mode = "xray" // X-Ray's OTLP endpoint for the region, SigV4-signed (needs CloudWatch Transaction Search)
	OTLP Mode = "otlp" // an OTLP/HTTP receiver named by the standard OTEL_EXPORTER_OTLP_* variables
)

// Config is the tracing configuration, read from the environment.
type Config struct {
	Mode     Mode
	Endpoint string // where spans are posted (OTLP/HTTP, binary protobuf)
	Region   string // XRay: the endpoint's region and the signature's
	Service  string // the resource's service.name
}

// DefaultOTLPEndpoint is OpenTelemetry's default for OTLP/HTTP traces (a collector on this host,
// such as the ADOT Lambda layer's).
const DefaultOTLPEndpoint = "http://localhost:4318/v1/traces"

// LoadConfig reads SLUICE_TRACING (off, xray or otlp). xray posts to X-Ray's OTLP endpoint in
// AWS_REGION; otlp posts to OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (a full URL), or
// OTEL_EXPORTER_OTLP_ENDPOINT plus /v1/traces, or DefaultOTLPEndpoint, as OpenTelemetry's
// exporters do. The service name is the function's when Lambda gives one.
func LoadConfig(getenv func(string) string) (Config, error) {
	cfg := Config{
		Mode:    Mode(strings.ToLower(strings.TrimSpace(getenv("SLUICE_TRACING")))),
		Region:  strings.TrimSpace(getenv("AWS_REGION")),
		Service: cmp.Or(getenv("AWS_LAMBDA_FUNCTION_NAME"), "sluice-processor"),
	}
	switch cfg.Mode {
	case "", Off:
		cfg.Mode = Off
		return cfg, nil
	case XRay:
		if cfg.Region == "" {
			return Config{}, errors.New("SLUICE_TRACING=xray needs AWS_REGION for X-Ray's OTLP endpoint")
		}
		cfg.Endpoint = XRayEndpoint(cfg.Region)
	case OTLP:
		cfg.Endpoint = strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
		if base := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_ENDPOINT")); cfg.Endpoint == "" && base != "" {
			cfg.Endpoint = strings.TrimSuffix(base, "/") + "/v1/traces"
		}
		cfg.Endpoint = cmp.Or(cfg.Endpoint, DefaultOTLPEndpoint)
		if u, err := url.Parse(cfg.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return Config{}, fmt.Errorf("the OTLP traces endpoint %q is not an http(s) URL", cfg.Endpoint)
		}
	default:
		return Config{}, fmt.Errorf("SLUICE_TRACING is %q: want off, xray or otlp", cfg.Mode)
	}
	return cfg, nil
}

// Provider owns the tracer provider of one process.
type Provider struct {
	tp     *sdktrace.TracerProvider // nil when off
	tracer trace.Tracer
}

// exportTimeout bounds one export request.
const exportTimeout = 5 * time.Second

// Start builds the provider cfg asks for; creds sign the requests to X-Ray.
func Start(cfg Config, creds aws.CredentialsProvider) *Provider {
	if cfg.Mode == Off {
		return &Provider{tracer: noop.NewTracerProvider().Tracer(tracerName)}
	}
	client := &http.Client{Timeout: exportTimeout}
	if cfg.Mode == XRay {
		client.Transport = &signing{base: http.DefaultTransport, creds: creds, region: cfg.Region}
	}
	return New(cfg.Service, sdktrace.WithBatcher(&exporter{url: cfg.Endpoint, client: client}))
}

// New builds a provider that hands its spans to the given processors (tests pass an in-memory
// exporter through sdktrace.WithSyncer).
func New(service string, processors ...sdktrace.TracerProviderOption) *Provider {
	res := resource.NewSchemaless(attribute.String("service.name", service), attribute.String("cloud.provider", "aws"))
	opts := append([]sdktrace.TracerProviderOption{
		sdktrace.WithIDGenerator(xray.NewIDGenerator()),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(linkedSampler{fallback: sdktrace.ParentBased(sdktrace.AlwaysSample())}),
	}, processors...)
	tp := sdktrace.NewTracerProvider(opts...)
	return &Provider{tp: tp, tracer: tp.Tracer(tracerName)}
}

const tracerName = "github.com/sluice-dev/sluice"

// XRayEndpoint is X-Ray's OTLP traces endpoint in region.
func XRayEndpoint(region string) string {
	return "https://xray." + region + ".amazonaws.com/v1/traces"
}

// Tracer is the provider's tracer (a no-op one when tracing is off).
func (p *Provider) Tracer() trace.Tracer { return p.tracer }

// Flush exports the spans ended so far.
func (p *Provider) Flush(ctx context.Context) error {
	if p.tp == nil {
		return nil
	}
	return p.tp.ForceFlush(ctx)
}

// flushTimeout bounds the export at the end of an invocation: it runs inside the invocation's
// billed time, and a slow trace backend must not hold the function.
const flushTimeout = 2 * time.Second

// Flushing wraps h so that the spans of each invocation are exported before it returns (Lambda
// may freeze the process right after); a failed export is reported to onErr and does not fail
// the invocation.
func (p *Provider) Flushing(h func(context.Context, json.RawMessage) (any, error), onErr func(error)) func(context.Context, json.RawMessage) (any, error) {
	return func(ctx context.Context, raw json.RawMessage) (any, error) {
		out, err := h(ctx, raw)
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
		defer cancel()
		if ferr := p.Flush(fctx); ferr != nil {
			onErr(ferr)
		}
		return out, err
	}
}

// Invocation returns ctx with the invocation's X-Ray trace (Lambda's, from the trace header
// the runtime passes) as a remote span context, when there is one.
func Invocation(ctx context.Context, header string) context.Context {
	if header == "" {
		return ctx
	}
	return xray.Propagator{}.Extract(ctx, propagation.MapCarrier{"X-Amzn-Trace-Id": header})
}

// LambdaHeader is the X-Ray trace header of the invocation ctx belongs to: the Lambda runtime
// client puts it in the context (aws-lambda-go's key), with the sampling decision X-Ray made.
func LambdaHeader(ctx context.Context) string {
	h, _ := ctx.Value("x-amzn-trace-id").(string)
	return h
}

// XRayTraceID writes id the way X-Ray shows and searches it: 1-<8 hex digits of epoch
// seconds>-<24 hex digits>. The X-Ray ID generator puts the epoch in the first 4 bytes.
func XRayTraceID(id trace.TraceID) string {
	h := id.String()
	return "1-" + h[:8] + "-" + h[8:]
}

// linkedSampler samples a new root span the way the span it links to was sampled: an object's
// trace follows the decision X-Ray's sampling rules made for the invocation that carries it.
// With no link (an operator's run, a local invoke), fallback decides.
type linkedSampler struct{ fallback sdktrace.Sampler }

func (s linkedSampler) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	if trace.SpanContextFromContext(p.ParentContext).IsValid() || len(p.Links) == 0 || !p.Links[0].SpanContext.IsValid() {
		return s.fallback.ShouldSample(p)
	}
	decision := sdktrace.Drop
	if p.Links[0].SpanContext.IsSampled() {
		decision = sdktrace.RecordAndSample
	}
	return sdktrace.SamplingResult{Decision: decision, Tracestate: trace.SpanContextFromContext(p.ParentContext).TraceState()}
}

func (s linkedSampler) Description() string {
	return "LinkedSampler{" + s.fallback.Description() + "}"
}
