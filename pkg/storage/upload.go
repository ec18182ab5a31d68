package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"hash"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// PartSize is the size of each part of a streamed upload but the last: S3's minimum part is
// 5 MiB, and 10,000 parts of 8 MiB make 78 GiB.
const PartSize = 8 << 20

// Upload streams an object of unknown size: the bytes written are sent in parts of PartSize,
// each with its SHA-256, which S3 checks; an object smaller than one part is one PutObject
// (Store.Put). Memory is one part, whatever the size. Close completes it and checks that S3
// stored exactly the parts sent; Abort (after a failure) discards it.
type Upload struct {
	s        *Store
	ctx      context.Context
	p        Put
	buf      bytes.Buffer
	id       string // the multipart upload, once the first part is full
	parts    []types.CompletedPart
	partSums []byte // the parts' raw SHA-256s, in order
	whole    hash.Hash
	size     int64
	err      error
}

// NewUpload starts a streamed upload of p (its Body is not used; Only is not supported).
func (s *Store) NewUpload(ctx context.Context, p Put) *Upload {
	return &Upload{s: s, ctx: ctx, p: p, whole: sha256.New()}
}

// Write buffers b, sending each part as it fills.
func (u *Upload) Write(b []byte) (int, error) {
	if u.err != nil {
		return 0, u.err
	}
	n := len(b)
	for len(b) > 0 {
		room := PartSize - u.buf.Len()
		take := min(room, len(b))
		u.buf.Write(b[:take])
		u.whole.Write(b[:take])
		u.size += int64(take)
		b = b[take:]
		if u.buf.Len() == PartSize {
			if u.err = u.sendPart(); u.err != nil {
				return 0, u.err
			}
		}
	}
	return n, nil
}

// sendPart uploads the buffered part (starting the multipart upload first if need be).
func (u *Upload) sendPart() error {
	if u.id == "" {
		out, err := u.s.api.CreateMultipartUpload(u.ctx, &s3.CreateMultipartUploadInput{
			Bucket: aws.String(u.p.Bucket), Key: aws.String(u.p.Key),
			ContentType: aws.String(u.p.ContentType), CacheControl: nonEmpty(u.p.CacheControl),
			Metadata: u.p.Metadata, ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
		})
		if err != nil {
			return fmt.Errorf("start upload s3://%s/%s: %w", u.p.Bucket, u.p.Key, translate(err))
		}
		u.id = aws.ToString(out.UploadId)
	}
	sum := sha256.Sum256(u.buf.Bytes())
	num := int32(len(u.parts) + 1)
	out, err := u.s.api.UploadPart(u.ctx, &s3.UploadPartInput{
		Bucket: aws.String(u.p.Bucket), Key: aws.String(u.p.Key), UploadId: aws.String(u.id),
		PartNumber: aws.Int32(num), Body: bytes.NewReader(u.buf.Bytes()), ContentLength: aws.Int64(int64(u.buf.Len())),
		ChecksumAlgorithm: types.ChecksumAlgorithmSha256, ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(sum[:])),
	})
	if err != nil {
		return fmt.Errorf("upload part %d of s3://%s/%s: %w", num, u.p.Bucket, u.p.Key, translate(err))
	}
	u.parts = append(u.parts, types.CompletedPart{PartNumber: aws.Int32(num), ETag: out.ETag, ChecksumSHA256: out.ChecksumSHA256})
	u.partSums = append(u.partSums, sum[:]...)
	u.buf.Reset()
	return nil
}

// Close sends what is left and completes the object. Written.SHA256 is the SHA-256 of every byte
// written; Stored is what S3 reports it stored, compared by the caller: the SHA-256 of a
// single-request object, or, of a multipart one, the same digest when S3's composite checksum
// (the SHA-256 of the parts' SHA-256s) is the one these parts make, "" when it is not.
func (u *Upload) Close() (Written, error) {
	if u.err != nil {
		return Written{}, u.err
	}
	if u.id == "" {
		p := u.p
		p.Body = u.buf.Bytes()
		return u.s.Put(u.ctx, p)
	}
	if u.buf.Len() > 0 {
		if err := u.sendPart(); err != nil {
			return Written{}, err
		}
	}
	out, err := u.s.api.CompleteMultipartUpload(u.ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String(u.p.Bucket), Key: aws.String(u.p.Key), UploadId: aws.String(u.id),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: u.parts},
	})
	if err != nil {
		return Written{}, fmt.Errorf("complete upload s3://%s/%s: %w", u.p.Bucket, u.p.Key, translate(err))
	}
	w := Written{ETag: strings.Trim(aws.ToString(out.ETag), `"`), SHA256: fmt.Sprintf("%x", u.whole.Sum(nil)), Size: u.size}
	if aws.ToString(out.ChecksumSHA256) == u.composite() {
		w.Stored = w.SHA256
	}
	return w, nil
}

// composite is S3's checksum of a multipart object of these parts: the base64 SHA-256 of the
// parts' SHA-256s, a dash, and the number of parts.
func (u *Upload) composite() string {
	sum := sha256.Sum256(u.partSums)
	return fmt.Sprintf("%s-%d", base64.StdEncoding.EncodeToString(sum[:]), len(u.parts))
}

// Abort discards a multipart upload that will not be completed (its parts cost storage until
// then; the bucket's lifecycle rule aborts any left behind).
func (u *Upload) Abort() {
	if u.id == "" {
		return
	}
	_, _ = u.s.api.AbortMultipartUpload(context.WithoutCancel(u.ctx), &s3.AbortMultipartUploadInput{
		Bucket: aws.String(u.p.Bucket), Key: aws.String(u.p.Key), UploadId: aws.String(u.id),
	})
}
