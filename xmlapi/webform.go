package xmlapi

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/mailauth"
)

// A FormHandler processes one kind of ERMS webform (the seed's
// "application class" of a webform ID): it turns the form's fields into
// actions, which the Handler applies in order, and asks for an automated
// reply. It must make no change itself: explain calls it to show what a
// form would do.
type FormHandler interface {
	HandleForm(ctx context.Context, req *FormRequest) (FormResult, error)
}

// FormHandlerFunc adapts a function to FormHandler.
type FormHandlerFunc func(ctx context.Context, req *FormRequest) (FormResult, error)

// HandleForm calls f(ctx, req).
func (f FormHandlerFunc) HandleForm(ctx context.Context, req *FormRequest) (FormResult, error) {
	return f(ctx, req)
}

// FormRequest is what a FormHandler receives.
type FormRequest struct {
	// TemplateID is the form's WEBFORM_TEMPL_ID.
	TemplateID string
	// Fields are the form's fields (repeated fields and nested groups
	// kept; the shared secret removed).
	Fields FormFields
	// From is the mail's sender (the webform server) and Contact the
	// store's contact with that address, nil when none.
	From    mailcase.Address
	Contact *mailcase.Contact
	// Auth is how the sender was authenticated.
	Auth Auth
	// Message is the whole mail.
	Message *mailcase.Message
}

// FormResult is what a FormHandler returns: actions to run in order (as
// in the own format; the case attribute may be left out after a
// createCase) and the automated reply, nil for none.
type FormResult struct {
	Actions []Action
	Reply   *mailcase.StructuredReply
}

// Auth is the result of a sender's authentication.
type Auth struct {
	// OK: the sender is authenticated.
	OK bool `json:"ok"`
	// Method is how: "secret" (the shared secret), or the passing method
	// of the authentication result ("dkim", "spf", "dmarc").
	Method string `json:"method,omitempty"`
	// Domain is the authenticated domain, "" for the secret.
	Domain string `json:"domain,omitempty"`
	// Reason says why, in words (never the secret).
	Reason string `json:"reason,omitempty"`
}

// CaseFormOptions configures CaseForm.
type CaseFormOptions struct {
	// Queue is the queue of the new case; "" means the store's default.
	Queue string
	// Priority is the case's priority; "" means normal.
	Priority string
	// Subject is the case's subject; SubjectField, when set and present
	// in the form, overrides it. Both empty means "Webform <ID>".
	Subject      string
	SubjectField string
	// Fields are the dotted field paths ("QUESTION", "ADDRESS.CITY")
	// written into the case's description, one "path: value" line each,
	// in this order; empty means every field of the form.
	Fields []string
	// ContactField names the field with the customer's address: the
	// case's contact (created when unknown) and the reply's recipient;
	// "" means the sender. NameField names the field with the customer's
	// name for a new contact.
	ContactField string
	NameField    string
	// ReplyTemplate names the reply's template; "" sends no reply. The
	// reply's variables are the form's fields by dotted path (a repeated
	// field's values joined with ", ").
	ReplyTemplate string
}

// CaseForm returns a built-in FormHandler that creates a case from a form
// and replies with a template, so a webform works without writing Go.
func CaseForm(o CaseFormOptions) (FormHandler, error) {
	if o.Priority != "" && !validPriority(o.Priority) {
		return nil, fmt.Errorf("xmlapi: case form: unknown priority %q", o.Priority)
	}
	for _, s := range append([]string{o.Queue, o.Subject, o.ReplyTemplate}, o.Fields...) {
		if strings.ContainsAny(s, "\r\n") {
			return nil, errors.New("xmlapi: case form: queue, subject, fields and reply template are one line each")
		}
	}
	o.Fields = append([]string(nil), o.Fields...)
	return FormHandlerFunc(func(_ context.Context, req *FormRequest) (FormResult, error) {
		return o.handle(req)
	}), nil
}

func (o CaseFormOptions) handle(req *FormRequest) (FormResult, error) {
	fs := req.Fields
	subject := o.Subject
	if o.SubjectField != "" {
		if v, ok := fs.Lookup(o.SubjectField); ok && strings.TrimSpace(v) != "" {
			subject = v
		}
	}
	if strings.TrimSpace(subject) == "" {
		subject = "Webform " + req.TemplateID
	}
	subject = strings.Join(strings.Fields(subject), " ")
	var b strings.Builder
	if len(o.Fields) == 0 {
		for _, v := range fs.Flatten() {
			if v.Path != TemplateIDElement {
				fmt.Fprintf(&b, "%s: %s\n", v.Path, v.Value)
			}
		}
	} else {
		all := fs.Flatten()
		for _, p := range o.Fields {
			for _, v := range all {
				if v.Path == p {
					fmt.Fprintf(&b, "%s: %s\n", v.Path, v.Value)
				}
			}
		}
	}
	body := b.String()
	if body == "" {
		body = "(the form has no fields)"
	}
	contact := req.From.Email
	name := req.From.Name
	if o.ContactField != "" {
		v, _ := fs.Lookup(o.ContactField)
		contact = mailcase.NormalizeAddress(v)
		if contact == "" {
			return FormResult{}, fmt.Errorf("field %s is not a mail address", o.ContactField)
		}
		name = ""
		if o.NameField != "" {
			name, _ = fs.Lookup(o.NameField)
		}
	}
	var acts []Action
	if contact != "" {
		acts = append(acts, Action{XMLName: actionName(ActCreateContact), Email: contact, Name: oneLine(name)})
	}
	acts = append(acts, Action{XMLName: actionName(ActCreateCase), Contact: contact, Queue: o.Queue,
		Priority: o.Priority, Subject: subject, Body: body})
	res := FormResult{Actions: acts}
	if o.ReplyTemplate != "" {
		vars := map[string]string{}
		for _, v := range fs.Flatten() {
			if old, ok := vars[v.Path]; ok {
				vars[v.Path] = old + ", " + v.Value
			} else {
				vars[v.Path] = v.Value
			}
		}
		res.Reply = &mailcase.StructuredReply{Template: o.ReplyTemplate, Vars: vars}
		if o.ContactField != "" {
			res.Reply.To = contact
		}
	}
	return res, nil
}

func actionName(local string) (n struct{ Space, Local string }) {
	n.Space, n.Local = Namespace, local
	return n
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// ExplainedAction is one action as explain shows it: its name and the
// attributes it carries.
type ExplainedAction struct {
	Name  string            `json:"name"`
	Attrs map[string]string `json:"attrs,omitempty"`
}

// Explanation says what the Handler would do with a mail, without doing
// it (explain).
type Explanation struct {
	// Kind is "erms-webform" or "request" (the own format); "" when the
	// mail is not structured.
	Kind       string `json:"kind"`
	TemplateID string `json:"template_id"`
	// Authenticated, AuthMethod and AuthDomain say how the sender was
	// authenticated (Auth).
	Authenticated bool              `json:"authenticated"`
	AuthMethod    string            `json:"auth_method"`
	AuthDomain    string            `json:"auth_domain"`
	Actions       []ExplainedAction `json:"actions"`
	ReplyTemplate string            `json:"reply_template"`
	// Error is why the mail would go to the admin queue, "" when it runs.
	Error string `json:"error"`
}

// Explain reports what HandleStructured would do with d (its Message and
// the pipeline's sender authentication, Auth), writing nothing: a nonce is
// checked, not recorded (a FormHandler or Webform is called to learn its
// actions).
func (h *Handler) Explain(ctx context.Context, d *mailcase.Delivery) Explanation {
	ex := Explanation{Actions: []ExplainedAction{}}
	key := d.Key
	if key == "" {
		key = mailcase.IdempotencyKey(mailboxName(d), d.Message)
	}
	p, err := h.prepare(ctx, d, key, false)
	if p != nil {
		ex.Kind, ex.TemplateID = p.kind, p.templateID
		ex.Authenticated, ex.AuthMethod, ex.AuthDomain = p.auth.OK, p.auth.Method, p.auth.Domain
		for _, a := range p.actions {
			if a.XMLName.Space == Namespace && knownAction(a.XMLName.Local) {
				ex.Actions = append(ex.Actions, explainAction(a))
			}
		}
		if p.reply != nil {
			ex.ReplyTemplate = p.reply.Template
		}
	}
	if err != nil {
		ex.Error = err.Error()
	}
	return ex
}

func explainAction(a Action) ExplainedAction {
	attrs := map[string]string{}
	for k, v := range map[string]string{"case": a.Case, "contact": a.Contact, "email": a.Email, "name": a.Name,
		"status": a.Status, "priority": a.Priority, "queue": a.Queue, "owner": a.Owner, "subject": a.Subject} {
		if v != "" {
			attrs[k] = v
		}
	}
	if a.Public {
		attrs["public"] = "true"
	}
	if a.Body != "" {
		attrs["body"] = fmt.Sprintf("%d characters", len(a.Body))
	}
	return ExplainedAction{Name: a.XMLName.Local, Attrs: attrs}
}

// String renders an explained action on one line.
func (a ExplainedAction) String() string {
	keys := make([]string, 0, len(a.Attrs))
	for k := range a.Attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%q", k, a.Attrs[k])
	}
	return a.Name + " " + strings.Join(parts, " ")
}

// plan is a structured mail decoded, authorised and turned into actions.
type plan struct {
	kind       string // "erms-webform" or "request"
	templateID string
	auth       Auth
	result     mailauth.Result // the authentication as the pipeline reports it
	actions    []Action
	reply      *mailcase.StructuredReply
	legacy     string // the own format's webform reply text
}

// refusal is an error that sends the mail to the admin queue.
type refusal struct{ msg string }

func (r *refusal) Error() string { return r.msg }

func refuse(format string, args ...any) error { return &refusal{msg: fmt.Sprintf(format, args...)} }

// prepare decodes and authorises m and computes its actions. A *refusal
// error sends the mail to the admin queue; another error is a store or
// handler failure.
func (h *Handler) prepare(ctx context.Context, d *mailcase.Delivery, key string, record bool) (*plan, error) {
	m := d.Message
	if data, ok := findXML(m); ok {
		return h.prepareRequest(ctx, d, data, key, record)
	}
	if !h.isWebform(m) {
		return nil, refuse("no structured request found")
	}
	p := &plan{kind: "erms-webform"}
	form, err := ParseForm(strings.NewReader(webformDocument(m.Text)), &h.limits)
	if err != nil {
		return p, refuse("malformed webform: %v", err)
	}
	p.templateID = form.TemplateID
	if err := p.authorise(ctx, h, d, credentials{form.secret, form.Fields.Get("timestamp"), form.Fields.Get("nonce")}, key, record); err != nil {
		return p, err
	}
	fh, ok := h.forms[form.TemplateID]
	if !ok {
		return p, refuse("unknown webform template ID %q", form.TemplateID)
	}
	req := &FormRequest{TemplateID: form.TemplateID, Fields: form.Fields, From: m.From, Auth: p.auth, Message: m}
	if from := mailcase.NormalizeAddress(m.From.Email); from != "" {
		cs, err := h.store.FindContacts(ctx, from)
		if err != nil {
			return p, err
		}
		if len(cs) > 0 {
			req.Contact = &cs[0]
		}
	}
	res, err := fh.HandleForm(ctx, req)
	if err != nil {
		if mailcase.IsRetryable(err) {
			return p, err
		}
		return p, refuse("webform %q failed: %v", form.TemplateID, err)
	}
	if p.actions, err = h.checkActions("webform "+form.TemplateID, res.Actions); err != nil {
		return p, err
	}
	if res.Reply != nil {
		if err := checkReply(res.Reply); err != nil {
			return p, refuse("webform %q: %v", form.TemplateID, err)
		}
	}
	p.reply = res.Reply
	return p, nil
}

// isWebform reports whether m's text body is an ERMS webform. Only the
// plain-text body is read (the seed keeps only plain text and files other
// parts as attachments); a mail whose text is derived from HTML is not a
// webform.
func (h *Handler) isWebform(m *mailcase.Message) bool {
	return len(h.forms) > 0 && !m.TextFromHTML && IsWebform(m.Text)
}

// checkActions validates the actions a handler produced.
func (h *Handler) checkActions(who string, acts []Action) ([]Action, error) {
	if len(acts) > h.limits.MaxActions {
		return nil, refuse("%s produced more than %d actions", who, h.limits.MaxActions)
	}
	sub := Request{Version: "1", Actions: append([]Action(nil), acts...)}
	for i := range sub.Actions {
		if sub.Actions[i].XMLName.Space == "" {
			sub.Actions[i].XMLName.Space = Namespace
		}
	}
	if err := sub.Validate(); err != nil {
		return nil, refuse("%s produced an invalid action: %v", who, err)
	}
	return sub.Actions, nil
}

// checkReply validates a requested reply: a one-line template name and a
// valid recipient.
func checkReply(r *mailcase.StructuredReply) error {
	if strings.TrimSpace(r.Template) == "" || strings.ContainsAny(r.Template, "\r\n") {
		return errors.New("reply without a (one-line) template name")
	}
	if r.To != "" && mailcase.NormalizeAddress(r.To) == "" {
		return fmt.Errorf("reply recipient %q is not a mail address", r.To)
	}
	return nil
}

// authorise authorises the plan's sender (Handler.authorise) and records
// how; a refused sender is a *refusal.
func (p *plan) authorise(ctx context.Context, h *Handler, d *mailcase.Delivery, c credentials, key string, record bool) error {
	r, why, err := h.authorise(ctx, d, c, key, record)
	if err != nil {
		return err
	}
	p.result = r
	p.auth = Auth{OK: why == "" && r.Pass, Method: string(r.Method), Domain: r.Domain, Reason: r.Reason}
	if why != "" {
		p.auth.OK = false
		p.auth.Reason = why
		return refuse("refused: %s", why)
	}
	return nil
}
