package xmlapi_test

import (
	"context"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
	"github.com/emailcrm/emailcrm/xmlapi"
)

func newStore(t *testing.T) *mailcase.Store {
	t.Helper()
	s, err := memstore.OpenStore(nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// nonces numbers the nonces stamp adds.
var nonces atomic.Int64

// stamp adds a current timestamp and a fresh nonce after each
// <secret>s3cret</secret>, as a sender using the shared secret must.
func stamp(body string) string {
	return strings.ReplaceAll(body, "<secret>s3cret</secret>", "<secret>s3cret</secret><timestamp>"+
		time.Now().UTC().Format(time.RFC3339)+"</timestamp><nonce>n-"+strconv.FormatInt(nonces.Add(1), 10)+"</nonce>")
}

func delivery(from, body string) *mailcase.Delivery {
	body = stamp(body)
	m := &mailcase.Message{
		ID:      "req-1@ops.example.com",
		From:    mailcase.Address{Email: from},
		Subject: "API request",
		Text:    body,
		Header:  mailcase.Header{},
	}
	m.ReplyText = m.Text
	return &mailcase.Delivery{Mailbox: &mailcase.Mailbox{Name: "support"}, Message: m}
}

const createReq = `<request xmlns="urn:emailcrm:mailcase:v1" version="1">
  <secret>s3cret</secret>
  <createCase contact="ann@example.com" priority="high" queue="billing">
    <subject>Invoice 42 is wrong</subject><body>Please check.</body>
  </createCase>
  <addNote><body>Created by the ERP.</body></addNote>
  <setStatus status="in_progress"/>
  <assign owner="agent-7"/>
</request>`

func TestHandler_RunsActionsForAuthorisedSender(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	h, err := xmlapi.NewHandler(s, &xmlapi.HandlerOptions{AllowedSenders: []string{"@ops.example.com"}, Secret: "s3cret"})
	require.NoError(t, err)
	d := delivery("erp@OPS.example.com", createReq)
	require.True(t, h.IsStructured(d.Message))

	res, err := h.HandleStructured(ctx, d)
	require.NoError(t, err)
	assert.Equal(t, "ran 4 actions", res.Action)
	c, ok, err := s.GetCase(ctx, res.CaseID)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "Invoice 42 is wrong", c.Subject)
	assert.Equal(t, mailcase.PriorityHigh, c.Priority)
	assert.Equal(t, "billing", c.Queue)
	assert.Equal(t, mailcase.StatusInProgress, c.Status)
	assert.Equal(t, "agent-7", c.Owner)
	contacts, err := s.FindContacts(ctx, "ann@example.com")
	require.NoError(t, err)
	require.Len(t, contacts, 1)
	assert.Equal(t, contacts[0].ID, c.ContactID)

	// Redelivery of the same mail creates nothing new (idempotent keys).
	res2, err := h.HandleStructured(ctx, d)
	require.NoError(t, err)
	assert.Equal(t, res.CaseID, res2.CaseID)
	cases, err := s.ListCases(ctx, nil)
	require.NoError(t, err)
	assert.Len(t, cases, 1)
	its, err := s.ListInteractions(ctx, res.CaseID)
	require.NoError(t, err)
	notes := 0
	for _, in := range its {
		if in.Kind == mailcase.KindNote {
			notes++
		}
	}
	assert.Equal(t, 1, notes, "the note is added once")

	// Later requests address the case by number.
	d2 := delivery("erp@ops.example.com", `<request xmlns="urn:emailcrm:mailcase:v1"><secret>s3cret</secret><close case="`+c.Number+`"/></request>`)
	d2.Message.ID = "req-2@ops.example.com"
	_, err = h.HandleStructured(ctx, d2)
	require.NoError(t, err)
	c, _, err = s.GetCase(ctx, c.ID)
	require.NoError(t, err)
	assert.Equal(t, mailcase.StatusClosed, c.Status)
}

func TestHandler_RefusedAndBrokenMailGoesToAdminQueue(t *testing.T) {
	ns := `xmlns="urn:emailcrm:mailcase:v1"`
	tests := []struct {
		name   string
		from   string
		body   string
		authn  bool
		reason string
	}{
		{name: "stranger", from: "eve@evil.example", body: createReq, reason: "not on the structured-mail allow list"},
		{name: "wrong secret", from: "erp@ops.example.com", body: strings.Replace(createReq, "s3cret", "guess", 1), reason: "not authenticated"},
		{name: "malformed", from: "erp@ops.example.com", body: "<request " + ns + "><createCase>", reason: "malformed"},
		{name: "doctype", from: "erp@ops.example.com", body: `<!DOCTYPE r [<!ENTITY x "y">]><request ` + ns + `/>`, reason: "DOCTYPE is not allowed"},
		{name: "unknown webform", from: "erp@ops.example.com", body: "<request " + ns + ` webform="nope"><secret>s3cret</secret></request>`, reason: `unknown webform "nope"`},
		{name: "missing case", from: "erp@ops.example.com", body: "<request " + ns + `><secret>s3cret</secret><close case="99999"/></request>`, reason: "action 1 failed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			s := newStore(t)
			h, err := xmlapi.NewHandler(s, &xmlapi.HandlerOptions{AllowedSenders: []string{"erp@ops.example.com"}, Secret: "s3cret", AdminQueue: "api-admin"})
			require.NoError(t, err)
			d := delivery(tc.from, tc.body)
			res, err := h.HandleStructured(ctx, d)
			require.NoError(t, err)
			assert.Equal(t, "admin", res.Action)
			assert.Contains(t, res.Reason, tc.reason)
			c, ok, err := s.GetCase(ctx, res.CaseID)
			require.NoError(t, err)
			require.True(t, ok)
			assert.Equal(t, "api-admin", c.Queue)
			its, err := s.ListInteractions(ctx, c.ID)
			require.NoError(t, err)
			var sawMail, sawNote bool
			for _, in := range its {
				switch in.Kind {
				case mailcase.KindEmail:
					want := regexp.MustCompile(`<secret>[^<]*</secret>`).ReplaceAllString(d.Message.Text, "<secret>[redacted]</secret>")
					sawMail = in.Email != nil && in.Email.Text == want
				case mailcase.KindNote:
					sawNote = in.Note != nil && strings.Contains(in.Note.Body, tc.reason)
				}
			}
			assert.True(t, sawMail, "the original mail is kept on the admin case")
			assert.True(t, sawNote, "the reason is noted on the admin case")
		})
	}
}

func TestHandler_AuthenticatedWithoutSecret(t *testing.T) {
	s := newStore(t)
	h, err := xmlapi.NewHandler(s, &xmlapi.HandlerOptions{
		AllowedSenders: []string{"erp@ops.example.com"},
		Authenticated:  func(m *mailcase.Message) bool { return m.Header.Get("X-Test-Auth") == "pass" },
	})
	require.NoError(t, err)
	body := strings.Replace(createReq, "<secret>s3cret</secret>", "", 1)
	d := delivery("erp@ops.example.com", body)
	res, err := h.HandleStructured(t.Context(), d)
	require.NoError(t, err)
	assert.Equal(t, "admin", res.Action, "no secret and not authenticated")

	d = delivery("erp@ops.example.com", body)
	d.Message.ID = "other@ops.example.com"
	d.Message.Header.Set("X-Test-Auth", "pass")
	res, err = h.HandleStructured(t.Context(), d)
	require.NoError(t, err)
	assert.Equal(t, "ran 4 actions", res.Action)
}

func TestHandler_Webform(t *testing.T) {
	s := newStore(t)
	var got map[string]string
	h, err := xmlapi.NewHandler(s, &xmlapi.HandlerOptions{
		AllowedSenders: []string{"@forms.example.com"},
		Secret:         "s3cret",
		Webforms: map[string]xmlapi.Webform{
			"rma": xmlapi.WebformFunc(func(ctx context.Context, req *xmlapi.WebformRequest) (xmlapi.WebformResult, error) {
				got = req.Fields
				return xmlapi.WebformResult{
					Actions: []xmlapi.Action{{XMLName: xmlName("createCase"), Subject: "RMA for " + req.Fields["serial"], Queue: "returns", Contact: req.Fields["email"]}},
					Reply:   "We received your return request.",
				}, nil
			}),
		},
	})
	require.NoError(t, err)
	body := `<request xmlns="urn:emailcrm:mailcase:v1" webform="rma"><secret>s3cret</secret>
	  <field name="serial">SN-77</field><field name="email">bob@example.org</field></request>`
	res, err := h.HandleStructured(t.Context(), delivery("web@forms.example.com", body))
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"serial": "SN-77", "email": "bob@example.org"}, got)
	assert.Equal(t, "ran 1 actions", res.Action)
	assert.Contains(t, res.Reason, "We received your return request.")
	c, ok, err := s.GetCase(t.Context(), res.CaseID)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "RMA for SN-77", c.Subject)
	assert.Equal(t, "returns", c.Queue)
}

func TestHandler_TransientErrorIsReturned(t *testing.T) {
	s := newStore(t)
	h, err := xmlapi.NewHandler(s, &xmlapi.HandlerOptions{
		AllowedSenders: []string{"@forms.example.com"}, Secret: "s3cret",
		Webforms: map[string]xmlapi.Webform{"x": xmlapi.WebformFunc(func(context.Context, *xmlapi.WebformRequest) (xmlapi.WebformResult, error) {
			return xmlapi.WebformResult{}, mailcase.NewError(mailcase.Unavailable, "erp", errors.New("ERP down"))
		})},
	})
	require.NoError(t, err)
	_, err = h.HandleStructured(t.Context(), delivery("a@forms.example.com", `<request xmlns="urn:emailcrm:mailcase:v1" webform="x"><secret>s3cret</secret></request>`))
	require.Error(t, err)
	assert.True(t, mailcase.IsRetryable(err))
	cases, err := s.ListCases(t.Context(), nil)
	require.NoError(t, err)
	assert.Empty(t, cases, "nothing is filed on a transient failure; the pipeline retries")
}

func TestHandler_IsStructured(t *testing.T) {
	h, err := xmlapi.NewHandler(newStore(t), nil)
	require.NoError(t, err)
	assert.False(t, h.IsStructured(&mailcase.Message{Text: "Hello, my printer is broken"}))
	assert.False(t, h.IsStructured(&mailcase.Message{Text: "<p>html-ish text</p>"}))
	assert.True(t, h.IsStructured(&mailcase.Message{Text: "\n  " + createReq}))
	assert.True(t, h.IsStructured(&mailcase.Message{Text: "see attached", Attachments: []mailcase.Attachment{
		{ContentType: "application/xml", Data: []byte(createReq)}}}))
	assert.False(t, h.IsStructured(&mailcase.Message{Attachments: []mailcase.Attachment{
		{ContentType: "application/pdf", Data: []byte(createReq)}}}))
}

func TestNewHandler_RejectsBadOptions(t *testing.T) {
	_, err := xmlapi.NewHandler(newStore(t), &xmlapi.HandlerOptions{AllowedSenders: []string{"not an address"}})
	require.ErrorContains(t, err, `invalid allowed sender "not an address"`)
	_, err = xmlapi.NewHandler(newStore(t), &xmlapi.HandlerOptions{AllowedSenders: []string{"@"}})
	require.ErrorContains(t, err, "invalid allowed domain")
	_, err = xmlapi.NewHandler(nil, nil)
	require.Error(t, err)
}

func TestHandler_AdminCaseNeverKeepsTheSecret(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	h, err := xmlapi.NewHandler(s, &xmlapi.HandlerOptions{AllowedSenders: []string{"erp@ops.example.com"}, Secret: "s3cret-Value"})
	require.NoError(t, err)
	// A refused sender who knows the secret, the secret in a prefixed
	// element, HTML-escaped in the HTML body and inside an XML attachment.
	d := delivery("eve@evil.example", `<request xmlns="urn:emailcrm:mailcase:v1" xmlns:m="urn:emailcrm:mailcase:v1"><m:secret>s3cret-Value</m:secret><close case="1"/></request>`)
	d.Message.HTML = `<pre>&lt;secret&gt;s3cret-Value&lt;/secret&gt; and again s3cret-Value</pre>`
	d.Message.Attachments = []mailcase.Attachment{{Filename: "req.xml", ContentType: "application/xml",
		Data: []byte(`<request xmlns="urn:emailcrm:mailcase:v1"><secret>other-guess</secret></request>`)}}
	res, err := h.HandleStructured(ctx, d)
	require.NoError(t, err)
	require.Equal(t, "admin", res.Action)
	its, err := s.ListInteractions(ctx, res.CaseID)
	require.NoError(t, err)
	var mail *mailcase.Email
	for _, in := range its {
		if in.Kind == mailcase.KindEmail {
			mail = in.Email
		}
	}
	require.NotNil(t, mail)
	assert.NotContains(t, mail.Text, "s3cret-Value")
	assert.Contains(t, mail.Text, "<m:secret>[redacted]</m:secret>")
	assert.NotContains(t, mail.HTML, "s3cret-Value")
	require.Len(t, mail.Attachments, 1)
	assert.NotContains(t, string(mail.Attachments[0].Data), "other-guess", "guessed secrets are redacted too")
	assert.Contains(t, mail.Text, `<close case="1"/>`, "the rest of the request is kept")
	assert.Equal(t, "eve@evil.example", mail.From.Email)
}

func TestHandler_WebformActionLimitAndNilMailbox(t *testing.T) {
	s := newStore(t)
	h, err := xmlapi.NewHandler(s, &xmlapi.HandlerOptions{
		AllowedSenders: []string{"@forms.example.com"}, Secret: "s3cret",
		Limits: &xmlapi.Limits{MaxActions: 2},
		Webforms: map[string]xmlapi.Webform{"flood": xmlapi.WebformFunc(func(context.Context, *xmlapi.WebformRequest) (xmlapi.WebformResult, error) {
			acts := make([]xmlapi.Action, 3)
			for i := range acts {
				acts[i] = xmlapi.Action{XMLName: xmlName("createCase"), Subject: "x"}
			}
			return xmlapi.WebformResult{Actions: acts}, nil
		})},
	})
	require.NoError(t, err)
	d := delivery("a@forms.example.com", `<request xmlns="urn:emailcrm:mailcase:v1" webform="flood"><secret>s3cret</secret></request>`)
	d.Mailbox = nil
	res, err := h.HandleStructured(t.Context(), d)
	require.NoError(t, err)
	assert.Equal(t, "admin", res.Action)
	assert.Contains(t, res.Reason, "more than 2 actions")
	cases, err := s.ListCases(t.Context(), nil)
	require.NoError(t, err)
	assert.Len(t, cases, 1, "only the admin case: no webform action ran")
}
