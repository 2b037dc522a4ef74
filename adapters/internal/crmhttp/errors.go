package crmhttp

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"

	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// LocalError is an error an adapter makes without asking its CRM (a
// missing record found by a query, an invalid argument, an answer that
// cannot be decoded), carrying the driver code it is classified as. Its
// text is Prefix + ": " + Msg; Msg never holds a secret or a token.
type LocalError struct {
	Prefix string
	Code   driver.ErrorCode
	Msg    string
}

func (e *LocalError) Error() string { return e.Prefix + ": " + e.Msg }

// ErrorCode classifies err for an adapter's CaseStore.ErrorCode: nil is
// OK; a cancelled or expired context is Canceled or DeadlineExceeded; a
// *LocalError has its Code; then api classifies the adapter's own errors
// (its API and token errors; ok false when err holds none); what is left
// is classified by TransportCode.
func ErrorCode(err error, api func(error) (code driver.ErrorCode, ok bool)) driver.ErrorCode {
	if err == nil {
		return driver.OK
	}
	if errors.Is(err, context.Canceled) {
		return driver.Canceled
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return driver.DeadlineExceeded
	}
	var le *LocalError
	if errors.As(err, &le) {
		return le.Code
	}
	if c, ok := api(err); ok {
		return c
	}
	return TransportCode(err)
}

// AuthCode classifies a failed token request: one that got no answer by
// its transport error, a 5xx or 429 answer as Unavailable (the identity
// provider may answer later), any other refusal as PermissionDenied.
func AuthCode(status int, transport error) driver.ErrorCode {
	switch {
	case transport != nil:
		return TransportCode(transport)
	case status >= 500 || status == http.StatusTooManyRequests:
		return driver.Unavailable
	}
	return driver.PermissionDenied
}

// TransportCode classifies an error of the HTTP transport: a network
// error, a failed request (*url.Error, what http.Client returns) or an
// answer cut short is Unavailable; anything else is Unknown.
func TransportCode(err error) driver.ErrorCode {
	var ne net.Error
	var ue *url.Error
	if errors.As(err, &ne) || errors.As(err, &ue) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return driver.Unavailable
	}
	return driver.Unknown
}
