// Package cdn keeps a CloudFront distribution in front of the output bucket from serving what
// sluice replaced: when an outcome replaces or removes a source's published manifest (the one
// stable key; renditions live under generation keys that never change), it creates one
// invalidation of that path, with the outcome's id as CallerReference, so a repeated request
// (a duplicate delivery, a repair) creates nothing new.
package cdn

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront/types"
	"github.com/aws/smithy-go"

	"github.com/sluice-dev/sluice/pkg/failure"
)

// invalidationAPI is what the invalidator needs of CloudFront.
type invalidationAPI interface {
	CreateInvalidation(ctx context.Context, in *cloudfront.CreateInvalidationInput, optFns ...func(*cloudfront.Options)) (*cloudfront.CreateInvalidationOutput, error)
}

var _ invalidationAPI = (*cloudfront.Client)(nil)

// Invalidator invalidates paths of one distribution.
type Invalidator struct {
	api          invalidationAPI
	distribution string
}

// New invalidates paths of the distribution with id distribution.
func New(api invalidationAPI, distribution string) *Invalidator {
	return &Invalidator{api: api, distribution: distribution}
}

// Invalidate asks CloudFront to drop the objects at keys (output-bucket keys, served at the
// distribution's root) from its caches, as one invalidation named ref: the same ref and keys
// again create nothing new. CloudFront refusing more invalidations in progress is transient.
func (v *Invalidator) Invalidate(ctx context.Context, ref string, keys []string) error {
	paths := make([]string, len(keys))
	for i, k := range keys {
		paths[i] = Path(k)
	}
	_, err := v.api.CreateInvalidation(ctx, &cloudfront.CreateInvalidationInput{
		DistributionId: aws.String(v.distribution),
		InvalidationBatch: &types.InvalidationBatch{
			CallerReference: aws.String(ref),
			Paths:           &types.Paths{Quantity: aws.Int32(int32(len(paths))), Items: paths},
		},
	})
	var (
		api  smithy.APIError
		busy *types.TooManyInvalidationsInProgress
	)
	switch {
	case err == nil, errors.As(err, &api) && api.ErrorCode() == "InvalidationBatchAlreadyExists":
		// exists: this ref was used with other paths; the keys derive from the source, so it is
		// this outcome's invalidation, made by an older sluice.
		return nil
	case errors.As(err, &busy):
		return failure.Transient(fmt.Errorf("invalidate %v on %s: %w", paths, v.distribution, err))
	}
	return fmt.Errorf("invalidate %v on %s: %w", paths, v.distribution, err)
}

// Path is the invalidation path of an output-bucket key: a leading slash, each segment
// URL-encoded (CloudFront matches the encoded form of unsafe and non-ASCII characters; an
// asterisk, its wildcard, is encoded too).
func Path(key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = strings.ReplaceAll(url.PathEscape(s), "*", "%2A")
	}
	return "/" + strings.Join(segs, "/")
}
