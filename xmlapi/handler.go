package xmlapi

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/mailauth"
)

// Store is what the handler needs of a case store; *mailcase.Store
// satisfies it.
type Store interface {
	CreateCase(ctx context.Context, c *mailcase.NewCase) (mailcase.Case, error)
	FindCaseByNumber(ctx context.Context, number string) (mailcase.Case, bool, error)
	AddNote(ctx context.Context, id mailcase.CaseID, n *mailcase.Note) error
	UpdateCase(ctx context.Context, id mailcase.CaseID, u *mailcase.CaseUpdate) (mailcase.Case, error)
	FindContacts(ctx context.Context, addr string) ([]mailcase.Contact, error)
	CreateContact(ctx context.Context, c *mailcase.NewContact) (mailcase.Contact, error)
}

var _ Store = (*mailcase.Store)(nil)

// A Webform turns the fields of a webform request into actions and an
// automated reply text.
type Webform interface {
	HandleWebform(ctx context.Context, req *WebformRequest) (WebformResult, error)
}

// WebformFunc adapts a function to Webform.
type WebformFunc func(ctx context.Context, req *WebformRequest) (WebformResult, error)

// HandleWebform calls f(ctx, req).
func (f WebformFunc) HandleWebform(ctx context.Context, req *WebformRequest) (WebformResult, error) {
	return f(ctx, req)
}

// WebformRequest is what a Webform receives.
type WebformRequest struct {
	ID      string
	Fields  map[string]string
	From    mailcase.Address
	Message *mailcase.Message
}

// WebformResult is a Webform's output: actions to run (in order) and the
// text of the automated reply to send to the sender.
type WebformResult struct {
	Actions []Action
	Reply   string
}

// HandlerOptions configures a Handler. A nil *HandlerOptions is equivalent
// to a zero value, which authorises nobody.
type HandlerOptions struct {
	// AllowedSenders lists the addresses ("ops@example.com") and domains
	// ("@example.com") that may run actions. Empty means nobody.
	AllowedSenders []string
	// Secret is the shared secret a request may carry in <secret>; "" means
	// no secret is accepted. A request using it must carry <timestamp> and
	// <nonce> (see ReplayWindow).
	Secret string
	// ReplayWindow is how far a secret-authorised request's timestamp may
	// be from now, either way; a nonce is accepted once within it. 0 means
	// 15 minutes; negative is invalid.
	ReplayWindow time.Duration
	// MaxNonces bounds the nonces remembered in memory when the store
	// keeps no state; 0 means 10000.
	MaxNonces int
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Authenticated, if set, is asked when the pipeline's sender
	// authentication (Delivery.Auth) did not pass; nil means only
	// Delivery.Auth and the secret count.
	Authenticated func(m *mailcase.Message) bool
	// Forms maps ERMS webform template IDs (WEBFORM_TEMPL_ID) to their
	// handlers; it is copied at construction. Without any, ERMS webforms
	// are ordinary mail.
	Forms map[string]FormHandler
	// Webforms maps webform IDs to handlers; it is copied at construction.
	Webforms map[string]Webform
	// AdminQueue receives structured mail that cannot run; ""
	// means "admin".
	AdminQueue string
	// Limits bounds each request.
	Limits *Limits
	// Logger receives logs; nil means slog.Default().
	Logger *slog.Logger
}

// Handler runs structured mail against a Store. It implements
// mailcase.StructuredHandler and is safe for concurrent use.
type Handler struct {
	store    Store
	allowed  map[string]bool
	secret   []byte
	authn    func(m *mailcase.Message) bool
	webforms map[string]Webform
	forms    map[string]FormHandler
	admin    string
	limits   Limits
	log      *slog.Logger
	replay   *replayGuard
}

var _ mailcase.StructuredHandler = (*Handler)(nil)

// NewHandler returns a Handler over store. It fails on an invalid allow-list
// entry.
func NewHandler(store Store, opts *HandlerOptions) (*Handler, error) {
	if store == nil {
		return nil, errors.New("xmlapi: NewHandler with nil store")
	}
	var o HandlerOptions
	if opts != nil {
		o = *opts
	}
	h := &Handler{
		store:    store,
		allowed:  map[string]bool{},
		secret:   []byte(o.Secret),
		authn:    o.Authenticated,
		webforms: map[string]Webform{},
		forms:    map[string]FormHandler{},
		admin:    o.AdminQueue,
		limits:   o.Limits.withDefaults(),
		log:      o.Logger,
	}
	if h.admin == "" {
		h.admin = "admin"
	}
	if o.ReplayWindow < 0 {
		return nil, fmt.Errorf("xmlapi: negative replay window %s", o.ReplayWindow)
	}
	h.replay = newReplayGuard(store, o.ReplayWindow, o.MaxNonces, o.Now)
	if h.log == nil {
		h.log = slog.Default()
	}
	h.log = h.log.With("component", "xmlapi")
	for _, a := range o.AllowedSenders {
		if strings.HasPrefix(a, "@") {
			d := mailcase.NormalizeDomain(a[1:])
			if d == "" {
				return nil, fmt.Errorf("xmlapi: invalid allowed domain %q", a)
			}
			h.allowed["@"+d] = true
			continue
		}
		n := mailcase.NormalizeAddress(a)
		if n == "" {
			return nil, fmt.Errorf("xmlapi: invalid allowed sender %q", a)
		}
		h.allowed[n] = true
	}
	for id, w := range o.Webforms {
		if w == nil {
			return nil, fmt.Errorf("xmlapi: webform %q has a nil handler", id)
		}
		h.webforms[id] = w
	}
	for id, f := range o.Forms {
		if f == nil {
			return nil, fmt.Errorf("xmlapi: webform template %q has a nil handler", id)
		}
		if strings.TrimSpace(id) == "" {
			return nil, errors.New("xmlapi: empty webform template ID")
		}
		h.forms[id] = f
	}
	return h, nil
}

// IsStructured reports whether m carries a request of this API (a text
// body or an XML part whose root is in Namespace) or, when Forms are
// configured, is an ERMS webform (IsWebform on the plain-text body).
func (h *Handler) IsStructured(m *mailcase.Message) bool {
	_, ok := findXML(m)
	return ok || h.isWebform(m)
}

// findXML returns the request document of m: the text body when it is an
// XML document, else the first application/xml or text/xml part; only
// documents that name Namespace count.
func findXML(m *mailcase.Message) ([]byte, bool) {
	if t := strings.TrimSpace(m.Text); strings.HasPrefix(t, "<") && strings.Contains(t, Namespace) {
		return []byte(t), true
	}
	for _, a := range m.Attachments {
		ct := strings.ToLower(a.ContentType)
		if (ct == "application/xml" || ct == "text/xml") && bytes.Contains(a.Data, []byte(Namespace)) {
			return a.Data, true
		}
	}
	return nil, false
}

// credentials are what a document carries to be authorised by the shared
// secret: the secret with a timestamp and a nonce (the replay defence).
type credentials struct {
	secret, timestamp, nonce string
}

// authorise says whether the sender of d may run actions, how it was
// authenticated, and why not ("" when it may). The From address must be on
// the allow list; then the pipeline's sender authentication (d.Auth: an
// aligned DKIM signature or a trusted Authentication-Results field)
// suffices, else the shared secret with a fresh timestamp and an unused
// nonce (recorded for the mail with key when record is set; explain only
// checks), else HandlerOptions.Authenticated. Only store failures of the
// replay check are errors.
func (h *Handler) authorise(ctx context.Context, d *mailcase.Delivery, c credentials, key string, record bool) (mailauth.Result, string, error) {
	m := d.Message
	from := mailcase.NormalizeAddress(m.From.Email)
	if from == "" || !(h.allowed[from] || h.allowed["@"+mailcase.DomainOf(from)]) {
		return d.Auth, "sender is not on the structured-mail allow list", nil
	}
	// A pass counts only for the domain of this mail's From (the pipeline
	// checks it too; a Delivery built by hand may carry another mail's).
	if d.Auth.Pass && strings.EqualFold(d.Auth.FromDomain, mailcase.DomainOf(from)) {
		return d.Auth, "", nil
	}
	if len(h.secret) > 0 && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(c.secret)), h.secret) == 1 {
		if err := h.replay.check(ctx, &Request{Timestamp: c.timestamp, Nonce: c.nonce}, key, record); err != nil {
			if errors.Is(err, errReplay) {
				return d.Auth, "shared secret refused: " + strings.TrimPrefix(err.Error(), errReplay.Error()+": "), nil
			}
			return mailauth.Result{}, "", err
		}
		return mailauth.Result{Method: mailauth.MethodSharedSecret, Pass: true, FromDomain: mailcase.DomainOf(from),
			Reason: "shared secret with timestamp " + strings.TrimSpace(c.timestamp)}, "", nil
	}
	if h.authn != nil && h.authn(m) {
		return mailauth.Result{Method: mailauth.MethodCallback, Pass: true, FromDomain: mailcase.DomainOf(from), Reason: "HandlerOptions.Authenticated"}, "", nil
	}
	why := "sender is not authenticated (no valid secret"
	if d.Auth.Reason != "" {
		why += "; " + string(d.Auth.Method) + ": " + d.Auth.Reason
	}
	return d.Auth, why + ")", nil
}

// prepareRequest decodes and authorises a request of the own format and
// computes its actions (those of its webform handler, if it names one).
func (h *Handler) prepareRequest(ctx context.Context, d *mailcase.Delivery, data []byte, key string, record bool) (*plan, error) {
	m := d.Message
	p := &plan{kind: "request"}
	req, err := Decode(bytes.NewReader(data), &h.limits)
	if err != nil {
		return p, refuse("%s", err.Error())
	}
	p.templateID = req.Webform
	if err := p.authorise(ctx, h, d, credentials{req.Secret, req.Timestamp, req.Nonce}, key, record); err != nil {
		return p, err
	}
	p.actions = req.Actions
	if r := req.Reply; r != nil {
		p.reply = &mailcase.StructuredReply{Template: strings.TrimSpace(r.Template), To: strings.TrimSpace(r.To)}
		if len(r.Vars) > 0 {
			p.reply.Vars = make(map[string]string, len(r.Vars))
			for _, v := range r.Vars {
				p.reply.Vars[v.Name] = v.Value
			}
		}
		if err := checkReply(p.reply); err != nil {
			return p, refuse("request/reply: %v", err)
		}
	}
	if req.Webform == "" {
		return p, nil
	}
	w, ok := h.webforms[req.Webform]
	if !ok {
		return p, refuse("unknown webform %q", req.Webform)
	}
	fields := make(map[string]string, len(req.Fields))
	for _, f := range req.Fields {
		fields[f.Name] = f.Value
	}
	res, err := w.HandleWebform(ctx, &WebformRequest{ID: req.Webform, Fields: fields, From: m.From, Message: m})
	if err != nil {
		if mailcase.IsRetryable(err) {
			return p, err
		}
		return p, refuse("webform %q failed: %v", req.Webform, err)
	}
	if p.actions, err = h.checkActions(fmt.Sprintf("webform %q", req.Webform), res.Actions); err != nil {
		return p, err
	}
	p.legacy = res.Reply
	return p, nil
}

// HandleStructured decodes and authorises the request or ERMS webform of
// d.Message and runs its actions. Mail that cannot run is filed in the
// admin queue with the reason; only transient store failures are returned
// as errors (the pipeline retries them; every action is idempotent under
// the mail's key). The reply the document or form handler asks for is in
// the result (StructuredResult.Reply), for a Responder to send.
func (h *Handler) HandleStructured(ctx context.Context, d *mailcase.Delivery) (mailcase.StructuredResult, error) {
	m := d.Message
	key := d.Key
	if key == "" {
		key = mailcase.IdempotencyKey(mailboxName(d), m)
	}
	p, err := h.prepare(ctx, d, key, true)
	var ref *refusal
	if errors.As(err, &ref) {
		if strings.HasPrefix(ref.msg, "refused: ") {
			h.log.WarnContext(ctx, "structured mail refused", "msg_id", m.ID, "reason", strings.TrimPrefix(ref.msg, "refused: "))
		}
		return h.toAdmin(ctx, d, key, ref.msg)
	}
	if err != nil {
		return mailcase.StructuredResult{}, err
	}
	r := runner{h: h, d: d, key: key}
	n, err := r.run(ctx, p.actions)
	if err != nil {
		if mailcase.IsRetryable(err) {
			return mailcase.StructuredResult{}, err
		}
		return h.toAdmin(ctx, d, key, fmt.Sprintf("action %d failed: %v", n+1, err))
	}
	res := mailcase.StructuredResult{CaseID: r.current, Action: fmt.Sprintf("ran %d actions", n), Reply: p.reply, Auth: &p.result}
	if p.kind == "erms-webform" {
		res.Reason = "webform " + p.templateID
	}
	if p.legacy != "" {
		res.Reason = "webform reply: " + p.legacy
	}
	if p.auth.Method != "" {
		res.Reason = strings.TrimPrefix(res.Reason+"; authenticated by "+p.auth.Method, "; ")
	}
	return res, nil
}

// toAdmin files the mail as a new case in the admin queue with reason as a
// note, so it is kept and seen. Secrets are redacted from what is
// filed: whoever reads the admin queue must not learn the shared secret.
func (h *Handler) toAdmin(ctx context.Context, d *mailcase.Delivery, key, reason string) (mailcase.StructuredResult, error) {
	m := d.Message
	first := m.ToEmail(key, mailboxName(d))
	first.Text = string(h.redact([]byte(first.Text)))
	first.ReplyText = string(h.redact([]byte(first.ReplyText)))
	first.HTML = string(h.redact([]byte(first.HTML)))
	if len(first.Attachments) > 0 {
		atts := make([]mailcase.Attachment, len(first.Attachments))
		for i, a := range first.Attachments {
			a.Data = h.redact(a.Data)
			a.Size = int64(len(a.Data))
			atts[i] = a
		}
		first.Attachments = atts
	}
	c, err := h.store.CreateCase(ctx, &mailcase.NewCase{
		Subject:  "Structured mail needs attention: " + m.Subject,
		Queue:    h.admin,
		Origin:   "structured-mail",
		Priority: mailcase.PriorityNormal,
		First:    first,
	})
	if err != nil {
		return mailcase.StructuredResult{}, err
	}
	if err := h.store.AddNote(ctx, c.ID, &mailcase.Note{IdempotencyKey: key + "#admin-note", Author: "xmlapi", Body: reason}); err != nil {
		return mailcase.StructuredResult{}, err
	}
	return mailcase.StructuredResult{CaseID: c.ID, Action: "admin", Reason: reason}, nil
}

// secretElement matches a secret element, with or without a namespace
// prefix, in XML or HTML-escaped XML (RE2: linear time).
var secretElement = regexp.MustCompile(`(?is)(<|&lt;)([a-z0-9_.-]+:)?secret\b[^>&]*?(>|&gt;).*?(<|&lt;)/([a-z0-9_.-]+:)?secret\s*(>|&gt;)`)

// redact removes the content of secret elements and every occurrence of the
// configured secret from b.
func (h *Handler) redact(b []byte) []byte {
	if len(b) == 0 {
		return b
	}
	if bytes.Contains(bytes.ToLower(b), []byte("secret")) { // the regexp is linear but slow on a large body
		b = secretElement.ReplaceAll(b, []byte("${1}${2}secret${3}[redacted]${4}/${5}secret${6}"))
	}
	if len(h.secret) > 0 {
		b = bytes.ReplaceAll(b, h.secret, []byte("[redacted]"))
	}
	return b
}

func mailboxName(d *mailcase.Delivery) string {
	if d.Mailbox == nil || d.Mailbox.Name == "" {
		return "default"
	}
	return d.Mailbox.Name
}

// runner executes actions in order, remembering the last case created or
// named so that later actions may omit the case attribute.
type runner struct {
	h       *Handler
	d       *mailcase.Delivery
	key     string
	current mailcase.CaseID
}

// run executes actions and returns how many ran; on error, the index of the
// failing action. The record actions run first, as one batch (runRecords).
func (r *runner) run(ctx context.Context, actions []Action) (int, error) {
	n, failed, err := r.runRecords(ctx, actions)
	if err != nil {
		return failed, err
	}
	for i, a := range actions {
		if a.XMLName.Space != Namespace || !knownAction(a.XMLName.Local) || r.recordPhase(a) {
			continue
		}
		if err := r.one(ctx, i, a); err != nil {
			return i, err
		}
		n++
	}
	return n, nil
}

func (r *runner) caseOf(ctx context.Context, a Action) (mailcase.CaseID, error) {
	num := strings.TrimSpace(a.Case)
	if num == "" {
		return r.current, nil
	}
	c, ok, err := r.h.store.FindCaseByNumber(ctx, num)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", mailcase.NewError(mailcase.NotFound, a.XMLName.Local, fmt.Errorf("no case %s", num))
	}
	r.current = c.ID
	return c.ID, nil
}

func (r *runner) one(ctx context.Context, i int, a Action) error {
	st := r.h.store
	akey := fmt.Sprintf("%s#%d", r.key, i)
	switch a.XMLName.Local {
	case ActCreateContact:
		if strings.TrimSpace(a.Account) != "" || len(a.Fields) > 0 {
			return mailcase.NewError(mailcase.Unimplemented, a.XMLName.Local, errors.New("the store keeps no contact records with accounts or fields"))
		}
		if _, err := r.contact(ctx, a.Email, a.Name); err != nil {
			return err
		}
		return nil
	case ActCreateCase:
		var contactID, accountID string
		if a.Contact != "" {
			c, err := r.contact(ctx, a.Contact, "")
			if err != nil {
				return err
			}
			contactID, accountID = c.ID, c.AccountID
		}
		first := r.d.Message.ToEmail(akey, mailboxName(r.d))
		first.Subject = a.Subject
		first.Text, first.ReplyText, first.HTML = a.Body, a.Body, ""
		first.Attachments = nil
		c, err := st.CreateCase(ctx, &mailcase.NewCase{
			Subject: a.Subject, Priority: mailcase.Priority(a.Priority),
			Queue: a.Queue, Origin: "structured-mail", ContactID: contactID, AccountID: accountID,
			First: first,
		})
		if err != nil {
			return err
		}
		r.current = c.ID
		return nil
	}
	id, err := r.caseOf(ctx, a)
	if err != nil {
		return err
	}
	var u mailcase.CaseUpdate
	switch a.XMLName.Local {
	case ActAddNote:
		return st.AddNote(ctx, id, &mailcase.Note{IdempotencyKey: akey, Author: r.d.Message.From.Email, Body: a.Body, Public: a.Public})
	case ActSetStatus:
		s := mailcase.CaseStatus(a.Status)
		u.Status = &s
	case ActSetPriority:
		p := mailcase.Priority(a.Priority)
		u.Priority = &p
	case ActDispatch:
		q := a.Queue
		u.Queue = &q
	case ActAssign:
		o := a.Owner
		u.Owner = &o
	case ActClose:
		s := mailcase.StatusClosed
		u.Status = &s
	}
	_, err = st.UpdateCase(ctx, id, &u)
	return err
}

// contact finds the contact with addr or creates it.
func (r *runner) contact(ctx context.Context, addr, name string) (mailcase.Contact, error) {
	cs, err := r.h.store.FindContacts(ctx, addr)
	if err != nil {
		return mailcase.Contact{}, err
	}
	if len(cs) > 0 {
		return cs[0], nil
	}
	return r.h.store.CreateContact(ctx, &mailcase.NewContact{Email: addr, Name: name})
}
