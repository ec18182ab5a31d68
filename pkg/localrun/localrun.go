// Package localrun runs the processor's Lambda handler without Lambda: one invocation on an
// event file (the Docker-free `sam local invoke`), or a webhook that receives MinIO's bucket
// notifications and invokes the handler asynchronously with retries, as S3 invokes a Lambda.
package localrun

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

// Handler is a Lambda handler on raw JSON, like processor.Processor.Handle.
type Handler func(ctx context.Context, raw json.RawMessage) (any, error)

// Timeout is the simulated Lambda timeout, as in template.yaml.
const Timeout = 5 * time.Minute

// Invoke runs h once on payload with a Lambda context: a fresh request id and a deadline.
func Invoke(ctx context.Context, h Handler, payload []byte) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	ctx = lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{AwsRequestID: requestID()})
	return h(ctx, payload)
}

func requestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	s := hex.EncodeToString(b[:])
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:]
}

// Runner accepts notifications over HTTP and invokes the handler on each in the background,
// with up to Retries retries on error, like Lambda's asynchronous invocation.
type Runner struct {
	h       Handler
	log     *slog.Logger
	Retries int
	Backoff time.Duration

	wg    sync.WaitGroup
	slots chan struct{}
}

// NewRunner invokes h with at most concurrency invocations at once.
func NewRunner(h Handler, log *slog.Logger, concurrency int) *Runner {
	return &Runner{h: h, log: log, Retries: 2, Backoff: time.Second, slots: make(chan struct{}, concurrency)}
}

// ServeHTTP accepts one notification and answers at once.
func (r *Runner) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 16<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.slots <- struct{}{}
		defer func() { <-r.slots }()
		for attempt := 0; ; attempt++ {
			_, err := Invoke(context.Background(), r.h, body)
			if err == nil {
				return
			}
			if attempt >= r.Retries {
				r.log.Error("invocation failed; retries exhausted", "attempts", attempt+1, "err", err)
				return
			}
			r.log.Warn("invocation failed; retrying", "attempt", attempt+1, "err", err)
			time.Sleep(r.Backoff << attempt)
		}
	}()
	w.WriteHeader(http.StatusAccepted)
}

// Wait blocks until every accepted notification has been handled.
func (r *Runner) Wait() { r.wg.Wait() }

// PrintJSON writes v indented, for command output.
func PrintJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
