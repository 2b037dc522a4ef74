package smtpsender

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-smtp"
)

// ErrClosed is returned by Send after Close.
var ErrClosed = errors.New("smtpsender: sender closed")

// A SendError reports a failed or partial delivery. Every error Send
// returns, except ErrClosed, is a *SendError.
//
// Permanent reports whether sending the same message again, unchanged,
// with the same configuration, is expected to fail again: 5xx replies and
// the configuration errors found before anything is sent (a refused login,
// a server without STARTTLS or without SMTPUTF8 for a non-ASCII address,
// a message over the server's SIZE, an untrusted certificate). 4xx
// replies, network failures (connection refused or dropped, also in the
// middle of DATA), timeouts and cancellation are temporary.
//
// When Delivered is true the server accepted the message for the
// recipients not listed in Rejected: the caller records a partial delivery
// and must not send to the accepted recipients again. Permanent is then
// true unless a recipient was refused with a 4xx reply; a retry, if any,
// goes to the Rejected recipients only.
//
// A connection dropped after the end of DATA but before the server's reply
// is temporary with Delivered false, although the server may have queued
// the message: SMTP cannot tell, and a retry may deliver it twice.
type SendError struct {
	// Server is the host:port of the server.
	Server string
	// Command is the stage that failed: "connect", "STARTTLS", "AUTH",
	// "MAIL", "RCPT", "DATA", or "" before a connection was used.
	Command string
	// Code is the SMTP reply code (550, 451...), 0 when there was none.
	Code int
	// Enhanced is the enhanced status code ("5.1.1"), "" when the server
	// gave none.
	Enhanced string
	// Msg is the server's reply text, trimmed to 200 bytes, or a
	// description of the failure when there was no reply.
	Msg string
	// Temporary is true when a later retry may succeed; Permanent returns
	// its negation.
	Temporary bool
	// Delivered is true when the message was accepted for some recipients
	// and Rejected lists the others.
	Delivered bool
	// Rejected lists the recipients the server refused at RCPT.
	Rejected []string
	// Err is the underlying error: the network error, ctx.Err() on
	// cancellation, or the *smtp.SMTPError of the reply.
	Err error
}

// Error returns "smtpsender: <server>: <command>: <code> <enhanced> <text>".
func (e *SendError) Error() string {
	var b strings.Builder
	b.WriteString("smtpsender: ")
	b.WriteString(e.Server)
	if e.Command != "" {
		b.WriteString(": ")
		b.WriteString(e.Command)
	}
	switch {
	case e.Delivered:
		fmt.Fprintf(&b, ": delivered, but %d recipient(s) refused", len(e.Rejected))
	case len(e.Rejected) > 0:
		fmt.Fprintf(&b, ": all %d recipient(s) refused", len(e.Rejected))
	}
	if e.Code != 0 {
		fmt.Fprintf(&b, ": %d", e.Code)
		if e.Enhanced != "" {
			b.WriteString(" " + e.Enhanced)
		}
		if e.Msg != "" {
			b.WriteString(" " + e.Msg)
		}
	} else if e.Msg != "" {
		b.WriteString(": " + e.Msg)
	}
	return b.String()
}

// Permanent reports whether retrying the same message is pointless (see
// SendError).
func (e *SendError) Permanent() bool { return !e.Temporary }

// Unwrap returns Err.
func (e *SendError) Unwrap() error { return e.Err }

// IsPermanent reports whether err, or an error it wraps, has a
// Permanent() bool method returning true.
func IsPermanent(err error) bool {
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}

const maxMsg = 200

// trimMsg flattens a multi-line reply and trims it to maxMsg bytes on a
// UTF-8 boundary.
func trimMsg(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= maxMsg {
		return s
	}
	s = s[:maxMsg]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "..."
}

// newError classifies err, returned at stage cmd. ctx is the context of
// the exchange: when it is done, the error wraps ctx.Err().
func (c *config) newError(ctx context.Context, cmd string, err error) *SendError {
	e := &SendError{Server: c.addr, Command: cmd, Err: err, Temporary: true}
	if ctx != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// The connection deadline is the context's: wait the few
			// microseconds before the context notices.
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
		if ctx.Err() != nil {
			e.Err = ctx.Err()
			if errors.Is(e.Err, context.DeadlineExceeded) {
				e.Msg = "timed out"
			} else {
				e.Msg = "canceled"
			}
			return e
		}
	}
	var se *smtp.SMTPError
	var cve *tls.CertificateVerificationError
	switch {
	case errors.As(err, &se):
		e.Code = se.Code
		if ec := se.EnhancedCode; ec != (smtp.EnhancedCode{}) && ec != smtp.NoEnhancedCode {
			e.Enhanced = fmt.Sprintf("%d.%d.%d", ec[0], ec[1], ec[2])
		}
		e.Msg = trimMsg(se.Message)
		e.Temporary = se.Code/100 != 5
	case errors.As(err, &cve):
		e.Msg = trimMsg("TLS certificate: " + cve.Error())
		e.Temporary = false
	default:
		e.Msg = trimMsg(err.Error())
	}
	return e
}

// permanent is a configuration error found before anything was sent.
func (c *config) permanent(cmd, msg string) *SendError {
	return &SendError{Server: c.addr, Command: cmd, Msg: msg, Err: errors.New(msg)}
}
