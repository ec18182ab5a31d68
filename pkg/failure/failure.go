// Package failure classifies errors as permanent (bad input: quarantine it, do not retry) or
// transient (a fault of the moment: retry with backoff), and carries the reason a user reads in
// quarantine. Classification may also answer "unknown"; callers treat unknown as transient and
// rely on the attempt limit to stop a poison pill.
package failure

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Reason is a stable, machine-readable code for why an input was rejected.
type Reason string

// Reasons a file is quarantined.
const (
	UnsupportedType  Reason = "unsupported_type"
	TooLarge         Reason = "too_large"
	TooManyPixels    Reason = "too_many_pixels"
	Corrupt          Reason = "corrupt"
	ChecksumMismatch Reason = "checksum_mismatch"
	Empty            Reason = "empty"
	MaxAttempts      Reason = "max_attempts"
	// UnsupportedColorProfile: the file embeds a colour profile sluice cannot evaluate, and the
	// recipe says to quarantine such files rather than take their pixels as sRGB.
	UnsupportedColorProfile Reason = "unsupported_color_profile"
	// NoRecipe: no recipe's match takes the file, and the routing quarantines such files.
	NoRecipe Reason = "no_recipe"
	// The records kind's file-level faults: not text at all, text in another encoding than the
	// recipe's, a header other than the recipe's (or one with empty or repeated names), a row
	// longer than the recipe allows, more invalid rows than its max_bad_rows.
	NotText        Reason = "not_text"
	BadEncoding    Reason = "bad_encoding"
	HeaderMismatch Reason = "header_mismatch"
	RowTooLong     Reason = "row_too_long"
	TooManyBadRows Reason = "too_many_bad_rows"
)

// PermanentError is a failure that retrying cannot fix.
type PermanentError struct {
	Reason  Reason
	Message string // for a human: what is wrong with the file
	Err     error  // the cause, if any
}

func (e *PermanentError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Reason, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Reason, e.Message)
}

func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent returns a PermanentError with a formatted message.
func Permanent(reason Reason, format string, args ...any) error {
	return &PermanentError{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// PermanentWrap returns a PermanentError that keeps its cause.
func PermanentWrap(reason Reason, err error, format string, args ...any) error {
	return &PermanentError{Reason: reason, Message: fmt.Sprintf(format, args...), Err: err}
}

// TransientError marks a failure worth retrying.
type TransientError struct{ Err error }

func (e *TransientError) Error() string { return "transient: " + e.Err.Error() }
func (e *TransientError) Unwrap() error { return e.Err }

// Transient marks err as worth retrying.
func Transient(err error) error {
	if err == nil {
		return nil
	}
	return &TransientError{Err: err}
}

// Class is what Classify answers.
type Class int

// Classes of failure.
const (
	Unknown Class = iota
	IsTransient
	IsPermanent
)

func (c Class) String() string {
	switch c {
	case IsTransient:
		return "transient"
	case IsPermanent:
		return "permanent"
	default:
		return "unknown"
	}
}

// Classify decides, from the error chain, whether err is permanent, transient or unknown.
// Explicit marks win; then AWS throttling and 5xx answers, timeouts and network errors are
// transient.
func Classify(err error) Class {
	if err == nil {
		return Unknown
	}
	var perm *PermanentError
	if errors.As(err, &perm) {
		return IsPermanent
	}
	var tr *TransientError
	if errors.As(err, &tr) {
		return IsTransient
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return IsTransient
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "SlowDown", "Throttling", "ThrottlingException", "ProvisionedThroughputExceededException",
			"RequestLimitExceeded", "TooManyRequestsException", "RequestTimeout", "InternalError",
			"ServiceUnavailable", "TransactionConflictException":
			return IsTransient
		}
	}
	var resp *smithyhttp.ResponseError
	if errors.As(err, &resp) {
		if s := resp.HTTPStatusCode(); s >= 500 || s == http.StatusTooManyRequests {
			return IsTransient
		}
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return IsTransient
	}
	return Unknown
}

// ReasonOf returns the reason of a permanent error, or "".
func ReasonOf(err error) Reason {
	var perm *PermanentError
	if errors.As(err, &perm) {
		return perm.Reason
	}
	return ""
}
