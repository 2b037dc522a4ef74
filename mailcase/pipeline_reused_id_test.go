package mailcase_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/mailcasetest"
)

// The first delivery of a mail, as the LMTP listener hands it over
// (Return-Path and one Received line prepended).
const reusedFirst = "Return-Path: <ann@customer.example>\r\n" +
	"Received: from mx1.customer.example (mx1.customer.example [192.0.2.10])\r\n" +
	"\tby mx.example.com (Postfix) with ESMTPS id 4F2A1C0123\r\n" +
	"\tfor <support@example.com>; Mon, 02 Mar 2026 10:00:01 +0000 (UTC)\r\n" +
	"From: Ann <ann@customer.example>\r\n" +
	"To: support@example.com\r\n" +
	"Subject: Printer on fire in building 7, third floor\r\n" +
	"Date: Mon, 02 Mar 2026 10:00:00 +0000\r\n" +
	"Message-ID: <alert-1@customer.example>\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"\r\n" +
	"It burns.\r\n" +
	"From the third floor we see smoke.\r\n"

// The same mail redelivered through a forwarder and Postfix's pipe: another
// envelope sender, two more Received lines, Delivered-To and X-Original-To,
// an mbox From line, the Subject folded, LF line endings, the body's
// "From " line quoted and a trailing blank line.
const reusedRedelivered = "From bounce+x@forwarder.example  Mon Mar  2 10:05:00 2026\n" +
	"Return-Path: <bounce+x@forwarder.example>\n" +
	"Delivered-To: support@example.com\n" +
	"X-Original-To: helpdesk@example.com\n" +
	"Received: from relay.forwarder.example (relay.forwarder.example [198.51.100.7])\n" +
	"\tby mx.example.com (Postfix) with ESMTPS id 9B7E2C0456; Mon, 02 Mar 2026 10:05:00 +0000\n" +
	"Received: from mx1.customer.example by relay.forwarder.example; Mon, 02 Mar 2026 10:04:59 +0000\n" +
	"Received: from mx1.customer.example (mx1.customer.example [192.0.2.10])\n" +
	"\tby mx.example.com (Postfix) with ESMTPS id 4F2A1C0123\n" +
	"\tfor <support@example.com>; Mon, 02 Mar 2026 10:00:01 +0000 (UTC)\n" +
	"From: Ann <ann@customer.example>\n" +
	"To: support@example.com\n" +
	"Subject: Printer on fire in building 7,\n" +
	"  third floor\n" +
	"Date: Mon, 02 Mar 2026 10:00:00 +0000\n" +
	"Message-ID: <alert-1@customer.example>\n" +
	"MIME-Version: 1.0\n" +
	"Content-Type: text/plain;\n" +
	" charset=utf-8\n" +
	"\n" +
	"It burns.\n" +
	">From the third floor we see smoke.\n" +
	"\n"

// A different mail from a monitoring tool that reuses the Message-ID.
const reusedOther = "Return-Path: <monitor@customer.example>\r\n" +
	"Received: from mx1.customer.example by mx.example.com; Mon, 02 Mar 2026 11:00:01 +0000\r\n" +
	"From: Monitoring <monitor@customer.example>\r\n" +
	"To: support@example.com\r\n" +
	"Subject: Disk full on db3\r\n" +
	"Date: Mon, 02 Mar 2026 11:00:00 +0000\r\n" +
	"Message-ID: <alert-1@customer.example>\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"\r\n" +
	"/var is at 100%.\r\n"

func TestContentFingerprint(t *testing.T) {
	base := mailcase.ContentFingerprint([]byte(reusedFirst))
	assert.True(t, strings.HasPrefix(base, "v1:"), base)
	assert.Len(t, base, 3+64)
	assert.Equal(t, base, mailcase.ContentFingerprint([]byte(reusedRedelivered)), "trace fields, envelope, folding and line endings are not content")

	same := map[string]string{
		"extra Received":       "Received: from a by b; Mon, 02 Mar 2026 10:00:02 +0000\r\n" + reusedFirst,
		"no trace fields":      reusedFirst[strings.Index(reusedFirst, "From: Ann"):],
		"Delivered-To":         "Delivered-To: support@example.com\r\n" + reusedFirst,
		"other Return-Path":    strings.Replace(reusedFirst, "<ann@customer.example>\r\nReceived", "<>\r\nReceived", 1),
		"DKIM and spam fields": "X-Spam-Status: No\r\nAuthentication-Results: mx; dkim=pass\r\n" + reusedFirst,
	}
	for name, raw := range same {
		assert.Equal(t, base, mailcase.ContentFingerprint([]byte(raw)), name)
	}
	differ := map[string]string{
		"Subject": strings.Replace(reusedFirst, "Subject: Printer on fire", "Subject: Printer fixed", 1),
		"From":    strings.Replace(reusedFirst, "From: Ann <ann@", "From: Bob <bob@", 1),
		"Date":    strings.Replace(reusedFirst, "Date: Mon, 02 Mar 2026 10:00:00", "Date: Mon, 02 Mar 2026 10:00:09", 1),
		"body":    strings.Replace(reusedFirst, "It burns.", "It is out.", 1),
		"To":      strings.Replace(reusedFirst, "To: support@", "To: sales@", 1),
		"Cc":      strings.Replace(reusedFirst, "To: support@example.com\r\n", "To: support@example.com\r\nCc: eve@evil.example\r\n", 1),
	}
	for name, raw := range differ {
		assert.NotEqual(t, base, mailcase.ContentFingerprint([]byte(raw)), name)
	}
	// Header-only and body-less input does not panic and is stable.
	for _, raw := range []string{"", "From x", "Subject: a", "no header at all\r\n\r\nbody", "\r\n\r\n"} {
		assert.Equal(t, mailcase.ContentFingerprint([]byte(raw)), mailcase.ContentFingerprint([]byte(raw)))
	}
}

func TestPipeline_ReusedMessageID(t *testing.T) {
	ctx := context.Background()
	s := plStore(t)
	p := plPipeline(t, s, &mailcase.Options{Mailbox: mailcase.Mailbox{Name: "support", Address: "support@example.com"}})

	// Run acknowledges each mail; Done is what makes a source delete it.
	src := mailcasetest.NewSource([]byte(reusedFirst), []byte(reusedRedelivered))
	require.NoError(t, p.Run(ctx, src))
	acks := src.Acks()
	require.Len(t, acks, 2)
	for _, a := range acks {
		assert.Equal(t, mailcase.Done, a.Disposition)
	}
	st := p.Stats()
	assert.Equal(t, int64(1), st.Created)
	assert.Equal(t, int64(1), st.Duplicates, "the redelivery with other trace fields is a duplicate")
	assert.Zero(t, st.ReusedMessageID)
	cases := plCases(t, s)
	require.Len(t, cases, 1)
	firstCase := cases[0].ID

	// A different mail under the same Message-ID is filed as a new mail.
	res := plProcess(t, p, []byte(reusedOther))
	o := res.Outcome
	assert.Equal(t, mailcase.ActionCreated, o.Action, plSteps(res))
	assert.Equal(t, mailcase.Done, o.Disposition)
	assert.NotEqual(t, firstCase, o.CaseID)
	require.Len(t, o.Warnings, 1)
	assert.Contains(t, o.Warnings[0], "alert-1@customer.example is already filed for a different mail")
	step, ok := plStepOf(res, "idempotency")
	require.True(t, ok)
	assert.Equal(t, "reused Message-ID", step.Decision)
	plainKey := mailcase.IdempotencyKey("support", res.Message)
	assert.True(t, strings.HasPrefix(o.Key, plainKey+"\x00fp:"), "%q", o.Key)
	assert.Len(t, o.Key, len(plainKey)+len("\x00fp:")+16)
	assert.Equal(t, int64(1), p.Stats().ReusedMessageID)
	c, ok, err := s.GetCase(ctx, o.CaseID)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "Disk full on db3", c.Subject)
	mails := plCaseMails(t, s, o.CaseID)
	require.Len(t, mails, 1)
	assert.Contains(t, mails[0].Text, "/var is at 100%")
	filed, ok, err := s.LookupProcessed(ctx, o.Key)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, mailcase.ContentFingerprint([]byte(reusedOther)), filed.Fingerprint)

	// Its own redelivery (one more Received line) is a duplicate of it.
	again := plProcess(t, p, []byte("Received: from relay2.example by mx.example.com; Mon, 02 Mar 2026 11:30:00 +0000\r\n"+reusedOther))
	assert.Equal(t, mailcase.ActionDuplicate, again.Outcome.Action, plSteps(again))
	assert.Equal(t, mailcase.Done, again.Outcome.Disposition)
	assert.Equal(t, o.CaseID, again.Outcome.CaseID)
	assert.Equal(t, o.Key, again.Outcome.Key)
	assert.Empty(t, again.Outcome.Warnings)
	// And the first mail redelivered once more is still a duplicate of the first.
	assert.Equal(t, mailcase.ActionDuplicate, plProcess(t, p, []byte(reusedRedelivered)).Outcome.Action)
	st = p.Stats()
	assert.Equal(t, int64(2), st.Created)
	assert.Equal(t, int64(3), st.Duplicates)
	assert.Equal(t, int64(1), st.ReusedMessageID)
	assert.Len(t, plCases(t, s), 2)
}

// A key filed before stores kept fingerprints (no Fingerprint) matches any
// content: a redelivery is never filed twice, at the price of a reused
// Message-ID being dropped as before.
func TestPipeline_ReusedMessageIDFiledWithoutFingerprint(t *testing.T) {
	ctx := context.Background()
	s := plStore(t)
	p := plPipeline(t, s, &mailcase.Options{Mailbox: mailcase.Mailbox{Name: "support"}})
	m, err := mailcase.ParseMessage([]byte(reusedFirst), nil)
	require.NoError(t, err)
	e := m.ToEmail(mailcase.IdempotencyKey("support", m), "support")
	require.Empty(t, e.Fingerprint)
	_, err = s.CreateCase(ctx, &mailcase.NewCase{Subject: m.Subject, Status: mailcase.StatusNew, First: e})
	require.NoError(t, err)

	res := plProcess(t, p, []byte(reusedOther))
	assert.Equal(t, mailcase.ActionDuplicate, res.Outcome.Action, plSteps(res))
	assert.Empty(t, res.Outcome.Warnings)
	assert.Zero(t, p.Stats().ReusedMessageID)
}
