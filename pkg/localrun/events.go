package localrun

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"

	"github.com/sluice-dev/sluice/pkg/announce"
)

// LocalEventBus is the bus name a local serve announces on.
const LocalEventBus = "sluice-local"

// eventPrinter stands in for EventBridge in `sluice local serve`: it accepts PutEvents (its JSON
// 1.1 protocol, from the real SDK, in the bootstrap under the emulator or in this process) and
// prints each event as one JSON line, as a rule's target would receive it. EventBridge has no
// local server on these machines.
type eventPrinter struct {
	mu  sync.Mutex
	out io.Writer
	seq int
}

// ServeHTTP answers one PutEvents request, accepting every entry.
func (p *eventPrinter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Entries []struct{ Source, DetailType, Detail string }
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || r.Header.Get("X-Amz-Target") != "AWSEvents.PutEvents" {
		http.Error(w, "want PutEvents", http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	results := make([]map[string]string, len(in.Entries))
	failed := 0
	for i, e := range in.Entries {
		p.seq++
		results[i] = map[string]string{"EventId": fmt.Sprint("local-", p.seq)}
		if err := announce.WriteLine(p.out, e.Source, e.DetailType, json.RawMessage(e.Detail)); err != nil {
			results[i] = map[string]string{"ErrorCode": "MalformedDetail", "ErrorMessage": err.Error()}
			failed++
		}
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(map[string]any{"FailedEntryCount": failed, "Entries": results})
}

// startEventPrinter serves an eventPrinter on a local port; it returns its URL (for
// AWS_ENDPOINT_URL_EVENTBRIDGE) and how to stop it.
func startEventPrinter(out io.Writer) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: &eventPrinter{out: out}, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}

// localBus is an announcer on the event printer at url, for the processor in this process.
func localBus(url string) *announce.Bus {
	return announce.NewBus(eventbridge.New(eventbridge.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(url),
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
	}), LocalEventBus)
}
