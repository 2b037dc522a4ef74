package sqlstore_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
)

// A redelivery with more trace fields is a duplicate and a different mail
// under the same Message-ID is filed as a new mail, on every dialect (the
// fingerprint goes through the processed table).
func TestPipelineReusedMessageID(t *testing.T) {
	first := "Return-Path: <ann@customer.example>\r\n" +
		"Received: from mx1.customer.example by mx.example.com; Mon, 02 Mar 2026 10:00:01 +0000\r\n" +
		"From: Ann <ann@customer.example>\r\nTo: support@example.com\r\nSubject: Printer on fire\r\n" +
		"Date: Mon, 02 Mar 2026 10:00:00 +0000\r\nMessage-ID: <alert-1@customer.example>\r\n\r\nIt burns.\r\n"
	redelivered := "Delivered-To: support@example.com\r\n" +
		"Received: from relay.forwarder.example by mx.example.com; Mon, 02 Mar 2026 10:05:00 +0000\r\n" +
		"Received: from mx1.customer.example by relay.forwarder.example; Mon, 02 Mar 2026 10:04:59 +0000\r\n" + first
	other := "Return-Path: <monitor@customer.example>\r\n" +
		"From: Monitoring <monitor@customer.example>\r\nTo: support@example.com\r\nSubject: Disk full on db3\r\n" +
		"Date: Mon, 02 Mar 2026 11:00:00 +0000\r\nMessage-ID: <alert-1@customer.example>\r\n\r\n/var is at 100%.\r\n"
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			ctx := context.Background()
			s := openURL(t, d.url(t), nil)
			p, err := mailcase.NewPipeline(s, &mailcase.Options{Mailbox: mailcase.Mailbox{Name: "support-" + randomName()}})
			require.NoError(t, err)
			t.Cleanup(func() { _ = p.Close() })
			process := func(raw string) mailcase.Outcome {
				t.Helper()
				res, err := p.Process(ctx, []byte(raw), nil)
				require.NoError(t, err)
				return res.Outcome
			}
			o1 := process(first)
			require.Equal(t, mailcase.ActionCreated, o1.Action)
			o2 := process(redelivered)
			assert.Equal(t, mailcase.ActionDuplicate, o2.Action)
			assert.Equal(t, o1.CaseID, o2.CaseID)
			o3 := process(other)
			assert.Equal(t, mailcase.ActionCreated, o3.Action)
			assert.NotEqual(t, o1.CaseID, o3.CaseID)
			assert.Len(t, o3.Warnings, 1)
			o4 := process("Received: from relay2 by mx.example.com; Mon, 02 Mar 2026 11:30:00 +0000\r\n" + other)
			assert.Equal(t, mailcase.ActionDuplicate, o4.Action)
			assert.Equal(t, o3.CaseID, o4.CaseID)
			st := p.Stats()
			assert.Equal(t, int64(2), st.Created)
			assert.Equal(t, int64(2), st.Duplicates)
			assert.Equal(t, int64(1), st.ReusedMessageID)
		})
	}
}
