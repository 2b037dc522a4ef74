package outbox_test

import (
	"net/mail"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
	"github.com/emailcrm/emailcrm/mailcase/outbox"
)

func TestStructuredReplier_LoopProtectionAndLimits(t *testing.T) {
	ctx := t.Context()
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	s, err := memstore.OpenStore(&memstore.Options{Now: func() time.Time { return now }})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	c, err := s.CreateCase(ctx, &mailcase.NewCase{Subject: "Webform", Queue: "sales", Priority: mailcase.PriorityNormal,
		First: &mailcase.Email{IdempotencyKey: "support/form-1", MessageID: "<form-1@web.example>", Subject: "Webform", Text: "form"}})
	require.NoError(t, err)
	tp, err := outbox.ParseTemplate("thanks", outbox.TemplateSource{Subject: "Thanks {{.Vars.NAME}}", Text: "Case {{.Case.Number}}: {{index .Vars \"ADDRESS.CITY\"}}\n"})
	require.NoError(t, err)
	r, err := outbox.NewStructuredReplier(s, &outbox.StructuredReplyOptions{From: mail.Address{Address: "support@company.example"},
		LoopID: "emailcrm test", Templates: map[string]*outbox.Template{"thanks": tp}, Limits: []outbox.Limit{{Window: time.Hour, Max: 2}},
		OwnAddresses: []string{"billing@company.example"}, Now: func() time.Time { return now }})
	require.NoError(t, err)
	assert.True(t, r.HasTemplate("thanks"))
	assert.False(t, r.HasTemplate("nope"))

	n := 0
	respond := func(from, to string, auto mailcase.AutoInfo, tpl string) (string, error) {
		n++
		m := &mailcase.Message{ID: "m" + string(rune('a'+n)) + "@web.example", From: mailcase.Address{Email: from}, Subject: "form"}
		d := &mailcase.Delivery{Mailbox: &mailcase.Mailbox{Name: "support"}, Message: m, Key: "k" + m.ID, Auto: auto}
		res := &mailcase.Result{Message: m, Outcome: mailcase.Outcome{Action: mailcase.ActionStructured, CaseID: c.ID,
			StructuredReply: &mailcase.StructuredReply{Template: tpl, To: to, Vars: map[string]string{"NAME": "Ann", "ADDRESS.CITY": "Berlin"}}}}
		return r.Respond(ctx, d, res)
	}
	what, err := respond("forms@web.example", "ann@example.com", mailcase.AutoInfo{}, "thanks")
	require.NoError(t, err)
	assert.Contains(t, what, "structured reply thanks queued for ann@example.com")
	sent, err := s.ListOutbox(ctx, &driver.OutboxListOptions{Kind: outbox.KindStructuredReply})
	require.NoError(t, err)
	require.Len(t, sent, 1)
	assert.Equal(t, []string{"ann@example.com"}, sent[0].To)
	full, ok, err := s.GetOutbox(ctx, sent[0].ID)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Regexp(t, regexp.MustCompile(`(?s)Subject: Thanks Ann.*Case `+c.Number+`: Berlin`), string(full.Raw))
	assert.Contains(t, string(full.Raw), "Auto-Submitted: auto-replied")

	for _, tc := range []struct {
		name, from, to string
		auto           mailcase.AutoInfo
		why            string
	}{
		{"automatic mail", "forms@web.example", "", mailcase.AutoInfo{IsAuto: true, Reason: "Auto-Submitted"}, "automatic mail"},
		{"list mail", "forms@web.example", "", mailcase.AutoInfo{NoReply: true, Reason: "List-Id"}, "list or bulk mail"},
		{"no-reply address", "noreply@web.example", "", mailcase.AutoInfo{}, "no-reply or system address"},
		{"own address", "forms@web.example", "billing@company.example", mailcase.AutoInfo{}, "one of our own addresses"},
	} {
		what, err := respond(tc.from, tc.to, tc.auto, "thanks")
		require.NoError(t, err, tc.name)
		assert.Contains(t, what, "no structured reply: ", tc.name)
		assert.Contains(t, what, tc.why, tc.name)
	}
	_, err = respond("forms@web.example", "ann@example.com", mailcase.AutoInfo{}, "thanks")
	require.NoError(t, err)
	what, err = respond("forms@web.example", "ann@example.com", mailcase.AutoInfo{}, "thanks")
	require.NoError(t, err)
	assert.Contains(t, what, "(limit)", "the per-address limit stops the third reply")
	_, err = respond("forms@web.example", "", mailcase.AutoInfo{}, "nope")
	assert.ErrorContains(t, err, `no template "nope"`)

	sent, err = s.ListOutbox(ctx, &driver.OutboxListOptions{Kind: outbox.KindStructuredReply})
	require.NoError(t, err)
	assert.Len(t, sent, 2)

	_, err = outbox.NewStructuredReplier(s, &outbox.StructuredReplyOptions{From: mail.Address{Address: "support@company.example"}, LoopID: "x"})
	assert.Error(t, err, "templates are required")
}
