package outbox

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/threading"
)

// NotifyOptions configures a Notifier. Each kind of message is off unless
// its option is set.
type NotifyOptions struct {
	// From is the sender of every message (the support address). Required.
	From mail.Address
	// LoopID names the installation in the loop header. Required.
	LoopID string
	// Internal is the internal support address that forwards go to.
	Internal mail.Address
	// ForwardReplies forwards every customer reply filed on a case to
	// Internal; ForwardUndecided forwards the mail whose sender matched
	// several records (the pipeline could not decide who wrote it).
	ForwardReplies, ForwardUndecided bool
	// ConfirmAgents confirms to an agent (an employee, trusted by the
	// pipeline) that the mail they forwarded or sent in copy was added to
	// a case.
	ConfirmAgents bool
	// QueueMembers lists, per queue, the addresses notified of each new
	// case routed to the queue.
	QueueMembers map[string][]string
	// NotifyOwner notifies a case's owner of a customer reply and of a
	// bounce filed on the case. OwnerAddress maps Case.Owner to an
	// address; nil uses the owner when it is an address.
	NotifyOwner  bool
	OwnerAddress func(ctx context.Context, owner string) (string, error)
	// Templates override the shipped templates by kind
	// (KindConfirmation, KindForward, KindNotification).
	Templates map[string]*Template
	// QueueTemplates override them for the cases of a queue: queue name,
	// then kind.
	QueueTemplates map[string]map[string]*Template
	// Codec signs the Message-IDs so that an answer to a notification
	// threads to the case; nil sends unsigned IDs.
	Codec *threading.Codec
	// Cases is the store of the cases; nil means the outbox's store.
	Cases *mailcase.Store
	// OwnAddresses are the installation's own addresses (its mailboxes),
	// never notified; From is always one. Internal is notified even when
	// it is one of them.
	OwnAddresses []string
	// Bounces, when set, suppresses notifications to an address whose
	// mail bounced.
	Bounces *Bounces
	// Limits bound the messages of one kind to one address across cases,
	// CaseLimits those about one case, counted in the outbox (durable,
	// shared by every worker); nil means DefaultNotifyLimits and
	// DefaultNotifyCaseLimits. Forwards to Internal are not limited.
	Limits, CaseLimits []Limit
	// Now is the clock of the limits; nil means time.Now.
	Now func() time.Time
}

// DefaultNotifyLimits are Zammad's limits across tickets: 30 in 10
// minutes, 60 in 30, 120 in an hour, 240 in 3 hours, 360 in 10 hours.
func DefaultNotifyLimits() []Limit {
	return []Limit{{10 * time.Minute, 30}, {30 * time.Minute, 60}, {time.Hour, 120}, {3 * time.Hour, 240}, {10 * time.Hour, 360}}
}

// DefaultNotifyCaseLimits are Zammad's limits per ticket: 10 in 10
// minutes, 15 in 30, 25 in an hour, 50 in 3 hours, 100 in 10 hours.
func DefaultNotifyCaseLimits() []Limit {
	return []Limit{{10 * time.Minute, 10}, {30 * time.Minute, 15}, {time.Hour, 25}, {3 * time.Hour, 50}, {10 * time.Hour, 100}}
}

// Notifier is a mailcase.Responder that queues the internal mail about
// filed mail: forwards to the internal support address, confirmations to
// agents, notifications to queue members and case owners. It never sends
// about automatic mail or bounces (except the owner's bounce
// notification), never to the address that sent the mail, never to the
// installation's own addresses (but Internal) or to an address whose mail
// bounced, never about the bounce of its own notification (so an owner
// address that bounces is told once, not in a loop), and queues each
// message once per mail and recipient. Messages carry Auto-Submitted:
// auto-generated, X-Auto-Response-Suppress: All and the loop header.
type Notifier struct {
	store *mailcase.Store
	o     NotifyOptions
	tpl   map[string]*Template
	own   map[string]bool
}

var _ mailcase.Responder = (*Notifier)(nil)

// NewNotifier returns a Notifier queueing into store's outbox.
func NewNotifier(store *mailcase.Store, opts *NotifyOptions) (*Notifier, error) {
	if store == nil || opts == nil {
		return nil, errors.New("outbox: a notifier needs a store and options")
	}
	o := *opts
	switch {
	case !store.CanOutbox():
		return nil, errors.New("outbox: the store keeps no outbox")
	case mailcase.NormalizeAddress(o.From.Address) == "":
		return nil, fmt.Errorf("outbox: notifier From %q is not an address", o.From.Address)
	case strings.TrimSpace(o.LoopID) == "" || strings.ContainsAny(o.LoopID, "\r\n"):
		return nil, errors.New("outbox: notifications need a loop ID (one line) naming the installation")
	case (o.ForwardReplies || o.ForwardUndecided) && mailcase.NormalizeAddress(o.Internal.Address) == "":
		return nil, errors.New("outbox: forwards need the internal support address")
	}
	if o.Cases == nil {
		o.Cases = store
	}
	if o.Limits == nil {
		o.Limits = DefaultNotifyLimits()
	}
	if o.CaseLimits == nil {
		o.CaseLimits = DefaultNotifyCaseLimits()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	n := &Notifier{store: store, o: o, tpl: map[string]*Template{}, own: map[string]bool{mailcase.NormalizeAddress(o.From.Address): true}}
	for _, a := range o.OwnAddresses {
		if a := mailcase.NormalizeAddress(a); a != "" {
			n.own[a] = true
		}
	}
	for _, kind := range []string{KindConfirmation, KindForward, KindNotification} {
		t := o.Templates[kind]
		if t == nil {
			var err error
			if t, err = ParseTemplate(kind, ShippedTemplates()[kind]); err != nil {
				return nil, err
			}
		}
		n.tpl[kind] = t
	}
	return n, nil
}

// notice is one message to queue.
type notice struct {
	kind, why string
	to        mail.Address
}

// Respond implements mailcase.Responder.
func (n *Notifier) Respond(ctx context.Context, d *mailcase.Delivery, r *mailcase.Result) (string, error) {
	o := &r.Outcome
	if r.Message == nil || o.CaseID == "" {
		return "", nil
	}
	filed := o.Action == mailcase.ActionCreated || o.Action == mailcase.ActionAppended || o.Action == mailcase.ActionReopened
	if !filed {
		return "", nil
	}
	c, ok, err := n.o.Cases.GetCase(ctx, o.CaseID)
	if err != nil {
		return "", fmt.Errorf("outbox: notification: %w", err)
	}
	if !ok {
		return "", fmt.Errorf("outbox: notification: case %s not found", o.CaseID)
	}
	sender := mailcase.NormalizeAddress(r.Message.From.Email)
	auto := o.Auto.IsAuto || o.Bounce.IsBounce
	who := d.Sender
	employee := who.Kind == mailcase.SenderEmployee
	var todo []notice
	if o.Bounce.IsBounce && n.o.NotifyOwner {
		ours, err := n.ownNotification(ctx, o.Bounce.OriginalMessageID)
		if err != nil {
			return "", err
		}
		if !ours {
			a, err := n.owner(ctx, c.Owner)
			if err != nil {
				return "", err
			}
			if a != "" {
				todo = append(todo, notice{KindNotification, "bounce", mail.Address{Address: a}})
			}
		}
	}
	if !auto {
		reply := o.Action != mailcase.ActionCreated && !employee
		if n.o.ForwardReplies && reply {
			todo = append(todo, notice{KindForward, "customer reply", n.o.Internal})
		}
		if n.o.ForwardUndecided && who.Kind == mailcase.SenderAmbiguous {
			todo = append(todo, notice{KindForward, "undecided sender", n.o.Internal})
		}
		if n.o.ConfirmAgents && employee && r.Message.From.Email != "" {
			todo = append(todo, notice{KindConfirmation, "agent mail added", mail.Address{Name: r.Message.From.Name, Address: r.Message.From.Email}})
		}
		if o.Action == mailcase.ActionCreated {
			for _, a := range n.o.QueueMembers[c.Queue] {
				todo = append(todo, notice{KindNotification, "new case in " + c.Queue, mail.Address{Address: a}})
			}
		}
		if n.o.NotifyOwner && reply {
			a, err := n.owner(ctx, c.Owner)
			if err != nil {
				return "", err
			}
			if a != "" {
				todo = append(todo, notice{KindNotification, "customer reply", mail.Address{Address: a}})
			}
		}
	}
	var done, skipped []string
	seen := map[string]bool{}
	for _, t := range todo {
		addr := mailcase.NormalizeAddress(t.to.Address)
		if addr == "" || (addr == sender && t.kind != KindConfirmation) || seen[t.kind+addr] {
			continue // never back to the mail's sender (but a confirmation), once per kind and address
		}
		seen[t.kind+addr] = true
		if n.own[addr] && addr != mailcase.NormalizeAddress(n.o.Internal.Address) {
			continue // never to ourselves
		}
		if n.o.Bounces != nil {
			_, sup, err := n.o.Bounces.Suppressed(ctx, addr)
			if err != nil {
				return strings.Join(done, "; "), fmt.Errorf("outbox: notification: %w", err)
			}
			if sup {
				continue
			}
		}
		if addr != mailcase.NormalizeAddress(n.o.Internal.Address) {
			over, err := n.overLimit(ctx, t.kind, addr, c.ID)
			if err != nil {
				return strings.Join(done, "; "), err
			}
			if over != "" {
				skipped = append(skipped, "no "+t.kind+" to "+addr+": "+over)
				continue
			}
		}
		if err := n.queue(ctx, d, r.Message, c, t); err != nil {
			return strings.Join(done, "; "), err
		}
		done = append(done, t.kind+" to "+addr+" ("+t.why+")")
	}
	var out []string
	if len(done) > 0 {
		out = append(out, strings.Join(done, "; ")+" queued")
	}
	return strings.Join(append(out, skipped...), "; "), nil
}

// overLimit returns which limit sending one more message of kind to addr
// about case id would pass, or "".
func (n *Notifier) overLimit(ctx context.Context, kind, addr string, id mailcase.CaseID) (string, error) {
	now := n.o.Now()
	for _, set := range []struct {
		limits []Limit
		caseID mailcase.CaseID
		what   string
	}{{n.o.CaseLimits, id, "on this case"}, {n.o.Limits, "", "across cases"}} {
		for _, l := range set.limits {
			sent, err := n.store.ListOutbox(ctx, &driver.OutboxListOptions{Kind: kind, Recipient: addr, CaseID: set.caseID, Since: now.Add(-l.Window), Limit: l.Max})
			if err != nil {
				return "", fmt.Errorf("outbox: notification: count: %w", err)
			}
			if len(sent) >= l.Max {
				return fmt.Sprintf("%d already sent in %s %s (limit)", len(sent), l.Window, set.what), nil
			}
		}
	}
	return "", nil
}

// owner returns the address of a case owner ("" for none); a failing
// OwnerAddress is an error, never a silently dropped notification.
func (n *Notifier) owner(ctx context.Context, owner string) (string, error) {
	if owner == "" {
		return "", nil
	}
	if n.o.OwnerAddress != nil {
		a, err := n.o.OwnerAddress(ctx, owner)
		if err != nil {
			return "", fmt.Errorf("outbox: notification: owner address of %q: %w", owner, err)
		}
		return mailcase.NormalizeAddress(a), nil
	}
	return mailcase.NormalizeAddress(owner), nil
}

// ownNotification reports whether the bounced message is a notification
// of ours: its bounce is filed, and tells nobody (an owner address that
// bounces would otherwise be notified of each bounce of its notification).
func (n *Notifier) ownNotification(ctx context.Context, messageID string) (bool, error) {
	if messageID == "" {
		return false, nil
	}
	m, ok, err := n.store.FindOutbox(ctx, messageID)
	if err != nil {
		return false, fmt.Errorf("outbox: notification: %w", err)
	}
	return ok && m.Kind == KindNotification, nil
}

func (n *Notifier) queue(ctx context.Context, d *mailcase.Delivery, in *mailcase.Message, c mailcase.Case, t notice) error {
	data := &TemplateData{Case: c, Queue: c.Queue,
		Mail:    TemplateMail{From: in.From, Subject: in.Subject, Date: in.Date, Text: in.ReplyText, MessageID: in.ID},
		Mailbox: TemplateMailbox{Name: d.Mailbox.Name, Address: n.o.From.Address}, Body: t.why}
	if d.Sender.Contact != nil {
		data.Contact = *d.Sender.Contact
	}
	autoKind := "auto-generated"
	if t.kind == KindConfirmation {
		autoKind = "auto-replied"
	}
	msg := &Message{From: n.o.From, To: []mail.Address{t.to}, Headers: autoFields(autoKind, n.o.LoopID)}
	if n.o.Codec != nil {
		h, err := n.o.Codec.Outgoing(&threading.OutgoingRequest{Case: c, Parent: in})
		if err != nil {
			return fmt.Errorf("outbox: notification: %w", err)
		}
		msg.MessageID, msg.InReplyTo, msg.References = h.MessageID, h.InReplyTo, h.References
		data.Reference = h.ContextLine
	}
	tpl := n.tpl[t.kind]
	if qt := n.o.QueueTemplates[c.Queue][t.kind]; qt != nil {
		tpl = qt
	}
	out, err := tpl.Render(data)
	if err != nil {
		return fmt.Errorf("outbox: notification: %w", err)
	}
	msg.Subject, msg.Text, msg.HTML = out.Subject, out.Text, out.HTML
	composed, err := Compose(msg, nil)
	if err != nil {
		return fmt.Errorf("outbox: notification: %w", err)
	}
	_, err = n.store.Enqueue(ctx, &driver.OutboxMessage{
		Key: d.Key + "\x00" + t.kind + "\x00" + mailcase.NormalizeAddress(t.to.Address), CaseID: c.ID, Mailbox: d.Mailbox.Name,
		Kind: t.kind, From: composed.From, To: composed.Recipients, MessageID: composed.MessageID, Raw: composed.Raw})
	if err != nil {
		return fmt.Errorf("outbox: notification: %w", err)
	}
	return nil
}
