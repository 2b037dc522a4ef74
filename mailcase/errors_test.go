package mailcase_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
)

func TestError_SentinelPerCode(t *testing.T) {
	tests := []struct {
		name     string
		code     mailcase.ErrorCode
		sentinel error
	}{
		{name: "unknown", code: mailcase.Unknown, sentinel: mailcase.ErrUnknown},
		{name: "not found", code: mailcase.NotFound, sentinel: mailcase.ErrNotFound},
		{name: "already exists", code: mailcase.AlreadyExists, sentinel: mailcase.ErrAlreadyExists},
		{name: "invalid argument", code: mailcase.InvalidArgument, sentinel: mailcase.ErrInvalidArgument},
		{name: "failed precondition", code: mailcase.FailedPrecondition, sentinel: mailcase.ErrFailedPrecondition},
		{name: "permission denied", code: mailcase.PermissionDenied, sentinel: mailcase.ErrPermissionDenied},
		{name: "resource exhausted", code: mailcase.ResourceExhausted, sentinel: mailcase.ErrResourceExhausted},
		{name: "unavailable", code: mailcase.Unavailable, sentinel: mailcase.ErrUnavailable},
		{name: "unimplemented", code: mailcase.Unimplemented, sentinel: mailcase.ErrUnimplemented},
		{name: "internal", code: mailcase.Internal, sentinel: mailcase.ErrInternal},
		{name: "canceled", code: mailcase.Canceled, sentinel: context.Canceled},
		{name: "deadline", code: mailcase.DeadlineExceeded, sentinel: context.DeadlineExceeded},
		{name: "out of range", code: mailcase.ErrorCode(99), sentinel: mailcase.ErrUnknown},
	}
	cause := errors.New("cause")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := mailcase.NewError(tc.code, "Op", cause)
			assert.ErrorIs(t, err, tc.sentinel)
			assert.ErrorIs(t, err, cause)
			assert.Equal(t, tc.code, mailcase.Code(err))
			assert.Equal(t, tc.code, mailcase.Code(fmt.Errorf("outer: %w", err)), "the code survives further wrapping")
			bare := mailcase.NewError(tc.code, "Op", nil)
			assert.ErrorIs(t, bare, tc.sentinel)
		})
	}
}

func TestError_Error(t *testing.T) {
	assert.Equal(t, "mailcase: CreateCase: NotFound: no such case",
		mailcase.NewError(mailcase.NotFound, "CreateCase", errors.New("no such case")).Error())
	assert.Equal(t, "mailcase: ListCases: Unimplemented", mailcase.NewError(mailcase.Unimplemented, "ListCases", nil).Error())
	assert.Equal(t, "ErrorCode(42)", mailcase.ErrorCode(42).String())
	assert.Equal(t, "ErrorCode(-1)", mailcase.ErrorCode(-1).String())
	assert.Equal(t, "DeadlineExceeded", mailcase.DeadlineExceeded.String())
}

func TestCode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want mailcase.ErrorCode
	}{
		{name: "nil", err: nil, want: mailcase.OK},
		{name: "plain", err: errors.New("x"), want: mailcase.Unknown},
		{name: "canceled", err: context.Canceled, want: mailcase.Canceled},
		{name: "wrapped deadline", err: fmt.Errorf("call: %w", context.DeadlineExceeded), want: mailcase.DeadlineExceeded},
		{name: "closed", err: mailcase.ErrClosed, want: mailcase.FailedPrecondition},
		{name: "store error", err: mailcase.NewError(mailcase.PermissionDenied, "x", nil), want: mailcase.PermissionDenied},
		{name: "sentinel alone", err: mailcase.ErrNotFound, want: mailcase.Unknown},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, mailcase.Code(tc.err))
		})
	}
}

func TestIsRetryable(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{name: "nil", err: nil, want: false},
		{name: "unavailable", err: mailcase.NewError(mailcase.Unavailable, "x", nil), want: true},
		{name: "exhausted", err: mailcase.NewError(mailcase.ResourceExhausted, "x", nil), want: true},
		{name: "call timeout", err: mailcase.NewError(mailcase.DeadlineExceeded, "x", nil), want: true},
		{name: "not found", err: mailcase.NewError(mailcase.NotFound, "x", nil), want: false},
		{name: "canceled", err: context.Canceled, want: false},
		{name: "plain", err: errors.New("x"), want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, mailcase.IsRetryable(tc.err))
		})
	}
}

func TestError_LogValue(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("failed", "err", mailcase.NewError(mailcase.Unavailable, "AppendEmail", errors.New("connection reset")))
	log.Info("failed", "err", mailcase.NewError(mailcase.NotFound, "GetCase", nil))
	dec := json.NewDecoder(&buf)
	var rec struct {
		Err map[string]string `json:"err"`
	}
	require.NoError(t, dec.Decode(&rec))
	assert.Equal(t, map[string]string{"code": "Unavailable", "op": "AppendEmail", "err": "connection reset"}, rec.Err)
	rec.Err = nil
	require.NoError(t, dec.Decode(&rec))
	assert.Equal(t, map[string]string{"code": "NotFound", "op": "GetCase"}, rec.Err)
}
