// Package testenv connects integration tests to the local stack (sluice local) and gives each test
// its own bucket and table, removed when the test ends.
//
// When SLUICE_REQUIRE_STACK=1 (set by `make test`), a missing or dead stack fails the test with a
// message that names the server; otherwise integration tests skip and say why.
package testenv

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/sluice-dev/sluice/pkg/awsclient"
	"github.com/sluice-dev/sluice/pkg/faultinject"
	"github.com/sluice-dev/sluice/pkg/localstack"
	"github.com/sluice-dev/sluice/pkg/storage"
)

// RequireEnv is the variable that turns a missing stack from a skip into a failure.
const RequireEnv = "SLUICE_REQUIRE_STACK"

// Env is a live local stack.
type Env struct {
	Cfg       aws.Config
	S3        *s3.Client
	DDB       *dynamodb.Client
	HubURL    string // the notification hub
	NotifyARN string // MinIO's webhook target that points at the hub
}

var (
	loadOnce sync.Once
	loadErr  error
)

// loadEnvFile exports the env file's variables into this test process, once, unless the
// environment already names an S3 endpoint (as under `make test`).
func loadEnvFile() error {
	if os.Getenv("AWS_ENDPOINT_URL_S3") != "" {
		return nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	root, err := localstack.FindRoot(wd)
	if err != nil {
		return err
	}
	cfg, err := localstack.LoadConfig(root)
	if err != nil {
		return err
	}
	f, err := os.Open(cfg.EnvFile())
	if err != nil {
		return fmt.Errorf("no local stack env file (%w): run `make test`, or `make local-up` before `go test`", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return fmt.Errorf("%s: bad line %q", cfg.EnvFile(), line)
		}
		if err := os.Setenv(k, v); err != nil {
			return err
		}
	}
	return sc.Err()
}

// Open returns the local stack, or skips or fails the test when it is missing or dead.
func Open(t testing.TB) *Env {
	t.Helper()
	loadOnce.Do(func() { loadErr = loadEnvFile() })
	if loadErr != nil {
		unavailable(t, loadErr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg, err := awsclient.Load(ctx)
	if err != nil {
		unavailable(t, err)
	}
	e := &Env{
		Cfg:       cfg,
		S3:        awsclient.S3(cfg),
		DDB:       awsclient.DynamoDB(cfg),
		HubURL:    os.Getenv("SLUICE_LOCAL_HUB"),
		NotifyARN: os.Getenv("SLUICE_LOCAL_NOTIFY_ARN"),
	}
	if err := e.Check(ctx); err != nil {
		unavailable(t, err)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.Check(ctx); err != nil {
			t.Errorf("the local stack stopped answering during this test: %v", err)
		}
	})
	return e
}

func unavailable(t testing.TB, err error) {
	t.Helper()
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("integration test needs the local stack, and it is not usable: %v", err)
	}
	t.Skipf("integration test skipped (no usable local stack; `make test` runs it): %v", err)
}

// Check asks each server a real question and names the one that does not answer, with its log.
func (e *Env) Check(ctx context.Context) error {
	var errs []error
	if _, err := e.S3.ListBuckets(ctx, &s3.ListBucketsInput{}); err != nil {
		errs = append(errs, fmt.Errorf("MinIO (S3) at %s does not answer: %v; its log: %s",
			os.Getenv("AWS_ENDPOINT_URL_S3"), err, os.Getenv("SLUICE_LOCAL_MINIO_LOG")))
	}
	if _, err := e.DDB.ListTables(ctx, &dynamodb.ListTablesInput{Limit: aws.Int32(1)}); err != nil {
		errs = append(errs, fmt.Errorf("DynamoDB Local at %s does not answer: %v; its log: %s",
			os.Getenv("AWS_ENDPOINT_URL_DYNAMODB"), err, os.Getenv("SLUICE_LOCAL_DYNAMODB_LOG")))
	}
	return errors.Join(errs...)
}

var unsafeName = regexp.MustCompile(`[^a-z0-9-]+`)

// UniqueName makes a name valid for both a bucket and a table: the test's name, lowercased and
// cut, plus random hex.
func UniqueName(t testing.TB) string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	base := strings.Trim(unsafeName.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(base) > 40 {
		base = base[:40]
	}
	return strings.Trim("t-"+base, "-") + "-" + hex.EncodeToString(b[:])
}

// Bucket creates a bucket for this test and removes it, with everything in it, afterwards.
func (e *Env) Bucket(t testing.TB) string {
	t.Helper()
	name := UniqueName(t)
	ctx := context.Background()
	if _, err := e.S3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := e.emptyBucket(ctx, name); err != nil {
			t.Errorf("empty bucket %s: %v", name, err)
			return
		}
		if _, err := e.S3.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(name)}); err != nil {
			t.Errorf("delete bucket %s: %v", name, err)
		}
	})
	return name
}

// List returns every object of bucket: key → ETag (keys with control characters list too).
func (e *Env) List(ctx context.Context, bucket string) (map[string]string, error) {
	out := map[string]string{}
	err := storage.New(e.S3).List(ctx, bucket, "", func(o storage.Object) error {
		out[o.Key] = o.ETag
		return nil
	})
	return out, err
}

func (e *Env) emptyBucket(ctx context.Context, bucket string) error {
	objects, err := e.List(ctx, bucket)
	if err != nil {
		return err
	}
	var batch []s3types.ObjectIdentifier
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		out, err := e.S3.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(bucket), Delete: &s3types.Delete{Objects: batch, Quiet: aws.Bool(true)}})
		batch = batch[:0]
		if err != nil {
			return err
		}
		if len(out.Errors) > 0 {
			return fmt.Errorf("delete %s: %s", aws.ToString(out.Errors[0].Key), aws.ToString(out.Errors[0].Message))
		}
		return nil
	}
	for key := range objects {
		if strings.IndexFunc(key, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
			// An XML request body cannot carry this key: delete it on its own.
			if _, err := e.S3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
				return err
			}
			continue
		}
		if batch = append(batch, s3types.ObjectIdentifier{Key: aws.String(key)}); len(batch) == 1000 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	return e.deleteVersions(ctx, bucket)
}

// deleteVersions removes every object version and delete marker of a versioned bucket (a test
// that enables versioning leaves them); an unversioned bucket has none.
func (e *Env) deleteVersions(ctx context.Context, bucket string) error {
	p := s3.NewListObjectVersionsPaginator(e.S3, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		ids := make([]s3types.ObjectIdentifier, 0, len(page.Versions)+len(page.DeleteMarkers))
		for _, v := range page.Versions {
			ids = append(ids, s3types.ObjectIdentifier{Key: v.Key, VersionId: v.VersionId})
		}
		for _, m := range page.DeleteMarkers {
			ids = append(ids, s3types.ObjectIdentifier{Key: m.Key, VersionId: m.VersionId})
		}
		for _, id := range ids {
			if _, err := e.S3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: id.Key, VersionId: id.VersionId}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Table creates a table from def under a unique name for this test, and deletes it afterwards.
func (e *Env) Table(t testing.TB, def func(name string) *dynamodb.CreateTableInput) string {
	t.Helper()
	name := UniqueName(t)
	ctx := context.Background()
	if _, err := e.DDB.CreateTable(ctx, def(name)); err != nil {
		t.Fatalf("create table %s: %v", name, err)
	}
	w := dynamodb.NewTableExistsWaiter(e.DDB)
	if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, 30*time.Second); err != nil {
		t.Fatalf("table %s never became active: %v", name, err)
	}
	t.Cleanup(func() {
		if _, err := e.DDB.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)}); err != nil {
			t.Errorf("delete table %s: %v", name, err)
		}
	})
	return name
}

// Notify sends bucket's notifications for events (and an optional key prefix) through MinIO's
// webhook and the hub to h, until the test ends.
func (e *Env) Notify(t testing.TB, bucket string, events []string, prefix string, h http.Handler) {
	t.Helper()
	ctx := context.Background()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	if err := localstack.Subscribe(ctx, e.HubURL, bucket, srv.URL); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := localstack.Unsubscribe(ctx, e.HubURL, bucket); err != nil {
			t.Errorf("unsubscribe %s: %v", bucket, err)
		}
	})
	if err := localstack.ConfigureNotifications(ctx, e.S3, bucket, e.NotifyARN, events, prefix); err != nil {
		t.Fatal(err)
	}
}

// WithFaults is the stack's SDK configuration with every request passing through a fault
// injector holding rules (the same retryer and settings as in Lambda), and the injector, which
// counts requests.
func (e *Env) WithFaults(rules ...faultinject.Rule) (aws.Config, *faultinject.Transport) {
	inj := faultinject.New(nil)
	for _, rule := range rules {
		inj.Add(rule)
	}
	cfg := e.Cfg.Copy()
	cfg.HTTPClient = inj.Client()
	return cfg, inj
}
