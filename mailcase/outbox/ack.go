package outbox

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/threading"
)

// Limit bounds the automatic mail sent to one address: at most Max in any
// Window.
type Limit struct {
	Window time.Duration
	Max    int
}

// DefaultAckLimits are the per-address limits of acknowledgements, across
// cases: 3 in 10 minutes, 5 in an hour, 10 in a day. They are stricter than
// Zammad's ladder across tickets (30 in 10 minutes ... 360 in 10 hours) and
// Znuny's 40 a day, because an acknowledgement answers a new case, and a
// sender opening more than that is a loop or a flood.
func DefaultAckLimits() []Limit {
	return []Limit{{10 * time.Minute, 3}, {time.Hour, 5}, {24 * time.Hour, 10}}
}

// DefaultNoReplyPattern matches the addresses never answered
// automatically: system and robot mailboxes and list addresses.
const DefaultNoReplyPattern = `(?i)^(mailer-daemon|postmaster|abuse|root|noc|security|hostmaster|webmaster|daemon|nobody|` +
	`no[-_.]?reply|do[-_.]?not[-_.]?reply|bounces?|listserv|majordomo|owner-.*|.*-(request|bounces|owner|noreply))(\+[^@]*)?@`

// AckOptions configures an Acknowledger.
type AckOptions struct {
	// From is the mailbox's address and display name, From of every
	// acknowledgement and its envelope sender. Required.
	From mail.Address
	// LoopID names this installation in the loop header
	// (mailcase.LoopHeader) of every acknowledgement, so the inbound side
	// of any instance recognises it and never opens a case for it.
	// Required.
	LoopID string
	// Template renders the acknowledgement; nil means the shipped one.
	Template *Template
	// QueueTemplates render the acknowledgement of a case routed to a
	// queue, by queue name; a queue not listed uses Template.
	QueueTemplates map[string]*Template
	// Codec signs the Message-ID and the reference line, so that a reply
	// threads back to its case; nil sends an unsigned Message-ID (replies
	// then thread through References only).
	Codec *threading.Codec
	// OwnAddresses are addresses never answered (every mailbox address of
	// the installation); From is always one.
	OwnAddresses []string
	// NoReply matches sender addresses never answered; nil means
	// DefaultNoReplyPattern.
	NoReply *regexp.Regexp
	// Limits bound acknowledgements per address, counted in the outbox
	// (durable, shared by every worker); nil means DefaultAckLimits.
	Limits []Limit
	// Bounces, when set, suppresses acknowledgements to an address whose
	// mail bounced.
	Bounces *Bounces
	// Cases is the store of the cases; nil means the outbox's store.
	Cases *mailcase.Store
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Acknowledger is a mailcase.Responder that queues the automatic
// acknowledgement of every new case. It never answers: mail that is not a
// new case; automatic, bulk or list mail (AutoInfo.IsAuto, NoReply) and
// bounces; mail with an empty Return-Path; senders matching the no-reply
// pattern; the installation's own addresses; addresses whose mail bounced;
// an address that reached one of its Limits. Each acknowledgement carries
// Auto-Submitted: auto-replied (RFC 3834), X-Auto-Response-Suppress: All,
// Precedence: bulk and the loop header, and is queued once per mail (its
// outbox key is the mail's key), so a second pipeline run never queues a
// second one. On a store that queues with the filing (an SQL store), the
// acknowledgement is queued in the transaction that creates the case
// (mailcase.CaseResponder): a crash keeps both or neither. Elsewhere it is
// queued right after, and a crash in between leaves the case without it.
// The limits are counted before the case is created, so workers filing
// mail of one sender at the same instant may each send one more than a
// limit allows.
type Acknowledger struct {
	store *mailcase.Store
	o     AckOptions
	own   []string
}

var _ mailcase.CaseResponder = (*Acknowledger)(nil)

// NewAcknowledger returns the acknowledger of a mailbox queueing into
// store's outbox.
func NewAcknowledger(store *mailcase.Store, opts *AckOptions) (*Acknowledger, error) {
	if store == nil || opts == nil {
		return nil, errors.New("outbox: an acknowledger needs a store and options")
	}
	o := *opts
	from := mailcase.NormalizeAddress(o.From.Address)
	switch {
	case !store.CanOutbox():
		return nil, errors.New("outbox: the store keeps no outbox")
	case from == "":
		return nil, fmt.Errorf("outbox: acknowledgement From %q is not an address", o.From.Address)
	case strings.TrimSpace(o.LoopID) == "" || strings.ContainsAny(o.LoopID, "\r\n"):
		return nil, errors.New("outbox: acknowledgements need a loop ID (one line) naming the installation")
	}
	if o.Template == nil {
		t, err := ParseTemplate(KindAcknowledgement, ShippedTemplates()[KindAcknowledgement])
		if err != nil {
			return nil, err
		}
		o.Template = t
	}
	if o.NoReply == nil {
		o.NoReply = regexp.MustCompile(DefaultNoReplyPattern)
	}
	if o.Limits == nil {
		o.Limits = DefaultAckLimits()
	}
	if o.Cases == nil {
		o.Cases = store
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	own := []string{from}
	for _, a := range o.OwnAddresses {
		if n := mailcase.NormalizeAddress(a); n != "" {
			own = append(own, n)
		}
	}
	return &Acknowledger{store: store, o: o, own: own}, nil
}

// Respond implements mailcase.Responder.
func (a *Acknowledger) Respond(ctx context.Context, d *mailcase.Delivery, r *mailcase.Result) (string, error) {
	if r.Outcome.Action != mailcase.ActionCreated || r.Message == nil || r.Outcome.CaseID == "" {
		return "", nil
	}
	to, why, err := a.check(ctx, d, r)
	if err != nil || why != "" {
		return why, err
	}
	c, ok, err := a.o.Cases.GetCase(ctx, r.Outcome.CaseID)
	if err != nil {
		return "", fmt.Errorf("outbox: acknowledgement: %w", err)
	}
	if !ok {
		return "", fmt.Errorf("outbox: acknowledgement: case %s not found", r.Outcome.CaseID)
	}
	m, err := a.compose(d, r.Message, c, to, a.o.Now())
	if err != nil {
		return "", err
	}
	id, err := a.store.Enqueue(ctx, m)
	if err != nil {
		return "", err
	}
	return "acknowledgement queued for " + to + " (outbox " + id + ")", nil
}

// PrepareNewCase implements mailcase.CaseResponder: the checks run before
// the case is created, and the acknowledgement is composed and queued in
// the transaction that creates it.
func (a *Acknowledger) PrepareNewCase(ctx context.Context, d *mailcase.Delivery, r *mailcase.Result) (func(mailcase.Case) (*driver.OutboxMessage, error), string, error) {
	if r.Message == nil {
		return nil, "", nil
	}
	to, why, err := a.check(ctx, d, r)
	if err != nil || why != "" {
		return nil, why, err
	}
	in, now := r.Message, a.o.Now()
	return func(c mailcase.Case) (*driver.OutboxMessage, error) {
		return a.compose(d, in, c, to, now)
	}, "", nil
}

// check returns the address to acknowledge, or why the mail gets no
// acknowledgement.
func (a *Acknowledger) check(ctx context.Context, d *mailcase.Delivery, r *mailcase.Result) (to, why string, err error) {
	return a.checkKind(ctx, d, r, r.Message.From.Email, KindAcknowledgement, "acknowledgement")
}

// checkKind returns the address to send a message of kind to (addr, or
// why none): the loop protection and the per-address limits, counted
// for kind.
func (a *Acknowledger) checkKind(ctx context.Context, d *mailcase.Delivery, r *mailcase.Result, addr, kind, label string) (to, why string, err error) {
	to, why = a.recipient(d, r, addr)
	if why != "" {
		return "", "no " + label + ": " + why, nil
	}
	if a.o.Bounces != nil {
		until, sup, err := a.o.Bounces.Suppressed(ctx, to)
		if err != nil {
			return "", "", fmt.Errorf("outbox: %s: %w", label, err)
		}
		if sup {
			return "", "no " + label + ": mail to " + to + " bounced; suppressed until " + until.UTC().Format(time.RFC3339), nil
		}
	}
	now := a.o.Now()
	for _, l := range a.o.Limits {
		sent, err := a.store.ListOutbox(ctx, &driver.OutboxListOptions{Kind: kind, Recipient: to, Since: now.Add(-l.Window), Limit: l.Max})
		if err != nil {
			return "", "", fmt.Errorf("outbox: %s: count: %w", label, err)
		}
		if len(sent) >= l.Max {
			return "", fmt.Sprintf("no %s: %d already sent to %s in %s (limit)", label, len(sent), to, l.Window), nil
		}
	}
	return to, "", nil
}

// recipient returns the address to answer (addr), or why none.
func (a *Acknowledger) recipient(d *mailcase.Delivery, r *mailcase.Result, addr string) (string, string) {
	m := r.Message
	switch {
	case r.Outcome.Auto.IsAuto || d.Auto.IsAuto:
		return "", "automatic mail (" + r.Outcome.Auto.Reason + ")"
	case r.Outcome.Auto.NoReply || d.Auto.NoReply:
		return "", "list or bulk mail (" + r.Outcome.Auto.Reason + ")"
	case r.Outcome.Bounce.IsBounce:
		return "", "a bounce"
	case m.HasReturnPath && m.ReturnPath == "":
		return "", "empty Return-Path (a notification)"
	}
	to := mailcase.NormalizeAddress(addr)
	switch {
	case to == "":
		return "", "no sender address"
	case slices.Contains(a.own, to):
		return "", to + " is one of our own addresses"
	case a.o.NoReply.MatchString(to):
		return "", to + " is a no-reply or system address"
	}
	return to, ""
}

// compose renders and composes the acknowledgement of in on case c; it
// calls no store.
func (a *Acknowledger) compose(d *mailcase.Delivery, in *mailcase.Message, c mailcase.Case, to string, now time.Time) (*driver.OutboxMessage, error) {
	tpl := a.o.Template
	if t := a.o.QueueTemplates[c.Queue]; t != nil {
		tpl = t
	}
	return a.composeKind(d, in, c, to, now, KindAcknowledgement, tpl, nil)
}

// composeKind renders tpl (with vars) and composes the automatic answer of
// kind to in on case c (c.ID "" for none); it calls no store.
func (a *Acknowledger) composeKind(d *mailcase.Delivery, in *mailcase.Message, c mailcase.Case, to string, now time.Time,
	kind string, tpl *Template, vars map[string]string) (*driver.OutboxMessage, error) {
	data := &TemplateData{Vars: vars,
		Case: c, Queue: c.Queue,
		Mail:    TemplateMail{From: in.From, Subject: in.Subject, Date: in.Date, Text: in.ReplyText, MessageID: in.ID},
		Mailbox: TemplateMailbox{Name: d.Mailbox.Name, Address: a.o.From.Address},
	}
	if d.Sender.Contact != nil {
		data.Contact = *d.Sender.Contact
	}
	toName := in.From.Name
	if to != mailcase.NormalizeAddress(in.From.Email) {
		toName = "" // a structured reply to an address the mail names
	}
	if data.Contact.Name == "" {
		data.Contact.Name = toName
	}
	msg := &Message{
		From: a.o.From, To: []mail.Address{{Name: toName, Address: to}},
		Date:    now,
		Headers: autoFields("auto-replied", a.o.LoopID),
	}
	if a.o.Codec != nil && c.ID != "" {
		h, err := a.o.Codec.Outgoing(&threading.OutgoingRequest{Case: c, Parent: in})
		if err != nil {
			return nil, fmt.Errorf("outbox: %s: %w", kind, err)
		}
		msg.MessageID, msg.InReplyTo, msg.References = h.MessageID, h.InReplyTo, h.References
		data.Reference, data.Subject = h.ContextLine, h.Subject
		if h.ThreadIndex != "" {
			msg.Headers = append(msg.Headers, Field{Name: "Thread-Index", Value: h.ThreadIndex}, Field{Name: "Thread-Topic", Value: h.ThreadTopic})
		}
	} else {
		msg.InReplyTo = "<" + in.ID + ">"
		refs := make([]string, 0, len(in.References)+1)
		for _, id := range append(slices.Clone(in.References), in.ID) {
			refs = append(refs, "<"+id+">")
		}
		msg.References = strings.Join(refs, " ")
	}
	out, err := tpl.Render(data)
	if err != nil {
		return nil, err
	}
	msg.Subject, msg.Text, msg.HTML = out.Subject, out.Text, out.HTML
	composed, err := Compose(msg, nil)
	if err != nil {
		return nil, fmt.Errorf("outbox: %s: %w", kind, err)
	}
	return &driver.OutboxMessage{
		Key: d.Key + "\x00" + kind, CaseID: c.ID, Mailbox: d.Mailbox.Name, Kind: kind,
		From: composed.From, To: composed.Recipients, MessageID: composed.MessageID, Raw: composed.Raw,
	}, nil
}

// autoFields are the fields of every automatic message (RFC 3834's
// Auto-Submitted with kind, Microsoft's X-Auto-Response-Suppress, the
// Precedence that older responders honour, and the loop header naming the
// installation), so no responder answers it and no instance of the SDK
// opens a case for it.
func autoFields(kind, loopID string) []Field {
	return []Field{
		{Name: "Auto-Submitted", Value: kind},
		{Name: "X-Auto-Response-Suppress", Value: "All"},
		{Name: "Precedence", Value: "bulk"},
		{Name: mailcase.LoopHeader, Value: loopID},
	}
}
