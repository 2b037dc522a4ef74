package lmtpsource_test

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/lmtpsource"
	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/mailcase/mailcasetest"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
)

// errInjected is the internal error text that must never reach the MTA.
var errInjected = errors.New("injected: db host 10.0.0.7 refused the connection")

// Regression: a transient failure after the pipeline's attempts, or a
// permanent one the store cannot quarantine, is 451 (the MTA keeps the
// mail), never 554 (a bounce); no answer carries internal error text.
func TestAnswerCodes(t *testing.T) {
	tests := []struct {
		name       string
		code       driver.ErrorCode
		quarantine bool
		mailbox    mailcase.Mailbox
		body       string
		want       int
		enhanced   smtp.EnhancedCode
		kept       bool
	}{
		{name: "store outage, store with quarantine", code: driver.Unavailable, quarantine: true, want: 451, enhanced: smtp.EnhancedCode{4, 3, 0}},
		{name: "store outage, store without quarantine", code: driver.Unavailable, want: 451, enhanced: smtp.EnhancedCode{4, 3, 0}},
		{name: "permanent failure, store without quarantine", code: driver.PermissionDenied, want: 451, enhanced: smtp.EnhancedCode{4, 3, 0}},
		{name: "permanent failure, kept in quarantine", code: driver.PermissionDenied, quarantine: true, want: 554,
			enhanced: smtp.EnhancedCode{5, 6, 0}, kept: true},
		{name: "too big by policy", code: driver.PermissionDenied, want: 552, enhanced: smtp.EnhancedCode{5, 3, 4},
			mailbox: mailcase.Mailbox{MaxSize: 300, RejectOversized: true}, body: string(make([]byte, 400))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mem, err := memstore.OpenStore(nil)
			require.NoError(t, err)
			t.Cleanup(func() { mem.Close() })
			// CreateCase fails with code; the store has no quarantine
			// unless the case asks for one.
			fd := mailcasetest.NewFaultDriver(mem.Driver())
			fd.FailWith("CreateCase", &mailcasetest.FaultError{Code: tc.code, Method: "CreateCase", Err: errInjected}, 0)
			var d driver.CaseStore = fd
			if tc.quarantine {
				d = fd.With(mailcasetest.Quarantiner)
			}
			st := mailcase.NewStore(d, &mailcase.StoreOptions{MaxAttempts: -1})
			mb := tc.mailbox
			mb.Name = "support"
			p, err := mailcase.NewPipeline(st, &mailcase.Options{Mailbox: mb, MaxAttempts: 2, RetryDelay: time.Millisecond})
			require.NoError(t, err)
			t.Cleanup(func() { p.Close() })
			srv, err := lmtpsource.New(map[string]lmtpsource.Processor{"support@example.com": p}, nil)
			require.NoError(t, err)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			go func() { _ = srv.Serve(ln) }()
			t.Cleanup(func() { srv.Close() })

			c := client(t, ln.Addr().String())
			require.NoError(t, c.Mail("c@customer.example", nil))
			require.NoError(t, c.Rcpt("support@example.com", nil))
			w, err := c.Data()
			require.NoError(t, err)
			_, err = io.WriteString(w, msg("outage", "out@customer.example")+tc.body)
			require.NoError(t, err)
			_, err = w.CloseWithLMTPResponse()
			var lerr smtp.LMTPDataError
			require.ErrorAs(t, err, &lerr)
			se := lerr["support@example.com"]
			require.NotNil(t, se)
			assert.Equal(t, tc.want, se.Code, se.Message)
			assert.Equal(t, tc.enhanced, se.EnhancedCode)
			assert.NotContains(t, se.Message, "injected")
			assert.NotContains(t, se.Message, "10.0.0.7")
			assert.NotContains(t, se.Message, "mailcase")
			if tc.quarantine {
				q, err := st.ListQuarantine(t.Context(), "")
				require.NoError(t, err)
				if tc.kept {
					assert.Len(t, q, 1)
				} else {
					assert.Empty(t, q, "a transient failure is not quarantined")
				}
			}
		})
	}
}

// The 554 text does not repeat the pipeline's reason (here a panic).
func TestQuarantineAnswerIsGeneric(t *testing.T) {
	e := start(t, nil)
	c := client(t, e.addr)
	resp := deliverErr(t, c, msg("poison pill", "pg@customer.example"), "support@example.com")
	require.NotNil(t, resp)
	assert.Equal(t, 554, resp.Code)
	assert.NotContains(t, resp.Message, "panic")
	assert.NotContains(t, resp.Message, "poison")
}

func deliverErr(t *testing.T, c *smtp.Client, body, rcpt string) *smtp.SMTPError {
	t.Helper()
	require.NoError(t, c.Mail("c@customer.example", nil))
	require.NoError(t, c.Rcpt(rcpt, nil))
	w, err := c.Data()
	require.NoError(t, err)
	_, err = io.WriteString(w, body)
	require.NoError(t, err)
	_, err = w.CloseWithLMTPResponse()
	var lerr smtp.LMTPDataError
	if !errors.As(err, &lerr) {
		return nil
	}
	return lerr[rcpt]
}
