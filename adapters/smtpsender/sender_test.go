package smtpsender_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/emailcrm/emailcrm/adapters/smtpsender"
	"github.com/emailcrm/emailcrm/adapters/smtpsender/smtptest"
)

const msg = "From: desk@example.com\r\nTo: alice@example.org\r\nSubject: Case 42\r\n\r\nCaf\xc3\xa9 is open.\r\n"

// newSender returns a Sender for srv, closed when the test ends.
func newSender(t *testing.T, srv *smtptest.Server, sec smtpsender.Security, login smtpsender.Login, opts *smtpsender.Options) *smtpsender.Sender {
	t.Helper()
	var o smtpsender.Options
	if opts != nil {
		o = *opts
	}
	o.Security = sec
	o.TLSConfig = srv.Cert
	s, err := smtpsender.New(srv.Addr, login, &o)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func sendErr(t *testing.T, err error) *smtpsender.SendError {
	t.Helper()
	var se *smtpsender.SendError
	require.ErrorAs(t, err, &se)
	assert.True(t, strings.HasPrefix(se.Error(), "smtpsender: "), se.Error())
	return se
}

func TestSendInsecure(t *testing.T) {
	srv := smtptest.Start(t, &smtptest.Options{Security: "insecure"})
	s := newSender(t, srv, smtpsender.Insecure, smtpsender.Login{}, nil)
	require.NoError(t, s.Send(t.Context(), "desk@example.com", []string{"alice@example.org", "bob@example.org"}, []byte(msg)))
	got := srv.Messages()
	require.Len(t, got, 1)
	assert.Equal(t, "desk@example.com", got[0].From)
	assert.Equal(t, []string{"alice@example.org", "bob@example.org"}, got[0].To)
	assert.Equal(t, msg, string(got[0].Data))
	assert.Equal(t, "8BITMIME", got[0].Body, "8BITMIME is used when offered")
	assert.Equal(t, int64(len(msg)), got[0].Size)
	assert.False(t, got[0].TLS)
	assert.False(t, got[0].UTF8)
}

func TestSendBareLFAndDots(t *testing.T) {
	srv := smtptest.Start(t, &smtptest.Options{Security: "insecure"})
	s := newSender(t, srv, smtpsender.Insecure, smtpsender.Login{}, nil)
	raw := "Subject: x\n\n.leading dot\nlast"
	require.NoError(t, s.Send(t.Context(), "a@example.com", []string{"b@example.com"}, []byte(raw)))
	got := srv.Messages()
	require.Len(t, got, 1)
	assert.Equal(t, "Subject: x\r\n\r\n.leading dot\r\nlast\r\n", string(got[0].Data))
}

func TestSendImplicitTLS(t *testing.T) {
	srv := smtptest.Start(t, nil)
	s := newSender(t, srv, "", smtpsender.Login{}, nil) // "" means TLS
	require.NoError(t, s.Send(t.Context(), "desk@example.com", []string{"alice@example.org"}, []byte(msg)))
	got := srv.Messages()
	require.Len(t, got, 1)
	assert.True(t, got[0].TLS)
}

func TestSendUntrustedCertificate(t *testing.T) {
	srv := smtptest.Start(t, nil)
	s, err := smtpsender.New(srv.Addr, smtpsender.Login{}, nil) // system roots
	require.NoError(t, err)
	defer s.Close()
	err = s.Send(t.Context(), "desk@example.com", []string{"alice@example.org"}, []byte(msg))
	se := sendErr(t, err)
	assert.True(t, se.Permanent(), "an untrusted certificate is a configuration error: %v", err)
	assert.Equal(t, "connect", se.Command)
	assert.Empty(t, srv.Messages())
}

func TestSendStartTLS(t *testing.T) {
	srv := smtptest.Start(t, &smtptest.Options{Security: "starttls", Username: "desk", Password: "s3cret-pw"})
	s := newSender(t, srv, smtpsender.StartTLS, smtpsender.Login{Username: "desk", Password: "s3cret-pw"}, nil)
	require.NoError(t, s.Send(t.Context(), "desk@example.com", []string{"alice@example.org"}, []byte(msg)))
	got := srv.Messages()
	require.Len(t, got, 1)
	assert.True(t, got[0].TLS)
	assert.Equal(t, "desk", got[0].User)
	assert.Equal(t, "PLAIN", got[0].Mechanism)
}

// TestStartTLSNotOffered also pins go-smtp's error text that the sender
// recognises (see the QUIRK in dial).
func TestStartTLSNotOffered(t *testing.T) {
	srv := smtptest.Start(t, &smtptest.Options{Security: "insecure", Username: "desk", Password: "s3cret-pw"})
	s := newSender(t, srv, smtpsender.StartTLS, smtpsender.Login{Username: "desk", Password: "s3cret-pw"}, nil)
	err := s.Send(t.Context(), "desk@example.com", []string{"alice@example.org"}, []byte(msg))
	se := sendErr(t, err)
	assert.Equal(t, "STARTTLS", se.Command)
	assert.True(t, se.Permanent())
	assert.Contains(t, se.Error(), "does not offer STARTTLS")
	assert.Zero(t, srv.AuthAttempts(), "no AUTH in clear text")
	assert.Empty(t, srv.Messages())
}

func TestAuth(t *testing.T) {
	tests := []struct {
		name     string
		srv      smtptest.Options
		login    smtpsender.Login
		wantMech string
	}{
		{
			name:     "plain",
			srv:      smtptest.Options{Username: "desk", Password: "s3cret-pw"},
			login:    smtpsender.Login{Username: "desk", Password: "s3cret-pw"},
			wantMech: "PLAIN",
		},
		{
			name:     "login only",
			srv:      smtptest.Options{Username: "desk", Password: "s3cret-pw", Mechanisms: []string{"LOGIN"}},
			login:    smtpsender.Login{Username: "desk", Password: "s3cret-pw"},
			wantMech: "LOGIN",
		},
		{
			name:     "xoauth2",
			srv:      smtptest.Options{Username: "desk@example.com", Token: "ya29.token"},
			login:    smtpsender.Login{Username: "desk@example.com", TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "ya29.token"})},
			wantMech: "XOAUTH2",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := smtptest.Start(t, &tc.srv)
			s := newSender(t, srv, smtpsender.TLS, tc.login, nil)
			require.NoError(t, s.Send(t.Context(), "desk@example.com", []string{"alice@example.org"}, []byte(msg)))
			got := srv.Messages()
			require.Len(t, got, 1)
			assert.Equal(t, tc.login.Username, got[0].User)
			assert.Equal(t, tc.wantMech, got[0].Mechanism)
		})
	}
}

func TestAuthRefused(t *testing.T) {
	tests := []struct {
		name   string
		srv    smtptest.Options
		login  smtpsender.Login
		secret string
	}{
		{
			name:   "wrong password",
			srv:    smtptest.Options{Username: "desk", Password: "right-password"},
			login:  smtpsender.Login{Username: "desk", Password: "wrong-password"},
			secret: "wrong-password",
		},
		{
			name:   "wrong password, login",
			srv:    smtptest.Options{Username: "desk", Password: "right-password", Mechanisms: []string{"LOGIN"}},
			login:  smtpsender.Login{Username: "desk", Password: "wrong-password"},
			secret: "wrong-password",
		},
		{
			name:   "wrong token",
			srv:    smtptest.Options{Username: "desk", Token: "good-token"},
			login:  smtpsender.Login{Username: "desk", TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "bad-token-xyz"})},
			secret: "bad-token-xyz",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := smtptest.Start(t, &tc.srv)
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			s := newSender(t, srv, smtpsender.TLS, tc.login, &smtpsender.Options{Logger: log})
			err := s.Send(t.Context(), "desk@example.com", []string{"alice@example.org"}, []byte(msg))
			se := sendErr(t, err)
			assert.True(t, se.Permanent())
			assert.True(t, smtpsender.IsPermanent(err))
			assert.Equal(t, 535, se.Code)
			assert.Contains(t, se.Error(), srv.Addr)
			assert.NotContains(t, se.Error(), tc.secret)
			for e := error(se); e != nil; e = errors.Unwrap(e) {
				assert.NotContains(t, e.Error(), tc.secret)
			}
			assert.NotContains(t, logs.String(), tc.secret)
			assert.Empty(t, srv.Messages())
		})
	}
}

func TestConnectionReuse(t *testing.T) {
	srv := smtptest.Start(t, &smtptest.Options{Username: "desk", Password: "s3cret-pw"})
	s := newSender(t, srv, smtpsender.TLS, smtpsender.Login{Username: "desk", Password: "s3cret-pw"}, nil)
	for range 50 {
		require.NoError(t, s.Send(t.Context(), "desk@example.com", []string{"alice@example.org"}, []byte(msg)))
	}
	assert.Len(t, srv.Messages(), 50)
	assert.Equal(t, 1, srv.Connections())
	assert.Equal(t, 1, srv.AuthAttempts())
}

func TestMaxPerConnection(t *testing.T) {
	srv := smtptest.Start(t, nil)
	s := newSender(t, srv, smtpsender.TLS, smtpsender.Login{}, &smtpsender.Options{MaxPerConnection: 10})
	for range 50 {
		require.NoError(t, s.Send(t.Context(), "desk@example.com", []string{"alice@example.org"}, []byte(msg)))
	}
	assert.Len(t, srv.Messages(), 50)
	assert.Equal(t, 5, srv.Connections())
}

func TestConcurrentSends(t *testing.T) {
	srv := smtptest.Start(t, nil)
	s := newSender(t, srv, smtpsender.TLS, smtpsender.Login{}, nil)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 10 {
				assert.NoError(t, s.Send(t.Context(), "desk@example.com", []string{"alice@example.org"}, []byte(msg)))
			}
		})
	}
	wg.Wait()
	assert.Len(t, srv.Messages(), 80)
	assert.Equal(t, 1, srv.Connections())
}

func TestIdleTimeout(t *testing.T) {
	srv := smtptest.Start(t, nil)
	s := newSender(t, srv, smtpsender.TLS, smtpsender.Login{}, &smtpsender.Options{IdleTimeout: 50 * time.Millisecond})
	require.NoError(t, s.Send(t.Context(), "desk@example.com", []string{"alice@example.org"}, []byte(msg)))
	time.Sleep(150 * time.Millisecond)
	require.NoError(t, s.Send(t.Context(), "desk@example.com", []string{"alice@example.org"}, []byte(msg)))
	assert.Equal(t, 2, srv.Connections())
}

func TestBrokenReusedConnectionRedialled(t *testing.T) {
	tests := []struct {
		name    string
		breakIt func(srv *smtptest.Server)
	}{
		{name: "dropped", breakIt: func(srv *smtptest.Server) { srv.DropConnections() }},
		{name: "421 at MAIL", breakIt: func(srv *smtptest.Server) {
			srv.FailNext(smtptest.Failure{Stage: "MAIL", Code: 421, Msg: "closing"})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := smtptest.Start(t, nil)
			s := newSender(t, srv, smtpsender.TLS, smtpsender.Login{}, nil)
			require.NoError(t, s.Send(t.Context(), "desk@example.com", []string{"alice@example.org"}, []byte(msg)))
			tc.breakIt(srv)
			time.Sleep(10 * time.Millisecond)
			require.NoError(t, s.Send(t.Context(), "desk@example.com", []string{"alice@example.org"}, []byte(msg)))
			assert.Len(t, srv.Messages(), 2)
			assert.Equal(t, 2, srv.Connections())
		})
	}
}

func TestReplies(t *testing.T) {
	tests := []struct {
		name          string
		fail          smtptest.Failure
		wantCommand   string
		wantCode      int
		wantPermanent bool
	}{
		{name: "451 at MAIL", fail: smtptest.Failure{Stage: "MAIL", Code: 451, Msg: "try later"}, wantCommand: "MAIL", wantCode: 451},
		{name: "550 at MAIL", fail: smtptest.Failure{Stage: "MAIL", Code: 550, Msg: "sender refused"}, wantCommand: "MAIL", wantCode: 550, wantPermanent: true},
		{name: "452 at RCPT", fail: smtptest.Failure{Stage: "RCPT", Code: 452, Msg: "mailbox full"}, wantCommand: "RCPT", wantCode: 452},
		{name: "550 at RCPT", fail: smtptest.Failure{Stage: "RCPT", Code: 550, Msg: "no such user"}, wantCommand: "RCPT", wantCode: 550, wantPermanent: true},
		{name: "451 at DATA", fail: smtptest.Failure{Stage: "DATA", Code: 451, Msg: "queue full"}, wantCommand: "DATA", wantCode: 451},
		{name: "554 at DATA", fail: smtptest.Failure{Stage: "DATA", Code: 554, Msg: "spam"}, wantCommand: "DATA", wantCode: 554, wantPermanent: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := smtptest.Start(t, nil)
			s := newSender(t, srv, smtpsender.TLS, smtpsender.Login{}, nil)
			srv.FailNext(tc.fail)
			err := s.Send(t.Context(), "desk@example.com", []string{"alice@example.org"}, []byte(msg))
			se := sendErr(t, err)
			assert.Equal(t, tc.wantCommand, se.Command)
			assert.Equal(t, tc.wantCode, se.Code)
			assert.Equal(t, tc.wantPermanent, se.Permanent())
			assert.Equal(t, tc.wantPermanent, smtpsender.IsPermanent(err))
			assert.False(t, se.Delivered)
			assert.Contains(t, se.Error(), tc.fail.Msg)
			assert.Contains(t, se.Error(), srv.Addr)
			assert.Empty(t, srv.Messages())
			// The next message goes through.
			require.NoError(t, s.Send(t.Context(), "desk@example.com", []string{"alice@example.org"}, []byte(msg)))
			assert.Len(t, srv.Messages(), 1)
		})
	}
}

func TestReplyTextTrimmed(t *testing.T) {
	srv := smtptest.Start(t, nil)
	s := newSender(t, srv, smtpsender.TLS, smtpsender.Login{}, nil)
	srv.FailNext(smtptest.Failure{Stage: "DATA", Code: 554, Msg: strings.Repeat("x", 400)})
	se := sendErr(t, s.Send(t.Context(), "desk@example.com", []string{"alice@example.org"}, []byte(msg)))
	assert.LessOrEqual(t, len(se.Msg), 203)
	assert.Equal(t, "5.0.0", se.Enhanced)
}

func TestPartialRecipients(t *testing.T) {
	to := []string{"alice@example.org", "bob@example.org", "carol@example.org"}
	tests := []struct {
		name          string
		fails         []smtptest.Failure
		wantDelivered bool
		wantRejected  []string
		wantPermanent bool
	}{
		{
			name:          "one refused 5xx",
			fails:         []smtptest.Failure{{Stage: "RCPT", Rcpt: "bob@example.org", Code: 550, Msg: "no such user"}},
			wantDelivered: true,
			wantRejected:  []string{"bob@example.org"},
			wantPermanent: true,
		},
		{
			name: "one refused 4xx",
			fails: []smtptest.Failure{
				{Stage: "RCPT", Rcpt: "bob@example.org", Code: 550},
				{Stage: "RCPT", Rcpt: "carol@example.org", Code: 452},
			},
			wantDelivered: true,
			wantRejected:  []string{"bob@example.org", "carol@example.org"},
		},
		{
			name:          "all refused 5xx",
			fails:         []smtptest.Failure{{Stage: "RCPT", Code: 550, Count: 3}},
			wantRejected:  to,
			wantPermanent: true,
		},
		{
			name: "all refused, one 4xx",
			fails: []smtptest.Failure{
				{Stage: "RCPT", Rcpt: "alice@example.org", Code: 451},
				{Stage: "RCPT", Code: 550, Count: 2},
			},
			wantRejected: to,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := smtptest.Start(t, nil)
			s := newSender(t, srv, smtpsender.TLS, smtpsender.Login{}, nil)
			for _, f := range tc.fails {
				srv.FailNext(f)
			}
			err := s.Send(t.Context(), "desk@example.com", to, []byte(msg))
			se := sendErr(t, err)
			assert.Equal(t, "RCPT", se.Command)
			assert.Equal(t, tc.wantDelivered, se.Delivered)
			assert.Equal(t, tc.wantRejected, se.Rejected)
			assert.Equal(t, tc.wantPermanent, se.Permanent())
			got := srv.Messages()
			if !tc.wantDelivered {
				assert.Empty(t, got)
				return
			}
			require.Len(t, got, 1)
			var want []string
			for _, r := range to {
				if !strings.Contains(strings.Join(tc.wantRejected, " "), r) {
					want = append(want, r)
				}
			}
			assert.Equal(t, want, got[0].To)
		})
	}
}

func TestDropMidData(t *testing.T) {
	srv := smtptest.Start(t, nil)
	s := newSender(t, srv, smtpsender.TLS, smtpsender.Login{}, nil)
	srv.DropNextData()
	big := msg + strings.Repeat("line of body text\r\n", 10000)
	err := s.Send(t.Context(), "desk@example.com", []string{"alice@example.org"}, []byte(big))
	se := sendErr(t, err)
	assert.False(t, se.Permanent(), "%v", err)
	assert.Equal(t, "DATA", se.Command)
	assert.Empty(t, srv.Messages())
	require.NoError(t, s.Send(t.Context(), "desk@example.com", []string{"alice@example.org"}, []byte(big)))
	assert.Len(t, srv.Messages(), 1)
}

func TestServerDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	s, err := smtpsender.New(addr, smtpsender.Login{}, nil)
	require.NoError(t, err)
	defer s.Close()
	err = s.Send(t.Context(), "desk@example.com", []string{"alice@example.org"}, []byte(msg))
	se := sendErr(t, err)
	assert.False(t, se.Permanent())
	assert.Equal(t, "connect", se.Command)
	assert.Contains(t, se.Error(), addr)
}

func TestContextCancel(t *testing.T) {
	srv := smtptest.Start(t, nil)
	s := newSender(t, srv, smtpsender.TLS, smtpsender.Login{}, nil)
	require.NoError(t, s.Send(t.Context(), "desk@example.com", []string{"alice@example.org"}, []byte(msg)))
	srv.FailNext(smtptest.Failure{Stage: "DATA", Delay: 10 * time.Second})

	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	err := s.Send(ctx, "desk@example.com", []string{"alice@example.org"}, []byte(msg))
	assert.Less(t, time.Since(start), 2*time.Second)
	require.ErrorIs(t, err, context.Canceled)
	se := sendErr(t, err)
	assert.False(t, se.Permanent())
	assert.Equal(t, "DATA", se.Command)

	// The Sender recovers with a new connection.
	require.NoError(t, s.Send(t.Context(), "desk@example.com", []string{"alice@example.org"}, []byte(msg)))
	assert.Equal(t, 2, srv.Connections())
}

func TestSendTimeout(t *testing.T) {
	srv := smtptest.Start(t, nil)
	s := newSender(t, srv, smtpsender.TLS, smtpsender.Login{}, &smtpsender.Options{SendTimeout: 100 * time.Millisecond})
	srv.FailNext(smtptest.Failure{Stage: "RCPT", Delay: 10 * time.Second})
	start := time.Now()
	err := s.Send(t.Context(), "desk@example.com", []string{"alice@example.org"}, []byte(msg))
	assert.Less(t, time.Since(start), 2*time.Second)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.False(t, smtpsender.IsPermanent(err))
}

func TestSMTPUTF8(t *testing.T) {
	to := []string{"jörg@bücher.example"}
	t.Run("offered", func(t *testing.T) {
		srv := smtptest.Start(t, &smtptest.Options{SMTPUTF8: true})
		s := newSender(t, srv, smtpsender.TLS, smtpsender.Login{}, nil)
		require.NoError(t, s.Send(t.Context(), "desk@example.com", to, []byte(msg)))
		got := srv.Messages()
		require.Len(t, got, 1)
		assert.True(t, got[0].UTF8)
		assert.Equal(t, to, got[0].To)
		// ASCII addresses do not ask for SMTPUTF8.
		require.NoError(t, s.Send(t.Context(), "desk@example.com", []string{"alice@example.org"}, []byte(msg)))
		assert.False(t, srv.Messages()[1].UTF8)
	})
	t.Run("not offered", func(t *testing.T) {
		srv := smtptest.Start(t, nil)
		s := newSender(t, srv, smtpsender.TLS, smtpsender.Login{}, nil)
		err := s.Send(t.Context(), "desk@example.com", to, []byte(msg))
		se := sendErr(t, err)
		assert.True(t, se.Permanent())
		assert.Contains(t, se.Error(), "SMTPUTF8")
		assert.Empty(t, srv.Messages())
		// The connection is still usable.
		require.NoError(t, s.Send(t.Context(), "desk@example.com", []string{"alice@example.org"}, []byte(msg)))
		assert.Equal(t, 1, srv.Connections())
	})
}

func TestMessageTooLarge(t *testing.T) {
	srv := smtptest.Start(t, &smtptest.Options{MaxMessageBytes: 100})
	s := newSender(t, srv, smtpsender.TLS, smtpsender.Login{}, nil)
	err := s.Send(t.Context(), "desk@example.com", []string{"alice@example.org"}, []byte(msg+strings.Repeat("x", 200)))
	assert.True(t, smtpsender.IsPermanent(err), "%v", err)
	assert.Empty(t, srv.Messages())
}

func TestClose(t *testing.T) {
	srv := smtptest.Start(t, nil)
	s := newSender(t, srv, smtpsender.TLS, smtpsender.Login{}, nil)
	require.NoError(t, s.Send(t.Context(), "desk@example.com", []string{"alice@example.org"}, []byte(msg)))
	require.NoError(t, s.Close())
	require.NoError(t, s.Close())
	err := s.Send(t.Context(), "desk@example.com", []string{"alice@example.org"}, []byte(msg))
	assert.ErrorIs(t, err, smtpsender.ErrClosed)
	assert.Len(t, srv.Messages(), 1)
}

func TestSendInvalidEnvelope(t *testing.T) {
	srv := smtptest.Start(t, nil)
	s := newSender(t, srv, smtpsender.TLS, smtpsender.Login{}, nil)
	for _, to := range [][]string{nil, {""}, {"a@example.org\r\nRCPT TO:<b@example.org>"}} {
		err := s.Send(t.Context(), "desk@example.com", to, []byte(msg))
		assert.True(t, smtpsender.IsPermanent(err), "to %q: %v", to, err)
	}
	assert.Zero(t, srv.Connections())
}

func TestNewValidates(t *testing.T) {
	ts := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "t"})
	tests := []struct {
		name  string
		addr  string
		login smtpsender.Login
		opts  *smtpsender.Options
	}{
		{name: "no port", addr: "mail.example.com"},
		{name: "unknown security", addr: "mail.example.com:465", opts: &smtpsender.Options{Security: "ssl"}},
		{name: "insecure remote", addr: "mail.example.com:25", opts: &smtpsender.Options{Security: smtpsender.Insecure}},
		{name: "password without user", addr: "mail.example.com:465", login: smtpsender.Login{Password: "p"}},
		{name: "token without user", addr: "mail.example.com:465", login: smtpsender.Login{TokenSource: ts}},
		{name: "local name with space", addr: "mail.example.com:465", opts: &smtpsender.Options{LocalName: "a b"}},
		{name: "negative timeout", addr: "mail.example.com:465", opts: &smtpsender.Options{SendTimeout: -1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := smtpsender.New(tc.addr, tc.login, tc.opts)
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), "smtpsender: "), err.Error())
		})
	}
	_, err := smtpsender.New("[::1]:25", smtpsender.Login{}, &smtpsender.Options{Security: smtpsender.Insecure})
	assert.NoError(t, err, "insecure on loopback")
}
