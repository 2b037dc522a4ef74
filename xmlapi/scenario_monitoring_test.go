package xmlapi_test

import (
	"fmt"
	"net/mail"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/smtpsender"
	"github.com/emailcrm/emailcrm/adapters/smtpsender/smtptest"
	"github.com/emailcrm/emailcrm/adapters/sqlstore"
	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
	"github.com/emailcrm/emailcrm/mailcase/outbox"
	"github.com/emailcrm/emailcrm/threading"
	"github.com/emailcrm/emailcrm/xmlapi"
)

// monitoringMail is a structured mail from the monitoring system,
// authenticated by our MX (authRes "" for none).
func monitoringMail(id, inReplyTo, authRes, extra, doc string) []byte {
	var b strings.Builder
	if authRes != "" {
		b.WriteString("Authentication-Results: " + authRes + "\r\n")
	}
	b.WriteString("Received: from mon.ops.example.com by mx.example.com; Mon, 07 Dec 2026 09:00:00 +0000\r\n")
	b.WriteString("From: Nagios <nagios@ops.example.com>\r\nTo: <support@example.com>\r\nSubject: alert\r\n")
	fmt.Fprintf(&b, "Message-ID: <%s>\r\nDate: Mon, 07 Dec 2026 09:00:00 +0000\r\n", id)
	if inReplyTo != "" {
		fmt.Fprintf(&b, "In-Reply-To: %s\r\nReferences: %s\r\n", inReplyTo, inReplyTo)
	}
	b.WriteString(extra)
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\n\r\n")
	b.WriteString(strings.ReplaceAll(doc, "\n", "\r\n"))
	return []byte(b.String())
}

const passAR = "mx.example.com; dkim=pass header.d=ops.example.com; spf=pass smtp.mailfrom=nagios@ops.example.com"

// TestMonitoringScenario is Dovetail's "API invoke mode" end to end: a
// monitoring system opens a case by mail, adds a note, sets the
// priority, dispatches it, changes its status and closes it, each mail
// answered by a templated reply delivered over SMTP, the case number of
// the first reply naming the case in the next mails.
func TestMonitoringScenario(t *testing.T) {
	t.Run("memstore", func(t *testing.T) {
		st, err := memstore.OpenStore(nil)
		require.NoError(t, err)
		t.Cleanup(func() { _ = st.Close() })
		monitoringScenario(t, st)
	})
	t.Run("sqlite", func(t *testing.T) {
		st, err := sqlstore.OpenURL(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "cases.db"), nil)
		require.NoError(t, err)
		t.Cleanup(func() { _ = st.Close() })
		monitoringScenario(t, st)
	})
}

func monitoringScenario(t *testing.T, st *mailcase.Store) {
	ctx := t.Context()
	key := []byte("support-key-0123456789abcdef0123456789")
	codec, err := threading.NewCodec(key, "example.com")
	require.NoError(t, err)
	resolver, err := threading.NewResolver(st, &threading.Options{Key: key, Domain: "example.com", OwnAddresses: []string{"support@example.com"}})
	require.NoError(t, err)

	h, err := xmlapi.NewHandler(st, &xmlapi.HandlerOptions{
		AllowedSenders: []string{"nagios@ops.example.com"},
		Authenticated: func(m *mailcase.Message) bool {
			ok, _ := mailcase.AuthenticatedSender(m, []string{"mx.example.com"})
			return ok
		},
		AdminQueue: "api-admin",
	})
	require.NoError(t, err)
	tpl := func(name, subject, text string) *outbox.Template {
		tp, err := outbox.ParseTemplate(name, outbox.TemplateSource{Subject: subject, Text: text})
		require.NoError(t, err)
		return tp
	}
	replier, err := outbox.NewStructuredReplier(st, &outbox.StructuredReplyOptions{
		From: mail.Address{Name: "Support", Address: "support@example.com"}, LoopID: "emailcrm example", Codec: codec,
		Templates: map[string]*outbox.Template{
			"opened":  tpl("opened", "[Case {{.Case.Number}}] opened for alert {{.Vars.alert}}", "Case {{.Case.Number}} is {{.Case.Status}} in {{.Case.Queue}}.\n"),
			"updated": tpl("updated", "[Case {{.Case.Number}}] updated", "Case {{.Case.Number}}: priority {{.Case.Priority}}, queue {{.Case.Queue}}, status {{.Case.Status}}.\n"),
			"closed":  tpl("closed", "[Case {{.Case.Number}}] closed", "Case {{.Case.Number}} is {{.Case.Status}}. {{.Vars.note}}\n"),
		},
	})
	require.NoError(t, err)
	ack, err := outbox.NewAcknowledger(st, &outbox.AckOptions{From: mail.Address{Address: "support@example.com"}, LoopID: "emailcrm example", Codec: codec})
	require.NoError(t, err)
	p, err := mailcase.NewPipeline(st, &mailcase.Options{Mailbox: mailcase.Mailbox{Name: "support", Address: "support@example.com"},
		Threads: resolver, Structured: h, Responders: []mailcase.Responder{ack, replier}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })

	srv := smtptest.Start(t, &smtptest.Options{Security: "insecure"})
	tr, err := smtpsender.New(srv.Addr, smtpsender.Login{}, &smtpsender.Options{Security: smtpsender.Insecure})
	require.NoError(t, err)
	t.Cleanup(func() { _ = tr.Close() })
	deliverer, err := outbox.NewDeliverer(st, tr, nil)
	require.NoError(t, err)

	// process files one mail and delivers the outbox; it returns the
	// pipeline's result and the replies delivered by this step.
	delivered := 0
	process := func(raw []byte) (*mailcase.Result, []*mailcase.Message) {
		t.Helper()
		res, err := p.Process(ctx, raw, nil)
		require.NoError(t, err)
		_, err = deliverer.DeliverDue(ctx)
		require.NoError(t, err)
		var out []*mailcase.Message
		msgs := srv.Messages()
		for ; delivered < len(msgs); delivered++ {
			assert.Equal(t, []string{"nagios@ops.example.com"}, msgs[delivered].To)
			m, err := mailcase.ParseMessage(msgs[delivered].Data, nil)
			require.NoError(t, err)
			out = append(out, m)
		}
		return res, out
	}
	stepsOf := func(r *mailcase.Result) string { return fmt.Sprint(r.Outcome.Steps) }

	// 1. Open the case, with a first note and the reply naming the case.
	open := `<request xmlns="urn:emailcrm:mailcase:v1" version="1">
  <createCase queue="noc" priority="normal"><subject>db1: disk /var 95% full</subject><body>Alert A-77 raised at 09:00.</body></createCase>
  <addNote><body>Check script: /var/log grows 2 GB/h.</body></addNote>
  <reply template="opened"><var name="alert">A-77</var></reply>
</request>`
	res, replies := process(monitoringMail("a77-1@mon.ops.example.com", "", passAR, "", open))
	require.Equal(t, mailcase.ActionStructured, res.Outcome.Action, stepsOf(res))
	require.Len(t, replies, 1, "the opening is answered once: %s", stepsOf(res))
	caseID := res.Outcome.CaseID
	c, ok, err := st.GetCase(ctx, caseID)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "db1: disk /var 95% full", c.Subject)
	assert.Equal(t, "noc", c.Queue)
	r1 := replies[0]
	m := regexp.MustCompile(`\[Case (\S+)\] opened for alert A-77`).FindStringSubmatch(r1.Subject)
	require.NotNil(t, m, "reply subject %q", r1.Subject)
	number := m[1]
	assert.Equal(t, c.Number, number)
	assert.Contains(t, r1.Text, "in noc")
	assert.Equal(t, []string{"a77-1@mon.ops.example.com"}, r1.InReplyTo, "the reply threads to the request")
	assert.Equal(t, "auto-replied", r1.Header.Get("Auto-Submitted"))
	assert.Equal(t, "emailcrm example", r1.Header.Get(mailcase.LoopHeader))

	// Redelivery of the first mail: a duplicate, no second case, no
	// second reply.
	res, replies = process(monitoringMail("a77-1@mon.ops.example.com", "", passAR, "", open))
	assert.Equal(t, mailcase.ActionDuplicate, res.Outcome.Action, stepsOf(res))
	assert.Empty(t, replies)

	// 2. Note, priority and dispatch in one mail, sent as a reply to our
	// reply (so it carries the thread), naming the case by its number.
	update := fmt.Sprintf(`<request xmlns="urn:emailcrm:mailcase:v1" version="1">
  <addNote case="%s"><body>Disk at 98%%.</body></addNote>
  <setPriority case="%s" priority="urgent"/>
  <dispatch case="%s" queue="dba"/>
  <reply template="updated"/>
</request>`, number, number, number)
	res, replies = process(monitoringMail("a77-2@mon.ops.example.com", "<"+r1.ID+">", passAR, "", update))
	require.Equal(t, mailcase.ActionStructured, res.Outcome.Action, stepsOf(res))
	require.Len(t, replies, 1, stepsOf(res))
	c, _, err = st.GetCase(ctx, caseID)
	require.NoError(t, err)
	assert.Equal(t, mailcase.PriorityUrgent, c.Priority)
	assert.Equal(t, "dba", c.Queue)
	assert.Contains(t, replies[0].Text, "priority urgent, queue dba")

	// 3. Status change.
	res, replies = process(monitoringMail("a77-3@mon.ops.example.com", "", passAR, "", fmt.Sprintf(
		`<request xmlns="urn:emailcrm:mailcase:v1"><setStatus case="%s" status="in_progress"/><reply template="updated"/></request>`, number)))
	require.Equal(t, mailcase.ActionStructured, res.Outcome.Action, stepsOf(res))
	require.Len(t, replies, 1)
	assert.Contains(t, replies[0].Text, "status in_progress")

	// An unauthenticated mail (no Authentication-Results of our MX) from
	// the same address runs nothing: it goes to the admin queue, unanswered.
	res, replies = process(monitoringMail("forged@mon.ops.example.com", "", "", "", fmt.Sprintf(
		`<request xmlns="urn:emailcrm:mailcase:v1"><close case="%s"/><reply template="closed"/></request>`, number)))
	require.Equal(t, mailcase.ActionStructured, res.Outcome.Action, stepsOf(res))
	assert.Empty(t, replies, "a refused request gets no automated reply")
	adminCase, _, err := st.GetCase(ctx, res.Outcome.CaseID)
	require.NoError(t, err)
	assert.Equal(t, "api-admin", adminCase.Queue)
	c, _, err = st.GetCase(ctx, caseID)
	require.NoError(t, err)
	assert.Equal(t, mailcase.StatusInProgress, c.Status, "the forged close did not run")

	// Automatic mail from the monitoring system (an auto-reply) is never
	// answered and runs no action.
	res, replies = process(monitoringMail("ooo@mon.ops.example.com", "", passAR, "Auto-Submitted: auto-replied\r\n", fmt.Sprintf(
		`<request xmlns="urn:emailcrm:mailcase:v1"><close case="%s"/><reply template="closed"/></request>`, number)))
	assert.NotEqual(t, mailcase.ActionStructured, res.Outcome.Action, stepsOf(res))
	assert.Empty(t, replies)

	// 4. Resolved: close with a final reply.
	res, replies = process(monitoringMail("a77-4@mon.ops.example.com", "", passAR, "", fmt.Sprintf(
		`<request xmlns="urn:emailcrm:mailcase:v1"><addNote case="%s"><body>Resolved: logs rotated.</body></addNote><close case="%s"/>
<reply template="closed"><var name="note">Logs rotated.</var></reply></request>`, number, number)))
	require.Equal(t, mailcase.ActionStructured, res.Outcome.Action, stepsOf(res))
	require.Len(t, replies, 1)
	assert.Contains(t, replies[0].Text, "is closed. Logs rotated.")
	c, _, err = st.GetCase(ctx, caseID)
	require.NoError(t, err)
	assert.Equal(t, mailcase.StatusClosed, c.Status)

	its, err := st.ListInteractions(ctx, caseID)
	require.NoError(t, err)
	var notes []string
	for _, it := range its {
		if it.Kind == driver.KindNote && it.Note != nil {
			notes = append(notes, it.Note.Body)
		}
	}
	assert.Equal(t, []string{"Check script: /var/log grows 2 GB/h.", "Disk at 98%.", "Resolved: logs rotated."}, notes)
	sent, err := st.ListOutbox(ctx, &driver.OutboxListOptions{Kind: outbox.KindStructuredReply})
	require.NoError(t, err)
	assert.Len(t, sent, 4, "one reply per accepted request")
	acks, err := st.ListOutbox(ctx, &driver.OutboxListOptions{Kind: outbox.KindAcknowledgement})
	require.NoError(t, err)
	assert.Empty(t, acks, "structured mail is answered by its reply, not acknowledged")
}
