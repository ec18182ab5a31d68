package testenv

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// SQS is an in-memory stand-in for Amazon SQS, speaking its JSON protocol to the real SDK client
// (SQS has no local server on these machines, unlike S3 and DynamoDB). It implements what sluice
// uses: SendMessageBatch, ReceiveMessage (with visibility timeouts), ChangeMessageVisibility,
// DeleteMessageBatch and GetQueueAttributes(ApproximateNumberOfMessages).
type SQS struct {
	srv    *httptest.Server
	mu     sync.Mutex
	queues map[string][]*sqsMessage // by queue URL
	seq    int
}

type sqsMessage struct {
	id, body, receipt string
	hiddenUntil       time.Time
}

// NewSQS starts a fake SQS for the test.
func NewSQS(t testing.TB) *SQS {
	f := &SQS{queues: map[string][]*sqsMessage{}}
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	return f
}

// Queue creates a queue and returns its URL.
func (f *SQS) Queue(name string) string {
	u := f.srv.URL + "/123456789012/" + name
	f.mu.Lock()
	f.queues[u] = nil
	f.mu.Unlock()
	return u
}

// Bodies returns the bodies of every message in the queue, hidden ones included.
func (f *SQS) Bodies(queueURL string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, m := range f.queues[queueURL] {
		out = append(out, m.body)
	}
	return out
}

// HiddenFor is how long each message of the queue stays invisible from now (0 when visible).
func (f *SQS) HiddenFor(queueURL string) []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []time.Duration
	for _, m := range f.queues[queueURL] {
		out = append(out, max(time.Until(m.hiddenUntil), 0))
	}
	return out
}

// Put adds messages to a queue directly.
func (f *SQS) Put(queueURL string, bodies ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range bodies {
		f.seq++
		f.queues[queueURL] = append(f.queues[queueURL], &sqsMessage{id: fmt.Sprint("m-", f.seq), body: b})
	}
}

// Client is an SDK client on the fake.
func (f *SQS) Client() *sqs.Client {
	return sqs.New(sqs.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(f.srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
}

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// ServeHTTP answers one SQS JSON-protocol request.
func (f *SQS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var in struct {
		QueueURL            string `json:"QueueUrl"`
		MaxNumberOfMessages int
		VisibilityTimeout   *int
		ReceiptHandle       string
		Entries             []struct {
			ID            string `json:"Id"`
			MessageBody   string
			ReceiptHandle string
		}
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	q, ok := f.queues[in.QueueURL]
	if !ok {
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"__type": "com.amazonaws.sqs#QueueDoesNotExist", "message": "no queue " + in.QueueURL})
		return
	}
	var out any
	switch op := r.Header.Get("X-Amz-Target"); op {
	case "AmazonSQS.SendMessageBatch":
		var ok []map[string]string
		for _, e := range in.Entries {
			f.seq++
			m := &sqsMessage{id: fmt.Sprint("m-", f.seq), body: e.MessageBody}
			q = append(q, m)
			ok = append(ok, map[string]string{"Id": e.ID, "MessageId": m.id, "MD5OfMessageBody": md5hex(e.MessageBody)})
		}
		f.queues[in.QueueURL] = q
		out = map[string]any{"Successful": ok, "Failed": []any{}}
	case "AmazonSQS.ReceiveMessage":
		now := time.Now()
		var msgs []map[string]string
		for _, m := range q {
			if len(msgs) == max(in.MaxNumberOfMessages, 1) {
				break
			}
			if m.hiddenUntil.After(now) {
				continue
			}
			f.seq++
			m.receipt = "r-" + strconv.Itoa(f.seq)
			m.hiddenUntil = now.Add(time.Duration(max(aws.ToInt(in.VisibilityTimeout), 30)) * time.Second)
			msgs = append(msgs, map[string]string{"MessageId": m.id, "ReceiptHandle": m.receipt, "Body": m.body, "MD5OfBody": md5hex(m.body)})
		}
		out = map[string]any{"Messages": msgs}
	case "AmazonSQS.ChangeMessageVisibility":
		for _, m := range q {
			if m.receipt == in.ReceiptHandle {
				m.hiddenUntil = time.Now().Add(time.Duration(aws.ToInt(in.VisibilityTimeout)) * time.Second)
			}
		}
		out = map[string]any{}
	case "AmazonSQS.DeleteMessageBatch":
		var ok []map[string]string
		for _, e := range in.Entries {
			for i, m := range q {
				if m.receipt == e.ReceiptHandle {
					q = append(q[:i], q[i+1:]...)
					break
				}
			}
			ok = append(ok, map[string]string{"Id": e.ID})
		}
		f.queues[in.QueueURL] = q
		out = map[string]any{"Successful": ok, "Failed": []any{}}
	case "AmazonSQS.GetQueueAttributes":
		visible := 0
		for _, m := range q {
			if !m.hiddenUntil.After(time.Now()) {
				visible++
			}
		}
		out = map[string]any{"Attributes": map[string]string{"ApproximateNumberOfMessages": strconv.Itoa(visible)}}
	default:
		http.Error(w, "the fake does not implement "+op, http.StatusNotImplemented)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	_ = json.NewEncoder(w).Encode(out)
}
