package crmhttp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/emailcrm/emailcrm/mailcase/driver"
)

type apiErr struct{ code driver.ErrorCode }

func (e *apiErr) Error() string { return "api" }

func TestErrorCodeOrder(t *testing.T) {
	api := func(err error) (driver.ErrorCode, bool) {
		var ae *apiErr
		if errors.As(err, &ae) {
			return ae.code, true
		}
		return 0, false
	}
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	for _, tc := range []struct {
		name string
		err  error
		want driver.ErrorCode
	}{
		{"nil", nil, driver.OK},
		{"canceled wins over the api error", fmt.Errorf("x: %w", errors.Join(context.Canceled, &apiErr{driver.NotFound})), driver.Canceled},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), driver.DeadlineExceeded},
		{"local", fmt.Errorf("x: %w", &LocalError{Prefix: "crm", Code: driver.AlreadyExists, Msg: "exists"}), driver.AlreadyExists},
		{"api", fmt.Errorf("x: %w", &apiErr{driver.ResourceExhausted}), driver.ResourceExhausted},
		{"dial", dial, driver.Unavailable},
		{"client error", &url.Error{Op: "Post", URL: "https://h/x", Err: errors.New("tls: bad certificate")}, driver.Unavailable},
		{"answer cut short", fmt.Errorf("reading: %w", io.ErrUnexpectedEOF), driver.Unavailable},
		{"other", errors.New("boom"), driver.Unknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, ErrorCode(tc.err, api))
		})
	}
}

func TestLocalErrorText(t *testing.T) {
	assert.Equal(t, "salesforce: case not found", (&LocalError{Prefix: "salesforce", Code: driver.NotFound, Msg: "case not found"}).Error())
}

func TestAuthCode(t *testing.T) {
	assert.Equal(t, driver.Unavailable, AuthCode(0, &net.OpError{Op: "dial", Err: errors.New("refused")}))
	assert.Equal(t, driver.Unknown, AuthCode(0, errors.New("token: decoding the answer")))
	assert.Equal(t, driver.Unavailable, AuthCode(503, nil))
	assert.Equal(t, driver.Unavailable, AuthCode(429, nil))
	assert.Equal(t, driver.PermissionDenied, AuthCode(401, nil))
	assert.Equal(t, driver.PermissionDenied, AuthCode(400, nil))
}
