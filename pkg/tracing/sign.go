package tracing

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// signing is an http.RoundTripper that signs each request with SigV4 for X-Ray's OTLP endpoint
// (service "xray"). The exporter's requests are small protobuf bodies, read whole to hash them.
type signing struct {
	base   http.RoundTripper
	creds  aws.CredentialsProvider
	region string
	now    func() time.Time // nil: time.Now
}

func (s *signing) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		body, err = io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("tracing: reading the export to sign it: %w", err)
		}
	}
	creds, err := s.creds.Retrieve(req.Context())
	if err != nil {
		return nil, fmt.Errorf("tracing: credentials to sign the export: %w", err)
	}
	signed := req.Clone(req.Context())
	signed.Body = io.NopCloser(bytes.NewReader(body))
	signed.ContentLength = int64(len(body))
	sum := sha256.Sum256(body)
	now := time.Now
	if s.now != nil {
		now = s.now
	}
	if err := v4.NewSigner().SignHTTP(req.Context(), creds, signed, hex.EncodeToString(sum[:]), "xray", s.region, now()); err != nil {
		return nil, fmt.Errorf("tracing: signing the export: %w", err)
	}
	return s.base.RoundTrip(signed)
}
