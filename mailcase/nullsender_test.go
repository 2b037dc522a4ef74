package mailcase_test

import (
	"fmt"

	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
)

func TestIsNullSender(t *testing.T) {
	for _, v := range []string{
		"<>", "", "  <>  ", "< >", "<  >", "<<>>", "<> (bounce)",
		"<MAILER-DAEMON>", "MAILER-DAEMON", "mailer-daemon", "< MAILER-DAEMON >", "<Mailer-Daemon>",
		"MAILER-DAEMON@mx.example.com", "<MAILER-DAEMON@mx.example.com>",
		"#@[]", "<#@[]>",
	} {
		assert.True(t, mailcase.IsNullSender(v), "%q", v)
	}
	for _, v := range []string{
		"<jane@customer.example>", "jane@customer.example", "<postmaster@example.org>",
		"<mailer-daemon-fan@example.org>", "<daemon@example.org>", "<#@example.org>",
	} {
		assert.False(t, mailcase.IsNullSender(v), "%q", v)
	}
}

// The null sender as each MTA writes it, in front of an out-of-office reply
// that has no other automatic-mail signal, and of a non-standard bounce:
// neither opens a case. The same mails with a real Return-Path do.
func TestPipeline_NullSenderOfEachMTA(t *testing.T) {
	const vacation = "From: Jane Doe <jane@customer.example>\n" +
		"To: support@example.com\n" +
		"Subject: Away until Monday\n" +
		"Date: Mon, 02 Mar 2026 10:00:00 +0000\n" +
		"Message-ID: <vac-%s@customer.example>\n" +
		"\n" +
		"I am out of the office until Monday.\n"
	const bounce = "From: Mail System <mail-robot@mx.customer.example>\n" +
		"To: support@example.com\n" +
		"Subject: Undelivered Mail Returned to Sender\n" +
		"Date: Mon, 02 Mar 2026 10:00:00 +0000\n" +
		"Message-ID: <bnc-%s@mx.customer.example>\n" +
		"\n" +
		"Your message could not be delivered to one or more recipients.\n"
	// The exact trace lines, LF as the pipe writes them (LMTP: CRLF).
	mtas := []struct {
		name, trace string
	}{
		{"postfix pipe flags=R (null_sender default MAILER-DAEMON)", "Return-Path: <MAILER-DAEMON>\n"},
		{"postfix pipe flags=FR", "From MAILER-DAEMON  Mon Mar  2 10:00:01 2026\nReturn-Path: <MAILER-DAEMON>\n"},
		{"postfix pipe flags=R null_sender=", "Return-Path: <>\n"},
		{"postfix pipe flags=DRO", "Return-Path: <MAILER-DAEMON>\nX-Original-To: support@example.com\nDelivered-To: support@example.com\n"},
		{"exim return_path_add", "Return-path: <>\nEnvelope-to: support@example.com\nDelivery-date: Mon, 02 Mar 2026 10:00:01 +0000\n"},
		{"sendmail local mailer", "Return-Path: <>\n"},
		{"sendmail naming the null sender", "Return-Path: <MAILER-DAEMON>\n"},
		{"qmail-local", "Return-Path: <>\nDelivered-To: support@example.com\n"},
		{"qmail-local double bounce", "Return-Path: <#@[]>\nDelivered-To: support@example.com\n"},
		{"bare MAILER-DAEMON", "Return-Path: MAILER-DAEMON\n"},
		{"brackets with a space", "Return-Path: < >\n"},
		{"lmtp listener (CRLF)", "Return-Path: <>\r\n"},
	}
	for i, mta := range mtas {
		t.Run(mta.name, func(t *testing.T) {
			for j, body := range []string{vacation, bounce} {
				s := plStore(t)
				p := plPipeline(t, s, &mailcase.Options{Mailbox: mailcase.Mailbox{Name: "support", Address: "support@example.com", UnknownSender: mailcase.UnknownCreateContact}})
				id := string(rune('a'+i)) + string(rune('0'+j))
				res := plProcess(t, p, []byte(mta.trace+fmt.Sprintf(body, id)))
				assert.Equal(t, mailcase.ActionRecorded, res.Outcome.Action, plSteps(res))
				assert.True(t, res.Outcome.Auto.IsAuto || res.Outcome.Bounce.IsBounce, plSteps(res))
				assert.Empty(t, plCases(t, s), "a null-sender mail opens no case")
				if j == 1 {
					assert.True(t, res.Outcome.Bounce.IsBounce, "non-standard bounce with a null sender: %s", plSteps(res))
				}
			}
		})
	}
	t.Run("real sender opens a case", func(t *testing.T) {
		s := plStore(t)
		p := plPipeline(t, s, &mailcase.Options{Mailbox: mailcase.Mailbox{Name: "support", Address: "support@example.com", UnknownSender: mailcase.UnknownCreateContact}})
		res := plProcess(t, p, []byte("Return-Path: <jane@customer.example>\n"+fmt.Sprintf(vacation, "real")))
		require.Equal(t, mailcase.ActionCreated, res.Outcome.Action, plSteps(res))
		assert.False(t, res.Outcome.Auto.IsAuto)
	})
}
