package storage

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// maxQueued bounds the objects ListAhead holds between the one f is called for and the child
// prefixes listed ahead.
const maxQueued = 1000

// queued is one entry of ListAhead's queue: an object directly under the prefix, or the pages of
// a child prefix being listed.
type queued struct {
	obj   *Object
	pages <-chan listPage
}

type listPage struct {
	objs []Object
	err  error
}

// ListAhead is ListAfter with the prefix's child prefixes (up to the next "/") listed
// concurrently, up to ahead of them at a time, ahead of the one whose objects f is being called
// with: f still sees every object once and in key order (a position taken from it, as a
// backfill's checkpoint, holds), while a bucket of many prefixes lists in parallel. It holds at
// most one page of aheadPage objects per child listed ahead (and the one being read), and
// maxQueued objects.
func (s *Store) ListAhead(ctx context.Context, bucket, prefix, after string, ahead int, f func(Object) error) error {
	if ahead <= 1 {
		return s.ListAfter(ctx, bucket, prefix, after, f)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // the children listed ahead stop
	var (
		queue   []queued
		running int
	)
	front := func() error {
		q := queue[0]
		queue = queue[1:]
		if q.obj != nil {
			return f(*q.obj)
		}
		running--
		for pg := range q.pages {
			if pg.err != nil {
				return pg.err
			}
			for _, ob := range pg.objs {
				if err := f(ob); err != nil {
					return err
				}
			}
		}
		return nil
	}
	// A listing that resumes inside a child prefix first finishes that child: the level's
	// listing after that key may not name it again.
	resumed := childOf(prefix, after)
	if resumed != "" {
		queue = append(queue, queued{pages: s.pages(ctx, bucket, resumed, after)})
		running++
	}
	err := s.listLevel(ctx, bucket, prefix, after, func(ob *Object, child string) error {
		switch {
		case child == "":
			queue = append(queue, queued{obj: ob})
		case child != resumed:
			queue = append(queue, queued{pages: s.pages(ctx, bucket, child, "")})
			running++
		}
		for running >= ahead || len(queue) > maxQueued {
			if err := front(); err != nil {
				return err
			}
		}
		return nil
	})
	for err == nil && len(queue) > 0 {
		err = front()
	}
	return err
}

// childOf is the child prefix of prefix (up to the next "/") that key is in; "" if key is not
// below one.
func childOf(prefix, key string) string {
	rest, ok := strings.CutPrefix(key, prefix)
	if i := strings.IndexByte(rest, '/'); ok && i >= 0 {
		return prefix + rest[:i+1]
	}
	return ""
}

// aheadPage is the page size of a child prefix listed ahead: small, so that the objects held
// ahead (a page per child) stay few and the same whatever the children's sizes.
const aheadPage = 200

// pages lists prefix in the background, a page of up to aheadPage objects at a time, one page
// ahead of its reader at most; it stops when ctx ends.
func (s *Store) pages(ctx context.Context, bucket, prefix, after string) <-chan listPage {
	ch := make(chan listPage)
	send := func(p listPage) bool {
		select {
		case ch <- p:
			return true
		case <-ctx.Done():
			return false
		}
	}
	go func() {
		defer close(ch)
		var page []Object
		err := s.listAfter(ctx, bucket, prefix, after, aheadPage, func(ob Object) error {
			if page = append(page, ob); len(page) == aheadPage {
				if !send(listPage{objs: page}) {
					return ctx.Err()
				}
				page = nil
			}
			return nil
		})
		if err != nil {
			send(listPage{err: err})
		} else if len(page) > 0 {
			send(listPage{objs: page})
		}
	}()
	return ch
}

// listLevel lists one level under prefix (delimiter "/") after after, in key order: f gets each
// object directly under it, or each child prefix.
func (s *Store) listLevel(ctx context.Context, bucket, prefix, after string, f func(ob *Object, child string) error) error {
	in := &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix), Delimiter: aws.String("/"), EncodingType: types.EncodingTypeUrl}
	if after != "" {
		in.StartAfter = aws.String(after)
	}
	p := s3.NewListObjectsV2Paginator(s.api, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list s3://%s/%s: %w", bucket, prefix, translate(err))
		}
		objs := make([]Object, len(page.Contents))
		for i, o := range page.Contents {
			if objs[i], err = listed(bucket, prefix, o); err != nil {
				return err
			}
		}
		kids := make([]string, len(page.CommonPrefixes))
		for i, cp := range page.CommonPrefixes {
			if kids[i], err = url.QueryUnescape(aws.ToString(cp.Prefix)); err != nil {
				return fmt.Errorf("list s3://%s/%s: prefix %q: %w", bucket, prefix, aws.ToString(cp.Prefix), err)
			}
		}
		// Each is in key order; together, too (compared decoded: the encoding keeps no order).
		for len(objs) > 0 || len(kids) > 0 {
			var err error
			if len(kids) == 0 || (len(objs) > 0 && objs[0].Key < kids[0]) {
				ob := objs[0]
				objs = objs[1:]
				err = f(&ob, "")
			} else {
				child := kids[0]
				kids = kids[1:]
				err = f(nil, child)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}
