package cli

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/mailcase/mailcasetest"
)

// errPipeInjected is internal error text that must not reach the MTA.
var errPipeInjected = errors.New("injected: db host 10.0.0.7 refused the connection")

// Regression: pipe exits 75 (the MTA keeps the mail) for a transient
// failure after the pipeline's attempts and for a permanent failure the
// store cannot quarantine; 65 only when the mail is kept in the quarantine
// or refused by policy. The message never carries internal error text.
func TestPipeResult(t *testing.T) {
	tests := []struct {
		name       string
		code       driver.ErrorCode
		quarantine bool
		mailbox    mailcase.Mailbox
		body       string
		want       int
		wantMsg    string
	}{
		{name: "store outage, store with quarantine", code: driver.Unavailable, quarantine: true, want: exTempFail, wantMsg: "temporary failure"},
		{name: "store outage, store without quarantine", code: driver.Unavailable, want: exTempFail, wantMsg: "temporary failure"},
		{name: "permanent failure, no quarantine", code: driver.PermissionDenied, want: exTempFail, wantMsg: "temporary failure"},
		{name: "permanent failure, quarantined", code: driver.PermissionDenied, quarantine: true, want: exDataErr, wantMsg: "quarantined"},
		{name: "refused by size policy", code: driver.PermissionDenied, want: exDataErr, wantMsg: "refused",
			mailbox: mailcase.Mailbox{MaxSize: 200, RejectOversized: true}, body: strings.Repeat("x", 300)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			mem, err := openStore(ctx, "mem://")
			require.NoError(t, err)
			t.Cleanup(func() { mem.Close() })
			// CreateCase fails with code; the store has no quarantine
			// unless the case asks for one.
			fd := mailcasetest.NewFaultDriver(mem.Driver())
			fd.FailWith("CreateCase", &mailcasetest.FaultError{Code: tc.code, Method: "CreateCase", Err: errPipeInjected}, 0)
			var d driver.CaseStore = fd
			if tc.quarantine {
				d = fd.With(mailcasetest.Quarantiner)
			}
			st := mailcase.NewStore(d, &mailcase.StoreOptions{MaxAttempts: -1})
			mb := tc.mailbox
			mb.Name = "support"
			p, err := mailcase.NewPipeline(st, &mailcase.Options{Mailbox: mb, MaxAttempts: 2, RetryDelay: time.Millisecond,
				Logger: slog.New(slog.DiscardHandler)})
			require.NoError(t, err)
			t.Cleanup(func() { p.Close() })
			raw := "From: Ann <ann@customer.example>\r\nTo: support@example.com\r\nSubject: x\r\nMessage-ID: <pr@customer.example>\r\n\r\nHelp " + tc.body + "\r\n"
			res, perr := p.Process(ctx, []byte(raw), &mailcase.ProcessOptions{Attempt: 1})
			require.NotNil(t, res)
			var logs bytes.Buffer
			err = pipeResult(ctx, slog.New(slog.NewTextHandler(&logs, nil)), res, perr)
			require.Error(t, err)
			assert.Equal(t, tc.want, exitCode(err), err.Error())
			assert.Contains(t, err.Error(), tc.wantMsg)
			assert.NotContains(t, err.Error(), "injected")
			assert.NotContains(t, err.Error(), "10.0.0.7")
			if tc.want == exTempFail {
				assert.Contains(t, logs.String(), "injected", "the details go to the log")
			}
			q, err := mem.ListQuarantine(ctx, "")
			require.NoError(t, err)
			if tc.want == exDataErr && tc.quarantine {
				assert.Len(t, q, 1)
			} else {
				assert.Empty(t, q)
			}
		})
	}
}
