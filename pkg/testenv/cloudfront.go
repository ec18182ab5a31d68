package testenv

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
)

// CloudFront is an in-memory stand-in for Amazon CloudFront's CreateInvalidation, speaking its
// REST-XML protocol to the real SDK client (CloudFront has no local server on these machines). As
// the service does, a request whose CallerReference was seen with the same paths creates nothing
// and answers the existing invalidation, and one seen with other paths is refused
// (InvalidationBatchAlreadyExists). It can refuse requests as the service does when too many
// invalidations are in progress.
type CloudFront struct {
	srv   *httptest.Server
	mu    sync.Mutex
	made  []Invalidation
	calls int
	busy  int // requests still to refuse
}

// Invalidation is one invalidation the fake created.
type Invalidation struct {
	ID, Distribution, CallerReference string
	Paths                             []string
}

// NewCloudFront starts a fake CloudFront for the test.
func NewCloudFront(t testing.TB) *CloudFront {
	f := &CloudFront{}
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	return f
}

// Client is an SDK client on the fake.
func (f *CloudFront) Client() *cloudfront.Client {
	return cloudfront.New(cloudfront.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(f.srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
}

// Busy makes the fake refuse the next n requests (TooManyInvalidationsInProgress).
func (f *CloudFront) Busy(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.busy = n
}

// Invalidations returns the invalidations created so far, in order.
func (f *CloudFront) Invalidations() []Invalidation {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.made)
}

// Calls is how many CreateInvalidation requests the fake answered (refused ones included).
func (f *CloudFront) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

type invalidationBatch struct {
	CallerReference string
	Paths           struct {
		Quantity int
		Items    []string `xml:"Items>Path"`
	}
}

// ServeHTTP answers one CreateInvalidation request.
func (f *CloudFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	dist, ok := strings.CutPrefix(r.URL.Path, "/2020-05-31/distribution/")
	dist, ok2 := strings.CutSuffix(dist, "/invalidation")
	if !ok || !ok2 || r.Method != http.MethodPost {
		http.Error(w, "the fake implements CreateInvalidation only", http.StatusNotImplemented)
		return
	}
	var in invalidationBatch
	if err := xml.NewDecoder(r.Body).Decode(&in); err != nil || in.Paths.Quantity != len(in.Paths.Items) || in.CallerReference == "" {
		cloudFrontError(w, http.StatusBadRequest, "InvalidArgument", fmt.Sprintf("bad batch %+v: %v", in, err))
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.busy > 0 {
		f.busy--
		cloudFrontError(w, http.StatusBadRequest, "TooManyInvalidationsInProgress", "too many invalidations in progress")
		return
	}
	i := slices.IndexFunc(f.made, func(v Invalidation) bool { return v.Distribution == dist && v.CallerReference == in.CallerReference })
	switch {
	case i >= 0 && !slices.Equal(f.made[i].Paths, in.Paths.Items):
		cloudFrontError(w, http.StatusConflict, "InvalidationBatchAlreadyExists", "caller reference "+in.CallerReference+" was used with other paths")
		return
	case i < 0:
		f.made = append(f.made, Invalidation{ID: fmt.Sprintf("I%04d", len(f.made)+1), Distribution: dist, CallerReference: in.CallerReference, Paths: in.Paths.Items})
		i = len(f.made) - 1
	}
	v := f.made[i]
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("Location", f.srv.URL+r.URL.Path+"/"+v.ID)
	w.WriteHeader(http.StatusCreated)
	var paths strings.Builder
	for _, p := range v.Paths {
		paths.WriteString("<Path>" + xmlText(p) + "</Path>")
	}
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<Invalidation xmlns="http://cloudfront.amazonaws.com/doc/2020-05-31/"><Id>%s</Id><Status>InProgress</Status><CreateTime>%s</CreateTime><InvalidationBatch><Paths><Quantity>%d</Quantity><Items>%s</Items></Paths><CallerReference>%s</CallerReference></InvalidationBatch></Invalidation>`,
		v.ID, time.Now().UTC().Format(time.RFC3339), len(v.Paths), paths.String(), xmlText(v.CallerReference))
}

func cloudFrontError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0"?><ErrorResponse xmlns="http://cloudfront.amazonaws.com/doc/2020-05-31/"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>fake</RequestId></ErrorResponse>`, code, xmlText(msg))
}
