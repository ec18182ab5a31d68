package testenv

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
)

// EventBridge is an in-memory stand-in for Amazon EventBridge's PutEvents, speaking its JSON 1.1
// protocol to the real SDK client (EventBridge has no local server on these machines). It keeps
// the events it accepted, in order, and can reject entries as the service does under load: the
// call succeeds, the entry's result carries an error code and FailedEntryCount counts it.
type EventBridge struct {
	srv    *httptest.Server
	mu     sync.Mutex
	events []BusEvent
	reject int // entries still to reject
	seq    int
}

// BusEvent is one event EventBridge accepted.
type BusEvent struct {
	ID         string // EventBridge's own id: new on every put
	Bus        string
	Source     string
	DetailType string
	Detail     string
	Resources  []string
}

// NewEventBridge starts a fake EventBridge for the test.
func NewEventBridge(t testing.TB) *EventBridge {
	f := &EventBridge{}
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	return f
}

// URL is the fake's endpoint (for AWS_ENDPOINT_URL_EVENTBRIDGE).
func (f *EventBridge) URL() string { return f.srv.URL }

// Client is an SDK client on the fake.
func (f *EventBridge) Client() *eventbridge.Client {
	return eventbridge.New(eventbridge.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(f.srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
}

// Reject makes the fake reject the next n entries it is sent (ThrottlingException).
func (f *EventBridge) Reject(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reject = n
}

// Events returns the events accepted so far, in order.
func (f *EventBridge) Events() []BusEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]BusEvent(nil), f.events...)
}

type putEntry struct {
	EventBusName, Source, DetailType, Detail string
	Resources                                []string
}

type putResult struct {
	EventID      string `json:"EventId,omitempty"`
	ErrorCode    string `json:",omitempty"`
	ErrorMessage string `json:",omitempty"`
}

// ServeHTTP answers one PutEvents request.
func (f *EventBridge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if op := r.Header.Get("X-Amz-Target"); op != "AWSEvents.PutEvents" {
		http.Error(w, "the fake does not implement "+op, http.StatusNotImplemented)
		return
	}
	var in struct{ Entries []putEntry }
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	if len(in.Entries) == 0 || len(in.Entries) > 10 {
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"__type": "ValidationException", "message": fmt.Sprintf("%d entries: want 1 to 10", len(in.Entries))})
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := struct {
		FailedEntryCount int
		Entries          []putResult
	}{}
	for _, e := range in.Entries {
		if f.reject > 0 {
			f.reject--
			out.FailedEntryCount++
			out.Entries = append(out.Entries, putResult{ErrorCode: "ThrottlingException", ErrorMessage: "Rate exceeded"})
			continue
		}
		f.seq++
		id := fmt.Sprintf("eb-%08d", f.seq)
		f.events = append(f.events, BusEvent{ID: id, Bus: e.EventBusName, Source: e.Source, DetailType: e.DetailType, Detail: e.Detail, Resources: e.Resources})
		out.Entries = append(out.Entries, putResult{EventID: id})
	}
	_ = json.NewEncoder(w).Encode(out)
}
