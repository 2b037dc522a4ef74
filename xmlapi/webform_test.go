package xmlapi_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/mailauth"
	"github.com/emailcrm/emailcrm/xmlapi"
)

const contactUs = `<?xml version="1.0"?>
<WEBFORM>
  <WEBFORM_TEMPL_ID>CONTACT_US</WEBFORM_TEMPL_ID>
  <EMAIL>Ann@Example.com</EMAIL>
  <NAME>Ann Smith</NAME>
  <QUESTION>My order &amp; invoice do not match.</QUESTION>
  <PRODUCT>Printer</PRODUCT>
  <PRODUCT>Toner</PRODUCT>
  <ADDRESS><CITY>Berlin</CITY><ZIP>10115</ZIP></ADDRESS>
</WEBFORM>
--
Sent by the web server`

func TestIsWebform(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       bool
	}{
		{"seed body", `<?xml version="1.0"?><WEBFORM><WEBFORM_TEMPL_ID>CONTACT_US</WEBFORM_TEMPL_ID></WEBFORM>`, true},
		{"leading whitespace, no declaration", "\n\t <WEBFORM><WEBFORM_TEMPL_ID>X</WEBFORM_TEMPL_ID></WEBFORM>", true},
		{"declaration after text", "Form follows\n<?xml version='1.0' encoding='UTF-8'?><F><WEBFORM_TEMPL_ID>X</WEBFORM_TEMPL_ID></F>", true},
		{"nested ID", `<?xml version="1.0"?><A><B><WEBFORM_TEMPL_ID>X</WEBFORM_TEMPL_ID></B></A>`, true},
		{"no ID tag", `<?xml version="1.0"?><WEBFORM><EMAIL>a@b.c</EMAIL></WEBFORM>`, false},
		{"ID tag in prose without declaration", `Our form uses <WEBFORM_TEMPL_ID> tags.`, false},
		{"plain mail", "Hello, my printer is broken.", false},
	} {
		t.Run(tc.name, func(t *testing.T) { assert.Equal(t, tc.want, xmlapi.IsWebform(tc.body)) })
	}
}

func TestParseForm_FieldsRepeatedAndNested(t *testing.T) {
	f, err := xmlapi.ParseForm(strings.NewReader(contactUs[strings.Index(contactUs, "<?xml"):]), nil)
	require.NoError(t, err)
	assert.Equal(t, "WEBFORM", f.Root)
	assert.Equal(t, "CONTACT_US", f.TemplateID)
	assert.Equal(t, "My order & invoice do not match.", f.Fields.Get("QUESTION"))
	assert.Equal(t, []string{"Printer", "Toner"}, f.Fields.All("PRODUCT"))
	addr := f.Fields.Groups("ADDRESS")
	require.Len(t, addr, 1)
	assert.Equal(t, "Berlin", addr[0].Get("CITY"))
	v, ok := f.Fields.Lookup("ADDRESS.ZIP")
	assert.True(t, ok)
	assert.Equal(t, "10115", v)
	_, ok = f.Fields.Lookup("ADDRESS.STREET")
	assert.False(t, ok)
	var paths []string
	for _, fv := range f.Fields.Flatten() {
		paths = append(paths, fv.Path)
	}
	assert.Equal(t, []string{"WEBFORM_TEMPL_ID", "EMAIL", "NAME", "QUESTION", "PRODUCT", "PRODUCT", "ADDRESS.CITY", "ADDRESS.ZIP"}, paths)
}

// bigReader yields n bytes of an endless text element without holding
// them, so a 100 MB document costs no 100 MB.
type bigReader struct {
	head string
	n    int64
	read int64
}

func (b *bigReader) Read(p []byte) (int, error) {
	if b.read >= b.n {
		return 0, io.EOF
	}
	if rest := b.n - b.read; int64(len(p)) > rest {
		p = p[:rest]
	}
	k := 0
	if b.read < int64(len(b.head)) {
		k = copy(p, b.head[b.read:])
	}
	for i := k; i < len(p); i++ {
		p[i] = 'x'
	}
	b.read += int64(len(p))
	return len(p), nil
}

func TestParseForm_Rejections(t *testing.T) {
	deep := "<?xml version=\"1.0\"?>" + strings.Repeat("<a>", 10_000) + "<WEBFORM_TEMPL_ID>X</WEBFORM_TEMPL_ID>" + strings.Repeat("</a>", 10_000)
	laughs := `<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<WEBFORM><WEBFORM_TEMPL_ID>X</WEBFORM_TEMPL_ID><Q>&lol3;</Q></WEBFORM>`
	external := `<?xml version="1.0"?><!DOCTYPE f [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><WEBFORM><WEBFORM_TEMPL_ID>X</WEBFORM_TEMPL_ID><Q>&xxe;</Q></WEBFORM>`
	undeclared := `<?xml version="1.0"?><WEBFORM><WEBFORM_TEMPL_ID>X</WEBFORM_TEMPL_ID><Q>&xxe;</Q></WEBFORM>`
	for _, tc := range []struct {
		name string
		r    io.Reader
		want error
	}{
		{"billion laughs", strings.NewReader(laughs), xmlapi.ErrDoctype},
		{"external entity", strings.NewReader(external), xmlapi.ErrDoctype},
		{"undeclared entity", strings.NewReader(undeclared), xmlapi.ErrMalformed},
		{"depth 10,000", strings.NewReader(deep), xmlapi.ErrLimit},
		{"100 MB", &bigReader{head: `<?xml version="1.0"?><WEBFORM><WEBFORM_TEMPL_ID>X</WEBFORM_TEMPL_ID><Q>`, n: 100 << 20}, xmlapi.ErrLimit},
		{"unclosed", strings.NewReader(`<?xml version="1.0"?><WEBFORM><WEBFORM_TEMPL_ID>X</WEBFORM_TEMPL_ID>`), xmlapi.ErrMalformed},
		{"mismatched tags", strings.NewReader(`<WEBFORM><WEBFORM_TEMPL_ID>X</WEBFORM_TEMPL_ID></FORM>`), xmlapi.ErrMalformed},
		{"no template ID", strings.NewReader(`<WEBFORM><EMAIL>a@b.c</EMAIL></WEBFORM>`), xmlapi.ErrMalformed},
		{"empty template ID", strings.NewReader(`<WEBFORM><WEBFORM_TEMPL_ID> </WEBFORM_TEMPL_ID></WEBFORM>`), xmlapi.ErrMalformed},
		{"two template IDs", strings.NewReader(`<W><WEBFORM_TEMPL_ID>A</WEBFORM_TEMPL_ID><WEBFORM_TEMPL_ID>B</WEBFORM_TEMPL_ID></W>`), xmlapi.ErrMalformed},
		{"empty", strings.NewReader(""), xmlapi.ErrMalformed},
		{"text before root", strings.NewReader(`hello <W><WEBFORM_TEMPL_ID>A</WEBFORM_TEMPL_ID></W>`), xmlapi.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := xmlapi.ParseForm(tc.r, nil)
			require.Error(t, err)
			assert.Nil(t, f)
			assert.ErrorIs(t, err, tc.want)
			if b, ok := tc.r.(*bigReader); ok {
				assert.LessOrEqual(t, b.read, int64(1<<20)+64*1024, "the parser stops after MaxBytes")
			}
		})
	}
}

func TestParseForm_TokenLimit(t *testing.T) {
	doc := "<W><WEBFORM_TEMPL_ID>A</WEBFORM_TEMPL_ID>" + strings.Repeat("<F>1</F>", 100) + "</W>"
	_, err := xmlapi.ParseForm(strings.NewReader(doc), &xmlapi.Limits{MaxTokens: 50})
	assert.ErrorIs(t, err, xmlapi.ErrLimit)
	_, err = xmlapi.ParseForm(strings.NewReader(doc), &xmlapi.Limits{MaxTokens: 1000})
	assert.NoError(t, err)
}

// formHandler returns a handler over s with the CONTACT_US built-in
// handler and a Go handler for FEEDBACK; webforms come from the web
// server, authenticated by the test header.
func formHandler(t *testing.T, s *mailcase.Store, extra map[string]xmlapi.FormHandler) *xmlapi.Handler {
	t.Helper()
	return formHandlerLimits(t, s, extra, nil)
}

func formHandlerLimits(t *testing.T, s *mailcase.Store, extra map[string]xmlapi.FormHandler, lim *xmlapi.Limits) *xmlapi.Handler {
	t.Helper()
	cf, err := xmlapi.CaseForm(xmlapi.CaseFormOptions{Queue: "sales", SubjectField: "QUESTION", Fields: []string{"QUESTION", "PRODUCT", "ADDRESS.CITY"},
		ContactField: "EMAIL", NameField: "NAME", ReplyTemplate: "contact-us-thanks"})
	require.NoError(t, err)
	forms := map[string]xmlapi.FormHandler{"CONTACT_US": cf}
	for k, v := range extra {
		forms[k] = v
	}
	h, err := xmlapi.NewHandler(s, &xmlapi.HandlerOptions{
		AllowedSenders: []string{"forms@web.example.com"},
		Secret:         "s3cret",
		Forms:          forms,
		AdminQueue:     "forms-admin",
		Limits:         lim,
	})
	require.NoError(t, err)
	return h
}

func formDelivery(from, body string, authed bool) *mailcase.Delivery {
	d := delivery(from, body)
	d.Key = "support\x00" + fmt.Sprint(len(body)) + "\x00" + from
	if authed {
		d.Auth = mailauth.Result{Method: mailauth.MethodDKIM, Pass: true, Domain: "web.example.com", FromDomain: "web.example.com", Reason: "dkim=pass"}
	} else {
		d.Auth = mailauth.Result{Method: mailauth.MethodNone, Reason: "no dkim pass"}
	}
	return d
}

func TestWebform_BuiltInCaseForm(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	h := formHandler(t, s, nil)
	d := formDelivery("forms@web.example.com", contactUs, true)
	require.True(t, h.IsStructured(d.Message))

	ex := h.Explain(ctx, d)
	assert.Equal(t, "erms-webform", ex.Kind)
	assert.Equal(t, "CONTACT_US", ex.TemplateID)
	assert.True(t, ex.Authenticated)
	assert.Equal(t, "dkim", ex.AuthMethod)
	assert.Equal(t, "web.example.com", ex.AuthDomain)
	assert.Equal(t, "contact-us-thanks", ex.ReplyTemplate)
	assert.Empty(t, ex.Error)
	require.Len(t, ex.Actions, 2)
	assert.Equal(t, "createContact", ex.Actions[0].Name)
	assert.Equal(t, "createCase", ex.Actions[1].Name)
	assert.Equal(t, "sales", ex.Actions[1].Attrs["queue"])
	cases, err := s.ListCases(ctx, nil)
	require.NoError(t, err)
	assert.Empty(t, cases, "explain writes nothing")

	res, err := h.HandleStructured(ctx, d)
	require.NoError(t, err)
	assert.Equal(t, "ran 2 actions", res.Action)
	c, ok, err := s.GetCase(ctx, res.CaseID)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "sales", c.Queue)
	assert.Equal(t, "My order & invoice do not match.", c.Subject)
	contacts, err := s.FindContacts(ctx, "ann@example.com")
	require.NoError(t, err)
	require.Len(t, contacts, 1)
	assert.Equal(t, "Ann Smith", contacts[0].Name)
	assert.Equal(t, contacts[0].ID, c.ContactID)
	its, err := s.ListInteractions(ctx, c.ID)
	require.NoError(t, err)
	require.NotEmpty(t, its)
	require.NotNil(t, its[0].Email)
	assert.Equal(t, "QUESTION: My order & invoice do not match.\nPRODUCT: Printer\nPRODUCT: Toner\nADDRESS.CITY: Berlin\n", its[0].Email.Text)

	require.NotNil(t, res.Reply)
	assert.Equal(t, "contact-us-thanks", res.Reply.Template)
	assert.Equal(t, "ann@example.com", res.Reply.To)
	assert.Equal(t, "Printer, Toner", res.Reply.Vars["PRODUCT"])
	assert.Equal(t, "Berlin", res.Reply.Vars["ADDRESS.CITY"])

	// Redelivery: idempotent.
	res2, err := h.HandleStructured(ctx, d)
	require.NoError(t, err)
	assert.Equal(t, res.CaseID, res2.CaseID)
	cases, err = s.ListCases(ctx, nil)
	require.NoError(t, err)
	assert.Len(t, cases, 1)
}

func TestWebform_GoHandler(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	_, err := s.CreateContact(ctx, &mailcase.NewContact{Email: "forms@web.example.com", Name: "Web server"})
	require.NoError(t, err)
	var got *xmlapi.FormRequest
	h := formHandler(t, s, map[string]xmlapi.FormHandler{
		"FEEDBACK": xmlapi.FormHandlerFunc(func(_ context.Context, req *xmlapi.FormRequest) (xmlapi.FormResult, error) {
			got = req
			return xmlapi.FormResult{
				Actions: []xmlapi.Action{{XMLName: xmlName(xmlapi.ActCreateCase), Queue: "feedback", Priority: "low",
					Subject: "Feedback: " + req.Fields.Get("RATING"), Body: strings.Join(req.Fields.All("COMMENT"), "\n")}},
				Reply: &mailcase.StructuredReply{Template: "feedback-thanks", Vars: map[string]string{"rating": req.Fields.Get("RATING")}},
			}, nil
		}),
	})
	body := "  \n<FORM><META><WEBFORM_TEMPL_ID>FEEDBACK</WEBFORM_TEMPL_ID></META><RATING>5</RATING><COMMENT>Good</COMMENT><COMMENT>Fast</COMMENT><secret>s3cret</secret></FORM>"
	d := formDelivery("forms@web.example.com", body, false) // authenticated by the secret
	require.True(t, h.IsStructured(d.Message))
	res, err := h.HandleStructured(ctx, d)
	require.NoError(t, err)
	require.NotNil(t, got)
	assert.Equal(t, "FEEDBACK", got.TemplateID)
	assert.Equal(t, "shared-secret", got.Auth.Method)
	require.NotNil(t, got.Contact, "the sender's contact is matched")
	assert.Equal(t, "Web server", got.Contact.Name)
	assert.Empty(t, got.Fields.Get("secret"), "the secret is not a field")
	assert.Equal(t, "FEEDBACK", got.Fields.Groups("META")[0].Get(xmlapi.TemplateIDElement))
	c, ok, err := s.GetCase(ctx, res.CaseID)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "Feedback: 5", c.Subject)
	assert.Equal(t, "feedback", c.Queue)
	assert.Equal(t, mailcase.PriorityLow, c.Priority)
	require.NotNil(t, res.Reply)
	assert.Equal(t, "feedback-thanks", res.Reply.Template)
	assert.Empty(t, res.Reply.To, "the reply goes to the sender")
}

func TestWebform_ToAdminQueue(t *testing.T) {
	laughs := `<?xml version="1.0"?><!DOCTYPE l [<!ENTITY lol "lol">]><WEBFORM><WEBFORM_TEMPL_ID>CONTACT_US</WEBFORM_TEMPL_ID><Q>&lol;</Q></WEBFORM>`
	deep := `<?xml version="1.0"?>` + strings.Repeat("<a>", 10_000) + "<WEBFORM_TEMPL_ID>CONTACT_US</WEBFORM_TEMPL_ID>" + strings.Repeat("</a>", 10_000)
	huge := `<?xml version="1.0"?><WEBFORM><WEBFORM_TEMPL_ID>CONTACT_US</WEBFORM_TEMPL_ID><Q>` + strings.Repeat("x", 64<<10) + `</Q></WEBFORM>`
	for _, tc := range []struct {
		name, from, body string
		authed           bool
		reason           string
	}{
		{"unknown template ID", "forms@web.example.com", `<?xml version="1.0"?><WEBFORM><WEBFORM_TEMPL_ID>NOPE</WEBFORM_TEMPL_ID></WEBFORM>`, true, `unknown webform template ID "NOPE"`},
		{"malformed XML", "forms@web.example.com", `<?xml version="1.0"?><WEBFORM><WEBFORM_TEMPL_ID>CONTACT_US</WEBFORM_TEMPL_ID><EMAIL>x</WEBFORM>`, true, "malformed webform"},
		{"billion laughs", "forms@web.example.com", laughs, true, "DOCTYPE is not allowed"},
		{"depth 10,000", "forms@web.example.com", deep, true, "nested deeper than 16"},
		{"larger than the limit", "forms@web.example.com", huge, true, "larger than 32768 bytes"},
		{"unauthenticated sender", "forms@web.example.com", contactUs, false, "refused: sender is not authenticated (no valid secret; none: no dkim pass)"},
		{"sender not allowed", "mallory@evil.example", contactUs, true, "refused: sender is not on the structured-mail allow list"},
		{"built-in handler: bad contact field", "forms@web.example.com", `<?xml version="1.0"?><WEBFORM><WEBFORM_TEMPL_ID>CONTACT_US</WEBFORM_TEMPL_ID><EMAIL>not an address</EMAIL></WEBFORM>`, true, "field EMAIL is not a mail address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			s := newStore(t)
			h := formHandlerLimits(t, s, nil, &xmlapi.Limits{MaxBytes: 32 << 10})
			d := formDelivery(tc.from, tc.body, tc.authed)
			require.True(t, h.IsStructured(d.Message))
			ex := h.Explain(ctx, d)
			assert.Equal(t, "erms-webform", ex.Kind)
			assert.Contains(t, ex.Error, tc.reason)
			res, err := h.HandleStructured(ctx, d)
			require.NoError(t, err)
			assert.Equal(t, "admin", res.Action)
			assert.Contains(t, res.Reason, tc.reason)
			assert.Nil(t, res.Reply, "no automated reply to a refused form")
			cases, err := s.ListCases(ctx, nil)
			require.NoError(t, err)
			require.Len(t, cases, 1, "only the admin case")
			assert.Equal(t, "forms-admin", cases[0].Queue)
			its, err := s.ListInteractions(ctx, cases[0].ID)
			require.NoError(t, err)
			var kept bool
			for _, it := range its {
				if it.Email != nil && it.Email.Text == tc.body {
					kept = true
				}
			}
			assert.True(t, kept, "the original mail is kept on the admin case")
		})
	}
}

func TestWebform_MissingMarkersIsOrdinaryMail(t *testing.T) {
	s := newStore(t)
	h := formHandler(t, s, nil)
	for _, body := range []string{
		`<WEBFORM><EMAIL>ann@example.com</EMAIL></WEBFORM>`,
		"Hi, please see the <WEBFORM_TEMPL_ID> element of our form.",
		"Hello",
	} {
		assert.False(t, h.IsStructured(delivery("forms@web.example.com", body).Message), body)
	}
	// An HTML-only mail is not a webform: only the plain-text body is read.
	m := delivery("forms@web.example.com", contactUs).Message
	m.TextFromHTML = true
	assert.False(t, h.IsStructured(m))
	// Without any form handler, webforms are ordinary mail.
	h2, err := xmlapi.NewHandler(s, &xmlapi.HandlerOptions{AllowedSenders: []string{"forms@web.example.com"}})
	require.NoError(t, err)
	assert.False(t, h2.IsStructured(delivery("forms@web.example.com", contactUs).Message))
}

func TestWebform_GoHandlerErrors(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	transient := mailcase.NewError(mailcase.Unavailable, "crm", errors.New("down"))
	var calls int
	h := formHandler(t, s, map[string]xmlapi.FormHandler{
		"FLAKY": xmlapi.FormHandlerFunc(func(context.Context, *xmlapi.FormRequest) (xmlapi.FormResult, error) {
			calls++
			return xmlapi.FormResult{}, transient
		}),
		"BAD": xmlapi.FormHandlerFunc(func(context.Context, *xmlapi.FormRequest) (xmlapi.FormResult, error) {
			return xmlapi.FormResult{Actions: []xmlapi.Action{{XMLName: xmlName(xmlapi.ActSetStatus), Case: "1", Status: "bogus"}}}, nil
		}),
		"BADREPLY": xmlapi.FormHandlerFunc(func(context.Context, *xmlapi.FormRequest) (xmlapi.FormResult, error) {
			return xmlapi.FormResult{Reply: &mailcase.StructuredReply{Template: "t", To: "x\r\nBcc: victim@example.com"}}, nil
		}),
	})
	form := func(id string) string {
		return `<?xml version="1.0"?><WEBFORM><WEBFORM_TEMPL_ID>` + id + `</WEBFORM_TEMPL_ID></WEBFORM>`
	}
	_, err := h.HandleStructured(ctx, formDelivery("forms@web.example.com", form("FLAKY"), true))
	require.Error(t, err)
	assert.True(t, mailcase.IsRetryable(err))
	assert.Equal(t, 1, calls)

	res, err := h.HandleStructured(ctx, formDelivery("forms@web.example.com", form("BAD"), true))
	require.NoError(t, err)
	assert.Equal(t, "admin", res.Action)
	assert.Contains(t, res.Reason, `unknown status "bogus"`)

	res, err = h.HandleStructured(ctx, formDelivery("forms@web.example.com", form("BADREPLY"), true))
	require.NoError(t, err)
	assert.Equal(t, "admin", res.Action)
	assert.Contains(t, res.Reason, "is not a mail address")
}

func TestCaseForm_RejectsBadOptions(t *testing.T) {
	_, err := xmlapi.CaseForm(xmlapi.CaseFormOptions{Priority: "extreme"})
	assert.Error(t, err)
	_, err = xmlapi.CaseForm(xmlapi.CaseFormOptions{Queue: "a\nb"})
	assert.Error(t, err)
	_, err = xmlapi.NewHandler(newStore(t), &xmlapi.HandlerOptions{Forms: map[string]xmlapi.FormHandler{"X": nil}})
	assert.Error(t, err)
}

func TestRequest_ReplyElement(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	h, err := xmlapi.NewHandler(s, &xmlapi.HandlerOptions{AllowedSenders: []string{"@ops.example.com"}, Secret: "s3cret"})
	require.NoError(t, err)
	body := `<request xmlns="urn:emailcrm:mailcase:v1" version="1"><secret>s3cret</secret>
  <createCase queue="noc"><subject>Disk full on db1</subject><body>95%</body></createCase>
  <reply template="monitoring-ack"><var name="alert">A-77</var></reply></request>`
	d := delivery("nagios@ops.example.com", body)
	ex := h.Explain(ctx, d)
	assert.Equal(t, "request", ex.Kind)
	assert.Equal(t, "monitoring-ack", ex.ReplyTemplate)
	assert.Equal(t, "shared-secret", ex.AuthMethod)
	require.Len(t, ex.Actions, 1)
	assert.Equal(t, `createCase body="3 characters" queue="noc" subject="Disk full on db1"`, ex.Actions[0].String())
	res, err := h.HandleStructured(ctx, d)
	require.NoError(t, err)
	require.NotNil(t, res.Reply)
	assert.Equal(t, "monitoring-ack", res.Reply.Template)
	assert.Equal(t, map[string]string{"alert": "A-77"}, res.Reply.Vars)

	bad := strings.Replace(body, `template="monitoring-ack"`, `template=""`, 1)
	res, err = h.HandleStructured(ctx, delivery("nagios@ops.example.com", bad))
	require.NoError(t, err)
	assert.Equal(t, "admin", res.Action)
}
