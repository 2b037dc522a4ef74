package outbox

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/mail"
	"net/textproto"
	"slices"
	"strings"
	"time"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/threading"
)

// MailerOptions configures a Mailer.
type MailerOptions struct {
	// From is the mailbox's support address and name. Required.
	From mail.Address
	// FromAgent sends a Log Email From the agent's address, with Reply-To
	// the support address (so replies still come to the mailbox); false
	// sends it From the support address.
	FromAgent bool
	// Codec signs the Message-ID, token and reference line. Required: a
	// Log Email must thread back.
	Codec *threading.Codec
	// Format writes the case number in the subject; the zero value means
	// threading.FormatDovetail() ("About Case 1234 :: title").
	Format threading.SubjectFormat
	// SubjectToken also puts the signed thread token ([ref:...]) in the
	// subject, which survives clients that drop every header.
	SubjectToken bool
	// LogEmail renders a Log Email; nil means the shipped template.
	LogEmail *Template
	// Mailbox names the mailbox the mail is sent for, on the filed mail
	// and the outbox row.
	Mailbox string
	// Cases is the store of the cases, where a Log Email is read and
	// filed; nil means the outbox's store (a CRM store paired with a local
	// SQL outbox sets it to the CRM).
	Cases *mailcase.Store
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Mailer sends mail that agents write on cases.
type Mailer struct {
	store *mailcase.Store
	o     MailerOptions
}

// NewMailer returns a Mailer queueing into store's outbox; the cases are
// in opts.Cases, or in store too.
func NewMailer(store *mailcase.Store, opts *MailerOptions) (*Mailer, error) {
	if store == nil || opts == nil {
		return nil, errors.New("outbox: a mailer needs a store and options")
	}
	o := *opts
	switch {
	case !store.CanOutbox():
		return nil, errors.New("outbox: the store keeps no outbox")
	case mailcase.NormalizeAddress(o.From.Address) == "":
		return nil, fmt.Errorf("outbox: mailer From %q is not an address", o.From.Address)
	case o.Codec == nil:
		return nil, errors.New("outbox: a mailer needs a threading codec, so that replies thread back")
	}
	if o.LogEmail == nil {
		t, err := ParseTemplate(KindLogEmail, ShippedTemplates()[KindLogEmail])
		if err != nil {
			return nil, err
		}
		o.LogEmail = t
	}
	if o.Cases == nil {
		o.Cases = store
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Mailer{store: store, o: o}, nil
}

// LogEmail is an agent's mail on a case.
type LogEmail struct {
	// Key makes LogEmail idempotent: the same Key files and queues the
	// mail once, so a caller that got an error calls again with it.
	// Required.
	Key string
	// Case is the case the mail is about. Required.
	Case mailcase.CaseID
	// Agent wrote it (name and address; the address is From under
	// FromAgent).
	Agent mailcase.Employee
	// To, Cc and Bcc are the recipients; To empty means the sender of
	// the case's last inbound mail (an error when it has none).
	To, Cc, Bcc []mail.Address
	// Title is the subject's title; "" means the case's subject.
	Title string
	// Body is the agent's text; HTML an optional HTML version.
	Body, HTML  string
	Attachments []Attachment
	// Parent is the Message-ID of the mail answered; "" means the last
	// inbound mail of the case. A Parent that is not a mail of the case is
	// an error (a typo would otherwise start a new conversation).
	Parent string
}

// LogEmail files e on its case as an outbound mail and queues it. The
// subject carries the case number; the Message-ID is signed; In-Reply-To,
// References (at most 20) and Thread-Index continue the parent's thread;
// the body ends with the signed reference line. It returns the outbox ID.
// A recipient from input is refused, not repaired, when it is not an
// address (outbox.ErrInvalidAddress); nothing is filed or queued then.
// A call repeated with the same Key after an error queues the mail as
// filed by the first call (its raw bytes, so the Message-ID on the case is
// the one sent) when the store keeps raw mail.
func (m *Mailer) LogEmail(ctx context.Context, e *LogEmail) (string, error) {
	return m.logEmail(ctx, e, "")
}

// logEmail is LogEmail; owner, when set, must own the case's work item.
// Where the store checks ownership and queues in one atomic step
// (mailcase.Store.CanEnqueueAsOwner, the cases and the outbox in one
// store), the mail is queued that way first and filed after: a mail the
// check refuses is neither queued nor filed, and a call repeated after a
// failed filing files the mail that was queued.
func (m *Mailer) logEmail(ctx context.Context, e *LogEmail, owner string) (string, error) {
	if e == nil || e.Key == "" || e.Case == "" || strings.TrimSpace(e.Body) == "" {
		return "", errors.New("outbox: a Log Email needs a key, a case and a body")
	}
	c, ok, err := m.o.Cases.GetCase(ctx, e.Case)
	if err != nil {
		return "", fmt.Errorf("outbox: Log Email: %w", err)
	}
	if !ok {
		return "", fmt.Errorf("outbox: Log Email: case %s not found", e.Case)
	}
	key := "log-email\x00" + e.Key
	enqueue := m.store.Enqueue
	atomic := owner != "" && m.store == m.o.Cases && m.store.CanEnqueueAsOwner()
	if atomic {
		enqueue = func(ctx context.Context, msg *driver.OutboxMessage) (string, error) {
			return m.store.EnqueueAsOwner(ctx, c.ID, owner, msg)
		}
	}
	if id, done, err := m.resume(ctx, c.ID, key, e, enqueue); done || err != nil {
		return id, err
	}
	parent, lastFrom, err := m.parent(ctx, c.ID, e.Parent)
	if err != nil {
		return "", err
	}
	to := e.To
	if len(to) == 0 && lastFrom.Email != "" {
		to = []mail.Address{{Name: lastFrom.Name, Address: lastFrom.Email}}
	}
	h, err := m.o.Codec.Outgoing(&threading.OutgoingRequest{Case: c, Title: e.Title, Parent: parent, Format: m.o.Format, SubjectToken: m.o.SubjectToken})
	if err != nil {
		return "", fmt.Errorf("outbox: Log Email: %w", err)
	}
	out, err := m.o.LogEmail.Render(&TemplateData{Case: c, Queue: c.Queue, Agent: e.Agent, Subject: h.Subject,
		Reference: h.ContextLine, Body: e.Body, Mailbox: TemplateMailbox{Address: m.o.From.Address}})
	if err != nil {
		return "", fmt.Errorf("outbox: Log Email: %w", err)
	}
	msg := &Message{From: m.o.From, To: to, Cc: e.Cc, Bcc: e.Bcc, Subject: out.Subject, Date: m.o.Now(),
		MessageID: h.MessageID, InReplyTo: h.InReplyTo, References: h.References,
		Text: out.Text, HTML: e.HTML, Attachments: e.Attachments}
	if m.o.FromAgent && e.Agent.Email != "" {
		msg.From = mail.Address{Name: e.Agent.Name, Address: e.Agent.Email}
		msg.ReplyTo = []mail.Address{m.o.From}
	}
	if h.ThreadIndex != "" {
		msg.Headers = append(msg.Headers, Field{Name: "Thread-Index", Value: h.ThreadIndex}, Field{Name: "Thread-Topic", Value: h.ThreadTopic})
	}
	composed, err := Compose(msg, nil)
	if err != nil {
		return "", fmt.Errorf("outbox: Log Email: %w", err)
	}
	filed := &mailcase.Email{IdempotencyKey: key, Mailbox: m.o.Mailbox, Direction: driver.Outbound, MessageID: composed.MessageID,
		From: mailcase.Address{Name: msg.From.Name, Email: msg.From.Address}, Subject: out.Subject, Date: msg.Date,
		Text: out.Text, ReplyText: out.Text, HTML: e.HTML, Raw: composed.Raw}
	if parent != nil {
		filed.InReplyTo, filed.References = []string{parent.ID}, parent.ThreadIDs()
	}
	for _, a := range to {
		filed.To = append(filed.To, mailcase.Address{Name: a.Name, Email: a.Address})
	}
	for _, a := range e.Cc {
		filed.Cc = append(filed.Cc, mailcase.Address{Name: a.Name, Email: a.Address})
	}
	for _, a := range e.Attachments {
		filed.Attachments = append(filed.Attachments, mailcase.Attachment{Filename: a.Filename, ContentType: a.ContentType, Data: a.Data})
	}
	queued := &driver.OutboxMessage{Key: key, CaseID: c.ID, Mailbox: m.o.Mailbox, Kind: KindLogEmail,
		From: composed.From, To: composed.Recipients, MessageID: composed.MessageID, Raw: composed.Raw}
	if atomic {
		// Queued (with the ownership check) first, then filed.
		id, err := enqueue(ctx, queued)
		if err != nil {
			return "", fmt.Errorf("outbox: Log Email: %w", err)
		}
		if q, ok, err := m.store.GetOutbox(ctx, id); err == nil && ok && q.MessageID != composed.MessageID {
			// Queued by an earlier call whose filing failed: file the
			// mail that goes out.
			filed.MessageID, filed.Raw = q.MessageID, q.Raw
		}
		if err := m.o.Cases.AppendEmail(ctx, c.ID, filed); err != nil {
			return "", fmt.Errorf("outbox: Log Email: file on the case: %w", err)
		}
		return id, nil
	}
	// Filed first, then queued, both idempotent by the key: a call
	// repeated after an error completes what the first one began.
	if err := m.o.Cases.AppendEmail(ctx, c.ID, filed); err != nil {
		return "", fmt.Errorf("outbox: Log Email: file on the case: %w", err)
	}
	id, err := enqueue(ctx, queued)
	if err != nil {
		return "", fmt.Errorf("outbox: Log Email: %w", err)
	}
	return id, nil
}

// parent returns the mail answered (the given Message-ID, else the last
// inbound mail of the case) as threading needs it, and the sender of the
// last inbound mail.
func (m *Mailer) parent(ctx context.Context, id mailcase.CaseID, want string) (*mailcase.Message, mailcase.Address, error) {
	ins, err := m.o.Cases.ListInteractions(ctx, id)
	if mailcase.Code(err) == driver.Unimplemented {
		return nil, mailcase.Address{}, nil // a store that cannot list: a new conversation
	}
	if err != nil {
		return nil, mailcase.Address{}, fmt.Errorf("outbox: Log Email: %w", err)
	}
	want = mailcase.NormalizeMessageID(want)
	var last *mailcase.Email
	var from mailcase.Address
	for i := range ins {
		e := ins[i].Email
		if e == nil {
			continue
		}
		if e.Direction != driver.Outbound && !e.Auto {
			from = e.From
		}
		if (want != "" && e.MessageID == want) || (want == "" && e.Direction != driver.Outbound && !e.Auto) {
			last = e
		}
	}
	if last == nil {
		if want != "" {
			return nil, from, fmt.Errorf("outbox: Log Email: %s is not a mail of case %s", want, id)
		}
		return nil, from, nil
	}
	p := &mailcase.Message{ID: last.MessageID, References: last.References, InReplyTo: last.InReplyTo}
	// Outlook's Thread-Index is not a filed field: it is read from the
	// parent's raw mail, when kept, so the answer is its child.
	if raw, ok, err := m.o.Cases.GetRaw(ctx, last.IdempotencyKey); err == nil && ok {
		// A malformed header later on still gives the fields read.
		if ti := readHeader(raw).Get("Thread-Index"); ti != "" {
			p.Header = mailcase.Header{"Thread-Index": {ti}}
		}
	}
	return p, from, nil
}

// resume completes a Log Email whose key was filed by an earlier call:
// the filed raw mail is queued as it is (Enqueue is idempotent by key).
// done is false when the key was never filed, or the store keeps no raw
// mail (the mail is then composed again; Enqueue still queues it once).
func (m *Mailer) resume(ctx context.Context, id mailcase.CaseID, key string, e *LogEmail,
	enqueue func(context.Context, *driver.OutboxMessage) (string, error)) (string, bool, error) {
	if _, ok, err := m.o.Cases.LookupProcessed(ctx, key); err != nil || !ok {
		return "", false, nil
	}
	raw, ok, err := m.o.Cases.GetRaw(ctx, key)
	if err != nil || !ok {
		return "", false, nil
	}
	hdr := readHeader(raw)
	if hdr == nil {
		return "", false, nil
	}
	rcpts := headerRecipients(hdr)
	add := func(a string) {
		if n := mailcase.NormalizeAddress(a); n != "" && !slices.Contains(rcpts, n) {
			rcpts = append(rcpts, n)
		}
	}
	for _, a := range e.Bcc { // never in the header
		add(a.Address)
	}
	from := m.o.From.Address
	if m.o.FromAgent && e.Agent.Email != "" {
		from = e.Agent.Email
	}
	qid, err := enqueue(ctx, &driver.OutboxMessage{Key: key, CaseID: id, Mailbox: m.o.Mailbox, Kind: KindLogEmail,
		From: mailcase.NormalizeAddress(from), To: rcpts, MessageID: strings.Trim(hdr.Get("Message-Id"), "<> "), Raw: raw})
	if err != nil {
		return "", true, fmt.Errorf("outbox: Log Email: %w", err)
	}
	return qid, true, nil
}

// readHeader reads the header fields of a raw mail (nil when none can be
// read).
func readHeader(raw []byte) textproto.MIMEHeader {
	hdr, _ := textproto.NewReader(bufio.NewReader(bytes.NewReader(raw))).ReadMIMEHeader()
	return hdr
}

// headerRecipients returns the normalised To and Cc addresses of a header,
// in order and unique: the recipients everybody sees (never the Bcc).
func headerRecipients(hdr textproto.MIMEHeader) []string {
	var out []string
	for _, f := range []string{"To", "Cc"} {
		l, err := mail.ParseAddressList(hdr.Get(f))
		if err != nil {
			continue
		}
		for _, a := range l {
			if n := mailcase.NormalizeAddress(a.Address); n != "" && !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	return out
}
