package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/base64"
	"fmt"
	"hash"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// PartSize is the size of each part of a streamed upload but the last: S3's minimum part is
// 5 MiB, and its 10,000 parts of 8 MiB make MaxUploadBytes.
const (
	PartSize       = 8 << 20
	maxParts       = 10_000
	MaxUploadBytes = maxParts * PartSize
)

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
	if len(u.parts) == maxParts {
		return fmt.Errorf("upload s3://%s/%s: %w: a streamed object holds at most %d bytes", u.p.Bucket, u.p.Key, ErrTooLarge, MaxUploadBytes)
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

// UploadState is a streamed upload at a checkpoint: what another process needs to go on with it.
type UploadState struct {
	UploadID string `json:"upload_id,omitempty"` // "" while it is under one part (nothing sent)
	Parts    int32  `json:"parts"`               // parts sent
	Size     int64  `json:"size"`                // bytes written
	Hash     []byte `json:"hash"`                // the running SHA-256 of those bytes (its state)
	Pending  string `json:"pending,omitempty"`   // the key holding the bytes not yet sent ("" for none)
}

// Checkpoint saves the upload's state: the bytes written but not yet sent (less than a part)
// are put at pendingKey, in the upload's bucket. Writing goes on. The caller names a key of
// its own for each position, so that whoever writes it, it holds the same bytes.
func (u *Upload) Checkpoint(pendingKey string) (UploadState, error) {
	if u.err != nil {
		return UploadState{}, u.err
	}
	h, err := u.whole.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return UploadState{}, err
	}
	st := UploadState{UploadID: u.id, Parts: int32(len(u.parts)), Size: u.size, Hash: h}
	if u.buf.Len() > 0 {
		st.Pending = pendingKey
		if _, err := u.s.Put(u.ctx, Put{Bucket: u.p.Bucket, Key: pendingKey, Body: u.buf.Bytes(), ContentType: "application/octet-stream"}); err != nil {
			return UploadState{}, err
		}
	}
	return st, nil
}

// ResumeUpload goes on with the upload of p that st describes, in this process: the parts S3
// holds for it (the first st.Parts: a part sent after the checkpoint is sent again, with the
// same bytes), the bytes not yet sent, the running SHA-256. An upload S3 no longer has
// (aborted, by the bucket's lifecycle rule or by hand) is ErrNotFound.
func (s *Store) ResumeUpload(ctx context.Context, p Put, st UploadState) (*Upload, error) {
	u := s.NewUpload(ctx, p)
	if err := u.whole.(encoding.BinaryUnmarshaler).UnmarshalBinary(st.Hash); err != nil {
		return nil, fmt.Errorf("resume upload s3://%s/%s: %w", p.Bucket, p.Key, err)
	}
	u.id, u.size = st.UploadID, st.Size
	if st.UploadID != "" {
		if err := u.listParts(st.Parts); err != nil {
			return nil, err
		}
	}
	if st.Pending != "" {
		b, err := s.Get(ctx, Object{Bucket: p.Bucket, Key: st.Pending}, PartSize)
		if err != nil {
			return nil, err
		}
		u.buf.Write(b)
	}
	if int64(len(u.parts))*PartSize+int64(u.buf.Len()) != st.Size {
		return nil, fmt.Errorf("resume upload s3://%s/%s: %d parts and %d pending bytes do not make the %d bytes written", p.Bucket, p.Key, len(u.parts), u.buf.Len(), st.Size)
	}
	return u, nil
}

// listParts reads the first n parts of the upload back from S3, with their checksums.
func (u *Upload) listParts(n int32) error {
	var marker *string
	for int32(len(u.parts)) < n {
		out, err := u.s.api.ListParts(u.ctx, &s3.ListPartsInput{
			Bucket: aws.String(u.p.Bucket), Key: aws.String(u.p.Key), UploadId: aws.String(u.id), PartNumberMarker: marker,
		})
		if err != nil {
			return fmt.Errorf("list parts of s3://%s/%s: %w", u.p.Bucket, u.p.Key, translate(err))
		}
		for _, part := range out.Parts {
			num := aws.ToInt32(part.PartNumber)
			if num > n {
				break
			}
			sum, err := base64.StdEncoding.DecodeString(aws.ToString(part.ChecksumSHA256))
			if num != int32(len(u.parts))+1 || err != nil || len(sum) != sha256.Size {
				return fmt.Errorf("list parts of s3://%s/%s: part %d is missing or has no SHA-256: %w", u.p.Bucket, u.p.Key, len(u.parts)+1, ErrNotFound)
			}
			u.parts = append(u.parts, types.CompletedPart{PartNumber: part.PartNumber, ETag: part.ETag, ChecksumSHA256: part.ChecksumSHA256})
			u.partSums = append(u.partSums, sum...)
		}
		if !aws.ToBool(out.IsTruncated) {
			break
		}
		marker = out.NextPartNumberMarker
	}
	if int32(len(u.parts)) != n {
		return fmt.Errorf("list parts of s3://%s/%s: %d of %d parts: %w", u.p.Bucket, u.p.Key, len(u.parts), n, ErrNotFound)
	}
	return nil
}

// Server-side copies: one CopyObject copies at most MaxCopyBytes; a larger object is copied as
// a multipart upload of CopyPartBytes ranges. Variables so that tests can make them small
// (S3's smallest part is 5 MiB).
var (
	MaxCopyBytes  int64 = 5 << 30
	CopyPartBytes int64 = 512 << 20
)

// CopyLarge copies an object of size bytes, over MaxCopyBytes, as a multipart upload whose
// parts are copies of ranges of the source (UploadPartCopy), each only while the source still
// has c.IfMatch. It carries no additional checksum (MinIO wants one sent with each part copy,
// which only a reader of the bytes could compute): a caller that needs the SHA-256 on HEAD puts
// it in the metadata ("sha256", which storage.Head reads). A multipart copy copies no metadata:
// the destination gets c.Metadata, c.ContentType and c.CacheControl. A failure aborts the upload.
func (s *Store) CopyLarge(ctx context.Context, c Copy, size int64) (etag string, err error) {
	out, err := s.api.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: aws.String(c.DstBucket), Key: aws.String(c.DstKey), Metadata: c.Metadata,
		ContentType: nonEmpty(c.ContentType), CacheControl: nonEmpty(c.CacheControl),
	})
	if err != nil {
		return "", fmt.Errorf("start copy to s3://%s/%s: %w", c.DstBucket, c.DstKey, translate(err))
	}
	id := out.UploadId
	defer func() {
		if err != nil {
			_, _ = s.api.AbortMultipartUpload(context.WithoutCancel(ctx), &s3.AbortMultipartUploadInput{Bucket: aws.String(c.DstBucket), Key: aws.String(c.DstKey), UploadId: id})
		}
	}()
	var parts []types.CompletedPart
	for first := int64(0); first < size; first += CopyPartBytes {
		num := aws.Int32(int32(len(parts) + 1))
		in := &s3.UploadPartCopyInput{
			Bucket: aws.String(c.DstBucket), Key: aws.String(c.DstKey), UploadId: id, PartNumber: num,
			CopySource:      aws.String(CopySource(c.SrcBucket, c.SrcKey, c.SrcVersionID)),
			CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", first, min(first+CopyPartBytes, size)-1)),
		}
		if c.IfMatch != "" {
			in.CopySourceIfMatch = aws.String(`"` + c.IfMatch + `"`)
		}
		pc, err := s.api.UploadPartCopy(ctx, in)
		if err != nil {
			return "", fmt.Errorf("copy part %d of s3://%s/%s: %w", *num, c.SrcBucket, c.SrcKey, translate(err))
		}
		parts = append(parts, types.CompletedPart{PartNumber: num, ETag: pc.CopyPartResult.ETag})
	}
	done, err := s.api.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String(c.DstBucket), Key: aws.String(c.DstKey), UploadId: id,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil {
		return "", fmt.Errorf("complete copy to s3://%s/%s: %w", c.DstBucket, c.DstKey, translate(err))
	}
	return strings.Trim(aws.ToString(done.ETag), `"`), nil
}
