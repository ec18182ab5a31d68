package localstack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Hub stands between MinIO and whoever wants a bucket's notifications. MinIO's webhook targets
// are fixed when it starts, so MinIO posts every event to the hub, and the hub forwards each one
// to the URL subscribed for its bucket: a test's listener, or the local runner of the processor.
// That mirrors AWS, where each bucket's notification configuration names its own destination.
//
//	POST   /minio                 MinIO's webhook (S3 event JSON)
//	PUT    /subscriptions/{bucket} body: the URL to forward that bucket's events to
//	DELETE /subscriptions/{bucket}
//	GET    /healthz
type Hub struct {
	log    *slog.Logger
	client *http.Client

	mu   sync.RWMutex
	subs map[string]string // bucket -> URL
}

// NewHub returns a hub with no subscriptions.
func NewHub(log *slog.Logger) *Hub {
	return &Hub{log: log, client: &http.Client{Timeout: 5 * time.Minute}, subs: map[string]string{}}
}

// ServeHTTP routes the hub's few endpoints.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/healthz":
		w.WriteHeader(http.StatusOK)
	case r.URL.Path == "/minio" && r.Method == http.MethodPost:
		h.forward(w, r)
	case strings.HasPrefix(r.URL.Path, "/subscriptions/"):
		h.subscription(w, r, strings.TrimPrefix(r.URL.Path, "/subscriptions/"))
	default:
		http.NotFound(w, r)
	}
}

func (h *Hub) subscription(w http.ResponseWriter, r *http.Request, bucket string) {
	if bucket == "" || strings.Contains(bucket, "/") {
		http.Error(w, "want /subscriptions/{bucket}", http.StatusBadRequest)
		return
	}
	switch r.Method {
	case http.MethodPut:
		body, err := io.ReadAll(io.LimitReader(r.Body, 4096))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		target := strings.TrimSpace(string(body))
		if u, err := url.Parse(target); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			http.Error(w, fmt.Sprintf("subscription for %q: want an http(s) URL, got %q", bucket, target), http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		h.subs[bucket] = target
		h.mu.Unlock()
		h.log.Info("subscribed", "bucket", bucket, "url", target)
		w.WriteHeader(http.StatusNoContent)
	case http.MethodDelete:
		h.mu.Lock()
		delete(h.subs, bucket)
		h.mu.Unlock()
		h.log.Info("unsubscribed", "bucket", bucket)
		w.WriteHeader(http.StatusNoContent)
	default:
		http.Error(w, "want PUT or DELETE", http.StatusMethodNotAllowed)
	}
}

// forward sends one MinIO notification to its bucket's subscriber and answers MinIO with the
// subscriber's status, so MinIO sees a failed delivery as failed.
func (h *Hub) forward(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var ev struct {
		Records []struct {
			S3 struct {
				Bucket struct {
					Name string `json:"name"`
				} `json:"bucket"`
			} `json:"s3"`
		}
	}
	if err := json.Unmarshal(body, &ev); err != nil || len(ev.Records) == 0 {
		// MinIO sends a test body with no records when a target is checked; accept and drop it.
		w.WriteHeader(http.StatusOK)
		return
	}
	bucket := ev.Records[0].S3.Bucket.Name
	h.mu.RLock()
	target, ok := h.subs[bucket]
	h.mu.RUnlock()
	if !ok {
		h.log.Info("no subscriber; event dropped", "bucket", bucket)
		w.WriteHeader(http.StatusOK)
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.client.Do(req)
	if err != nil {
		h.log.Warn("forward failed", "bucket", bucket, "url", target, "err", err)
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	w.WriteHeader(resp.StatusCode)
}

// ServeHub runs the hub on addr until ctx ends.
func ServeHub(ctx context.Context, addr string, log *slog.Logger) error {
	srv := &http.Server{Addr: addr, Handler: NewHub(log), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(shutdown)
	}
}

// Subscribe asks the hub at hubURL to forward bucket's notifications to target.
func Subscribe(ctx context.Context, hubURL, bucket, target string) error {
	return hubRequest(ctx, http.MethodPut, hubURL, bucket, target)
}

// Unsubscribe stops forwarding bucket's notifications.
func Unsubscribe(ctx context.Context, hubURL, bucket string) error {
	return hubRequest(ctx, http.MethodDelete, hubURL, bucket, "")
}

func hubRequest(ctx context.Context, method, hubURL, bucket, body string) error {
	req, err := http.NewRequestWithContext(ctx, method, hubURL+"/subscriptions/"+url.PathEscape(bucket), strings.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s hub subscription for %s: %w (is the local stack up?)", method, bucket, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("%s hub subscription for %s: status %d: %s", method, bucket, resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	return nil
}
