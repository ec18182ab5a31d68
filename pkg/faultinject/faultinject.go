// Package faultinject makes chosen AWS SDK calls fail the way S3 and DynamoDB fail in
// production: 500 and 503 responses, S3 SlowDown, DynamoDB throttling, connection resets and
// timeouts. It is an http.RoundTripper placed under the SDK clients (aws.Config.HTTPClient), so
// the SDK's own retryer and error handling see exactly what they would see from AWS; it also
// counts every request by operation, retries included.
package faultinject

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"sync"
	"syscall"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
)

// Fault is what a matching request gets instead of (or before) a real answer.
type Fault int

// The faults. Each is what the named service returns or what the network does.
const (
	// None lets the request through; with Rule.Before it is a hook at that call.
	None Fault = iota
	InternalError
	ServiceUnavailable
	SlowDown                      // S3's 503 throttle
	Throttling                    // DynamoDB ThrottlingException (400)
	ProvisionedThroughputExceeded // DynamoDB (400)
	ConnectionReset               // the connection drops before an answer
	Timeout                       // the request times out
	// CopyRefused is S3's 400 InvalidRequest for a CopyObject it will not do (a source over
	// 5 GiB).
	CopyRefused
	// LostAnswer lets the request reach the server, which acts on it, then drops the connection
	// before the client reads the answer: the SDK retries a write that already happened.
	LostAnswer
)

func (f Fault) String() string {
	return [...]string{"none", "InternalError", "ServiceUnavailable", "SlowDown", "ThrottlingException",
		"ProvisionedThroughputExceededException", "connection reset", "timeout", "InvalidRequest", "lost answer"}[f]
}

// Rule picks requests by SDK service id ("S3", "DynamoDB") and operation ("PutObject",
// "PutItem"), and the 1-based numbers of the matching calls to act on (none: every call).
type Rule struct {
	Service, Operation string
	Calls              []int
	Fault              Fault
	// Before, if set, runs before the request is answered (or failed), with the call number.
	Before func(call int)
	// After, if set, runs once the server has answered a request let through (Fault None),
	// before the client sees the answer: a crash here is a crash right after the step.
	After func(call int)
}

// Transport wraps Base. Its zero value is not usable; use New.
type Transport struct {
	base  http.RoundTripper
	mu    sync.Mutex
	rules []Rule
	calls map[string]int // "S3.PutObject" → requests seen
}

// New wraps base (http.DefaultTransport when nil).
func New(base http.RoundTripper) *Transport {
	if base == nil {
		base = http.DefaultTransport
	}
	return &Transport{base: base, calls: map[string]int{}}
}

// Client is an *http.Client over the transport, for aws.Config.HTTPClient.
func (t *Transport) Client() *http.Client { return &http.Client{Transport: t} }

// Add installs a rule.
func (t *Transport) Add(r Rule) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rules = append(t.rules, r)
}

// Calls is how many requests were made for service.operation, retries included.
func (t *Transport) Calls(service, operation string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.calls[service+"."+operation]
}

// AllCalls is how many requests were made, by "service.operation", retries included.
func (t *Transport) AllCalls() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.calls)
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	service := awsmiddleware.GetServiceID(req.Context())
	op := awsmiddleware.GetOperationName(req.Context())
	t.mu.Lock()
	t.calls[service+"."+op]++
	n := t.calls[service+"."+op]
	var hit *Rule
	for i := range t.rules {
		if r := &t.rules[i]; r.Service == service && r.Operation == op && matches(r.Calls, n) {
			hit = r
			break
		}
	}
	t.mu.Unlock()
	if hit == nil {
		return t.base.RoundTrip(req)
	}
	if hit.Before != nil {
		hit.Before(n)
	}
	if hit.Fault == None {
		resp, err := t.base.RoundTrip(req)
		if hit.After != nil {
			hit.After(n)
		}
		return resp, err
	}
	if hit.Fault == LostAnswer {
		resp, err := t.base.RoundTrip(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
		return nil, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	}
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		_ = req.Body.Close()
	}
	return fail(req, hit.Fault)
}

func matches(calls []int, n int) bool {
	if len(calls) == 0 {
		return true
	}
	for _, c := range calls {
		if c == n {
			return true
		}
	}
	return false
}

// timeoutError is a network timeout, as net/http reports one.
type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout (injected)" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

func fail(req *http.Request, f Fault) (*http.Response, error) {
	switch f {
	case ConnectionReset:
		return nil, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	case Timeout:
		return nil, &net.OpError{Op: "read", Net: "tcp", Err: timeoutError{}}
	case Throttling, ProvisionedThroughputExceeded:
		body := fmt.Sprintf(`{"__type":"com.amazonaws.dynamodb.v20120810#%s","message":"injected"}`, f)
		return respond(req, http.StatusBadRequest, "application/x-amz-json-1.0", body), nil
	}
	status, code := http.StatusInternalServerError, "InternalError"
	switch f {
	case CopyRefused:
		status, code = http.StatusBadRequest, "InvalidRequest"
	case ServiceUnavailable:
		status, code = http.StatusServiceUnavailable, "ServiceUnavailable"
	case SlowDown:
		status, code = http.StatusServiceUnavailable, "SlowDown"
	}
	if awsmiddleware.GetServiceID(req.Context()) == "DynamoDB" {
		body := fmt.Sprintf(`{"__type":"com.amazonaws.dynamodb.v20120810#%s","message":"injected"}`, code)
		return respond(req, status, "application/x-amz-json-1.0", body), nil
	}
	body := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>injected</Message></Error>`, code)
	return respond(req, status, "application/xml", body), nil
}

func respond(req *http.Request, status int, contentType, body string) *http.Response {
	return &http.Response{
		StatusCode:    status,
		Status:        fmt.Sprintf("%d %s", status, http.StatusText(status)),
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {contentType}, "X-Amz-Request-Id": {"injected"}},
		Body:          io.NopCloser(bytes.NewReader([]byte(body))),
		ContentLength: int64(len(body)),
		Request:       req,
	}
}
