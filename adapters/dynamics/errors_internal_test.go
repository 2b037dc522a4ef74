package dynamics

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/emailcrm/emailcrm/mailcase/driver"
)

func TestErrorCode(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want driver.ErrorCode
	}{
		{name: "nil", err: nil, want: driver.OK},
		{name: "foreign", err: errors.New("x"), want: driver.Unknown},
		{name: "canceled", err: fmt.Errorf("w: %w", context.Canceled), want: driver.Canceled},
		{name: "deadline", err: context.DeadlineExceeded, want: driver.DeadlineExceeded},
		{name: "not found", err: &APIError{Status: 404, Code: "0x80040217"}, want: driver.NotFound},
		{name: "bind target missing", err: &APIError{Status: 400, Code: "0x80040217"}, want: driver.NotFound},
		{name: "duplicate key", err: &APIError{Status: 412, Code: "0x80060892"}, want: driver.AlreadyExists},
		{name: "too long", err: &APIError{Status: 400, Code: "0x80044331", Message: "The length of the 'title' attribute"}, want: driver.InvalidArgument},
		{name: "required", err: &APIError{Status: 400, Code: "0x80040203"}, want: driver.InvalidArgument},
		{name: "throttled", err: &APIError{Status: 429, Code: "0x80072322"}, want: driver.ResourceExhausted},
		{name: "server", err: &APIError{Status: 503}, want: driver.Unavailable},
		{name: "forbidden", err: &APIError{Status: http.StatusForbidden}, want: driver.PermissionDenied},
		{name: "bad secret", err: &AuthError{Status: 401, ErrorCode: "invalid_client"}, want: driver.PermissionDenied},
		{name: "token endpoint down", err: &AuthError{Status: 503}, want: driver.Unavailable},
		{name: "local not found", err: errNotFound("case"), want: driver.NotFound},
		{name: "local invalid", err: errInvalid("x"), want: driver.InvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, errorCode(tc.err))
		})
	}
}

func TestQuote(t *testing.T) {
	assert.Equal(t, "'o''brien'", Quote("o'brien"))
	assert.Equal(t, "'a[_]b[%]c[[]d]'", QuoteLike("a_b%c[d]"))
	assert.Equal(t, "incidents?$filter=title%20eq%20%27a%2Bb%27%27%27", query("incidents", "$filter", "title eq "+Quote("a+b'")))
}
