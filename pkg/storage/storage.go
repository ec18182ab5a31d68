// Package storage is sluice's S3 adapter: reads bounded by size, writes that carry a SHA-256 the
// server checks, copies conditional on the source's ETag, and S3 errors translated into the
// package's sentinels so callers never look at SDK types.
package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Sentinels callers can test with errors.Is.
var (
	ErrNotFound           = errors.New("object not found")
	ErrPreconditionFailed = errors.New("precondition failed")
	ErrTooLarge           = errors.New("object larger than the limit")
	// ErrCopyRefused: S3 will not do this copy in one request (a source over 5 GiB answers
	// InvalidRequest); retrying cannot help.
	ErrCopyRefused = errors.New("copy refused")
)

// s3API is the part of the S3 client this adapter uses.
type s3API interface {
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	CopyObject(ctx context.Context, in *s3.CopyObjectInput, optFns ...func(*s3.Options)) (*s3.CopyObjectOutput, error)
	DeleteObject(ctx context.Context, in *s3.DeleteObjectInput, optFns ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	CreateMultipartUpload(ctx context.Context, in *s3.CreateMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error)
	UploadPart(ctx context.Context, in *s3.UploadPartInput, optFns ...func(*s3.Options)) (*s3.UploadPartOutput, error)
	CompleteMultipartUpload(ctx context.Context, in *s3.CompleteMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error)
	AbortMultipartUpload(ctx context.Context, in *s3.AbortMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error)
	ListParts(ctx context.Context, in *s3.ListPartsInput, optFns ...func(*s3.Options)) (*s3.ListPartsOutput, error)
	UploadPartCopy(ctx context.Context, in *s3.UploadPartCopyInput, optFns ...func(*s3.Options)) (*s3.UploadPartCopyOutput, error)
}

// Store talks to S3.
type Store struct{ api s3API }

// New wraps an S3 client.
func New(api s3API) *Store { return &Store{api: api} }

// Object is what a HEAD tells about an object.
type Object struct {
	Bucket, Key  string
	Size         int64
	ETag         string // without quotes
	VersionID    string
	ContentType  string
	SHA256       string // hex; from S3's additional checksum or x-amz-meta-sha256, "" if neither
	Metadata     map[string]string
	LastModified time.Time
}

// Head reads an object's metadata, asking for its checksum.
func (s *Store) Head(ctx context.Context, bucket, key string) (Object, error) {
	out, err := s.api.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled,
	})
	if err != nil {
		return Object{}, fmt.Errorf("head s3://%s/%s: %w", bucket, key, translate(err))
	}
	o := object(bucket, key, out.ContentLength, out.ETag, out.VersionId, out.ContentType, out.Metadata, out.LastModified)
	o.SHA256 = hexChecksum(aws.ToString(out.ChecksumSHA256))
	if o.SHA256 == "" {
		o.SHA256 = strings.ToLower(strings.TrimSpace(out.Metadata["sha256"]))
	}
	return o, nil
}

// object is what a HEAD's or a GET's answer says about an object.
func object(bucket, key string, size *int64, etag, version, contentType *string, meta map[string]string, modified *time.Time) Object {
	return Object{
		Bucket: bucket, Key: key,
		Size:         aws.ToInt64(size),
		ETag:         strings.Trim(aws.ToString(etag), `"`),
		VersionID:    aws.ToString(version),
		ContentType:  aws.ToString(contentType),
		Metadata:     meta,
		LastModified: aws.ToTime(modified),
	}
}

// hexChecksum turns S3's base64 SHA-256 into hex; "" for none, or for the composite checksum
// ("...-N") of a multipart upload, which is not the object's SHA-256.
func hexChecksum(c string) string {
	if c == "" || strings.Contains(c, "-") {
		return ""
	}
	raw, err := base64.StdEncoding.DecodeString(c)
	if err != nil || len(raw) != sha256.Size {
		return ""
	}
	return fmt.Sprintf("%x", raw)
}

// Get reads the object exactly as a previous Head saw it (by version, else by ETag), refusing
// more than limit bytes.
func (s *Store) Get(ctx context.Context, o Object, limit int64) ([]byte, error) {
	body, err := s.Stream(ctx, o)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	buf := bytes.NewBuffer(make([]byte, 0, min(max(o.Size, 0), limit)+1))
	n, err := io.Copy(buf, io.LimitReader(body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read s3://%s/%s: %w", o.Bucket, o.Key, err)
	}
	if n > limit {
		return nil, fmt.Errorf("read s3://%s/%s: %w (%d bytes)", o.Bucket, o.Key, ErrTooLarge, limit)
	}
	return buf.Bytes(), nil
}

// Stream opens the object exactly as a previous Head saw it (by version, else by ETag); the
// caller reads and closes it.
func (s *Store) Stream(ctx context.Context, o Object) (io.ReadCloser, error) {
	return s.stream(ctx, o, "")
}

// StreamFrom is Stream from byte offset on (an offset at the end gives no bytes).
func (s *Store) StreamFrom(ctx context.Context, o Object, offset int64) (io.ReadCloser, error) {
	switch {
	case offset <= 0:
		return s.stream(ctx, o, "")
	case offset >= o.Size:
		return io.NopCloser(strings.NewReader("")), nil
	}
	return s.stream(ctx, o, fmt.Sprintf("bytes=%d-", offset))
}

// Peek reads the first n bytes (fewer for a shorter object) of the object as a previous Head
// saw it: one ranged GET.
func (s *Store) Peek(ctx context.Context, o Object, n int64) ([]byte, error) {
	if o.Size == 0 {
		return nil, nil // a range of an empty object is unsatisfiable
	}
	body, err := s.stream(ctx, o, fmt.Sprintf("bytes=0-%d", n-1))
	if err != nil {
		return nil, err
	}
	defer body.Close()
	b, err := io.ReadAll(io.LimitReader(body, n))
	if err != nil {
		return nil, fmt.Errorf("read s3://%s/%s: %w", o.Bucket, o.Key, err)
	}
	return b, nil
}

func (s *Store) stream(ctx context.Context, o Object, rng string) (io.ReadCloser, error) {
	in := &s3.GetObjectInput{Bucket: aws.String(o.Bucket), Key: aws.String(o.Key), Range: nonEmpty(rng)}
	if o.VersionID != "" && o.VersionID != "null" {
		in.VersionId = aws.String(o.VersionID)
	} else if o.ETag != "" {
		in.IfMatch = aws.String(`"` + o.ETag + `"`)
	}
	out, err := s.api.GetObject(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("get s3://%s/%s: %w", o.Bucket, o.Key, translate(err))
	}
	return out.Body, nil
}

// Read reads the current object at bucket/key with its metadata, refusing more than limit
// bytes: one GET where a HEAD and a GET would take two.
func (s *Store) Read(ctx context.Context, bucket, key string, limit int64) (Object, []byte, error) {
	out, err := s.api.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return Object{}, nil, fmt.Errorf("get s3://%s/%s: %w", bucket, key, translate(err))
	}
	defer out.Body.Close()
	o := object(bucket, key, out.ContentLength, out.ETag, out.VersionId, out.ContentType, out.Metadata, out.LastModified)
	body, err := io.ReadAll(io.LimitReader(out.Body, limit+1))
	if err != nil {
		return Object{}, nil, fmt.Errorf("read s3://%s/%s: %w", bucket, key, err)
	}
	if int64(len(body)) > limit {
		return Object{}, nil, fmt.Errorf("read s3://%s/%s: %w (%d bytes)", bucket, key, ErrTooLarge, limit)
	}
	return o, body, nil
}

// Open streams the current object at bucket/key; the caller closes it.
func (s *Store) Open(ctx context.Context, bucket, key string) (io.ReadCloser, error) {
	out, err := s.api.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, fmt.Errorf("get s3://%s/%s: %w", bucket, key, translate(err))
	}
	return out.Body, nil
}

// Put is one object to write.
type Put struct {
	Bucket, Key  string
	Body         []byte
	ContentType  string
	CacheControl string // "" for none; a copy with the source's metadata keeps it
	Metadata     map[string]string
	Only         Precondition // on the key's current object
}

// Precondition guards a write on what the destination holds now; the zero value writes always.
// A write whose precondition does not hold fails with ErrPreconditionFailed and writes nothing.
type Precondition struct {
	IfMatch  string // the destination must exist with this ETag
	IfAbsent bool   // the destination must not exist
}

// Replacing is the precondition for overwriting o, or for creating the key when found is false.
func Replacing(o Object, found bool) Precondition {
	if !found {
		return Precondition{IfAbsent: true}
	}
	return Precondition{IfMatch: o.ETag}
}

func (p Precondition) ifMatch() *string {
	if p.IfMatch == "" {
		return nil
	}
	return aws.String(`"` + p.IfMatch + `"`)
}

func (p Precondition) ifNoneMatch() *string {
	if !p.IfAbsent {
		return nil
	}
	return aws.String("*")
}

// Written is what a successful Put returns.
type Written struct {
	ETag   string
	SHA256 string // hex, of the bytes sent
	Size   int64  // bytes sent
	// Stored is the SHA-256 the server computed over the bytes it stored (hex), from the PUT's
	// answer; "" when the server does not report one.
	Stored string
}

// Put writes an object with its SHA-256, which S3 checks against the body before it stores it,
// and records the same digest as x-amz-meta-sha256.
func (s *Store) Put(ctx context.Context, p Put) (Written, error) {
	sum := sha256.Sum256(p.Body)
	meta := map[string]string{"sha256": fmt.Sprintf("%x", sum)}
	for k, v := range p.Metadata {
		meta[k] = v
	}
	out, err := s.api.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(p.Bucket), Key: aws.String(p.Key),
		Body:              bytes.NewReader(p.Body),
		ContentLength:     aws.Int64(int64(len(p.Body))),
		ContentType:       aws.String(p.ContentType),
		CacheControl:      nonEmpty(p.CacheControl),
		ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
		ChecksumSHA256:    aws.String(base64.StdEncoding.EncodeToString(sum[:])),
		Metadata:          meta,
		IfMatch:           p.Only.ifMatch(),
		IfNoneMatch:       p.Only.ifNoneMatch(),
	})
	if err != nil {
		return Written{}, fmt.Errorf("put s3://%s/%s: %w", p.Bucket, p.Key, translate(err))
	}
	w := Written{ETag: strings.Trim(aws.ToString(out.ETag), `"`), SHA256: meta["sha256"], Size: int64(len(p.Body)), Stored: hexChecksum(aws.ToString(out.ChecksumSHA256))}
	return w, nil
}

// nonEmpty is s, or nil for "" (a header the request leaves out).
func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}

// Copy is one server-side copy.
type Copy struct {
	SrcBucket, SrcKey string
	SrcVersionID      string // copy this version; "" for the current one
	IfMatch           string // copy only if the source still has this ETag ("" = any)
	DstBucket, DstKey string
	Metadata          map[string]string // replaces the source's metadata; nil keeps it
	// ContentType and CacheControl, with Metadata, are the destination's: a copy that replaces
	// the metadata replaces them too ("" leaves them unset).
	ContentType, CacheControl string
	// Only guards the destination. Amazon S3 enforces it on CopyObject; MinIO (the local stack)
	// ignores it, so callers that need the guard there check the destination first.
	Only Precondition
}

// Copy copies an object inside S3. A source that no longer matches IfMatch, or a destination
// that fails Only, gives ErrPreconditionFailed and copies nothing. The destination gets a fresh
// SHA-256 checksum.
func (s *Store) Copy(ctx context.Context, c Copy) (etag string, err error) {
	in := &s3.CopyObjectInput{
		Bucket: aws.String(c.DstBucket), Key: aws.String(c.DstKey),
		CopySource:        aws.String(CopySource(c.SrcBucket, c.SrcKey, c.SrcVersionID)),
		ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
		MetadataDirective: types.MetadataDirectiveCopy,
		IfMatch:           c.Only.ifMatch(),
		IfNoneMatch:       c.Only.ifNoneMatch(),
	}
	if c.IfMatch != "" {
		in.CopySourceIfMatch = aws.String(`"` + c.IfMatch + `"`)
	}
	if c.Metadata != nil {
		in.MetadataDirective = types.MetadataDirectiveReplace
		in.Metadata = c.Metadata
		in.ContentType, in.CacheControl = nonEmpty(c.ContentType), nonEmpty(c.CacheControl)
	}
	out, err := s.api.CopyObject(ctx, in)
	if err != nil {
		err = translate(err)
		var api smithy.APIError
		if errors.As(err, &api) && (api.ErrorCode() == "InvalidRequest" || api.ErrorCode() == "EntityTooLarge") {
			err = fmt.Errorf("%w: %w", ErrCopyRefused, err)
		}
		return "", fmt.Errorf("copy s3://%s/%s to s3://%s/%s: %w", c.SrcBucket, c.SrcKey, c.DstBucket, c.DstKey, err)
	}
	if out.CopyObjectResult == nil {
		return "", nil
	}
	return strings.Trim(aws.ToString(out.CopyObjectResult.ETag), `"`), nil
}

// Delete removes an object; a missing one is not an error.
func (s *Store) Delete(ctx context.Context, bucket, key string) error {
	return s.DeleteIf(ctx, bucket, key, "")
}

// DeleteIf removes an object only while it still has ETag etag ("" deletes whatever is there):
// ErrPreconditionFailed when it changed. Amazon S3 enforces the condition; MinIO (the local
// stack) ignores it. A missing object is not an error.
func (s *Store) DeleteIf(ctx context.Context, bucket, key, etag string) error {
	in := &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
	if etag != "" {
		in.IfMatch = aws.String(`"` + etag + `"`)
	}
	if _, err := s.api.DeleteObject(ctx, in); err != nil {
		if err = translate(err); !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("delete s3://%s/%s: %w", bucket, key, err)
		}
	}
	return nil
}

// List calls f with every object under prefix in bucket (key, size, ETag, last modified; no
// checksum or metadata: that takes a Head). Keys travel URL-encoded, so any key lists. It stops at
// f's first error.
func (s *Store) List(ctx context.Context, bucket, prefix string, f func(Object) error) error {
	return s.ListAfter(ctx, bucket, prefix, "", f)
}

// ListAfter is List from the first key after after ("" lists from the start): where a
// listing that stopped resumes.
func (s *Store) ListAfter(ctx context.Context, bucket, prefix, after string, f func(Object) error) error {
	return s.listAfter(ctx, bucket, prefix, after, 0, f)
}

// listAfter is ListAfter with pages of at most pageSize keys (0: S3's default, 1,000).
func (s *Store) listAfter(ctx context.Context, bucket, prefix, after string, pageSize int32, f func(Object) error) error {
	in := &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix), EncodingType: types.EncodingTypeUrl}
	if pageSize > 0 {
		in.MaxKeys = aws.Int32(pageSize)
	}
	if after != "" {
		in.StartAfter = aws.String(after)
	}
	p := s3.NewListObjectsV2Paginator(s.api, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list s3://%s/%s: %w", bucket, prefix, translate(err))
		}
		for _, o := range page.Contents {
			obj, err := listed(bucket, prefix, o)
			if err != nil {
				return err
			}
			if err := f(obj); err != nil {
				return err
			}
		}
	}
	return nil
}

// listed is a listing's entry as an Object (its key URL-decoded).
func listed(bucket, prefix string, o types.Object) (Object, error) {
	key, err := url.QueryUnescape(aws.ToString(o.Key))
	if err != nil {
		return Object{}, fmt.Errorf("list s3://%s/%s: key %q: %w", bucket, prefix, aws.ToString(o.Key), err)
	}
	return Object{
		Bucket: bucket, Key: key, Size: aws.ToInt64(o.Size),
		ETag: strings.Trim(aws.ToString(o.ETag), `"`), LastModified: aws.ToTime(o.LastModified),
	}, nil
}

// CopySource builds the x-amz-copy-source value: bucket/key, URL-encoded, with an optional version.
func CopySource(bucket, key, versionID string) string {
	src := url.PathEscape(bucket) + "/" + escapeKey(key)
	if versionID != "" {
		src += "?versionId=" + url.QueryEscape(versionID)
	}
	return src
}

// escapeKey percent-encodes each path segment, keeping the slashes.
func escapeKey(key string) string {
	parts := strings.Split(key, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

// translate maps S3's answers onto the package sentinels, keeping the original in the chain.
func translate(err error) error {
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "NoSuchKey", "NotFound", "NoSuchVersion":
			return fmt.Errorf("%w: %w", ErrNotFound, err)
		case "PreconditionFailed":
			return fmt.Errorf("%w: %w", ErrPreconditionFailed, err)
		}
	}
	var resp *smithyhttp.ResponseError
	if errors.As(err, &resp) {
		switch resp.HTTPStatusCode() {
		case 404:
			return fmt.Errorf("%w: %w", ErrNotFound, err)
		case 412:
			return fmt.Errorf("%w: %w", ErrPreconditionFailed, err)
		}
	}
	return err
}
