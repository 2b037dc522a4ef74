package mailcase

import (
	"context"
	"errors"
	"log/slog"

	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// ErrorCode classifies errors returned by Store and Pipeline operations.
type ErrorCode = driver.ErrorCode

// Error codes; see driver.ErrorCode.
const (
	OK                 = driver.OK
	Unknown            = driver.Unknown
	NotFound           = driver.NotFound
	AlreadyExists      = driver.AlreadyExists
	InvalidArgument    = driver.InvalidArgument
	FailedPrecondition = driver.FailedPrecondition
	PermissionDenied   = driver.PermissionDenied
	ResourceExhausted  = driver.ResourceExhausted
	Unavailable        = driver.Unavailable
	Unimplemented      = driver.Unimplemented
	Canceled           = driver.Canceled
	DeadlineExceeded   = driver.DeadlineExceeded
	Internal           = driver.Internal
)

// Sentinel errors, one per code, reachable with errors.Is from any *Error.
var (
	ErrUnknown            = errors.New("mailcase: unknown error")
	ErrNotFound           = errors.New("mailcase: not found")
	ErrAlreadyExists      = errors.New("mailcase: already exists")
	ErrInvalidArgument    = errors.New("mailcase: invalid argument")
	ErrFailedPrecondition = errors.New("mailcase: failed precondition")
	ErrPermissionDenied   = errors.New("mailcase: permission denied")
	ErrResourceExhausted  = errors.New("mailcase: resource exhausted")
	ErrUnavailable        = errors.New("mailcase: unavailable")
	ErrUnimplemented      = errors.New("mailcase: unimplemented")
	ErrInternal           = errors.New("mailcase: internal error")
	// ErrClosed is returned by a Store or Pipeline after Close.
	ErrClosed = errors.New("mailcase: closed")
	// ErrTooLarge is returned for a mail over the size limit.
	ErrTooLarge = errors.New("mailcase: mail too large")
	// ErrUnparseable is returned when nothing usable could be built from a mail.
	ErrUnparseable = errors.New("mailcase: mail cannot be parsed")
)

func sentinel(c ErrorCode) error {
	switch c {
	case NotFound:
		return ErrNotFound
	case AlreadyExists:
		return ErrAlreadyExists
	case InvalidArgument:
		return ErrInvalidArgument
	case FailedPrecondition:
		return ErrFailedPrecondition
	case PermissionDenied:
		return ErrPermissionDenied
	case ResourceExhausted:
		return ErrResourceExhausted
	case Unavailable:
		return ErrUnavailable
	case Unimplemented:
		return ErrUnimplemented
	case Internal:
		return ErrInternal
	case Canceled:
		return context.Canceled
	case DeadlineExceeded:
		return context.DeadlineExceeded
	}
	return ErrUnknown
}

// Error is returned by Store and Pipeline operations. errors.Is matches both
// the underlying error and the sentinel for its Code.
type Error struct {
	Code ErrorCode
	Op   string // "CreateCase", "AppendEmail", "parse", ...
	Err  error  // underlying error; may be nil
}

// NewError returns an *Error with the given code, operation and cause.
func NewError(code ErrorCode, op string, err error) *Error {
	return &Error{Code: code, Op: op, Err: err}
}

func (e *Error) Error() string {
	msg := "mailcase: " + e.Op + ": " + e.Code.String()
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the underlying error and the sentinel for the code.
func (e *Error) Unwrap() []error {
	s := sentinel(e.Code)
	if e.Err == nil {
		return []error{s}
	}
	return []error{e.Err, s}
}

// LogValue implements slog.LogValuer.
func (e *Error) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("code", e.Code.String()), slog.String("op", e.Op)}
	if e.Err != nil {
		attrs = append(attrs, slog.String("err", e.Err.Error()))
	}
	return slog.GroupValue(attrs...)
}

// Code returns the code of err: OK for nil, Canceled and DeadlineExceeded for
// context errors, the code of an *Error in the chain, else Unknown.
func Code(err error) ErrorCode {
	if err == nil {
		return OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	switch {
	case errors.Is(err, context.Canceled):
		return Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return DeadlineExceeded
	case errors.Is(err, ErrClosed):
		return FailedPrecondition
	}
	return Unknown
}

// IsRetryable reports whether err is transient: Unavailable,
// ResourceExhausted or DeadlineExceeded (a call timeout, not the caller's
// own cancelled context).
func IsRetryable(err error) bool {
	switch Code(err) {
	case Unavailable, ResourceExhausted, DeadlineExceeded:
		return true
	}
	return false
}
