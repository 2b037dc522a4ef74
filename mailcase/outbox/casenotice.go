package outbox

import (
	"context"
	"errors"
	"fmt"
	"net/mail"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/threading"
)

// CaseNotice is an internal notification about a case that no mail
// caused: a service-level alert, for example. It is rendered with the
// notification template (KindNotification, the queue's when it has one),
// with Body as the template's .Body.
type CaseNotice struct {
	// Key makes the notice idempotent in the outbox (opaque bytes); a
	// notice queued before under Key is not queued again. Required.
	Key string
	// Mailbox is the mailbox the notice is sent for ("" for none).
	Mailbox string
	// To is the recipient's address. Required.
	To string
	// Body is the text of the notice (one paragraph or a few lines).
	Body string
}

// NotifyCase queues a notice about case c through the same path as the
// notifications about filed mail: the notification template, the
// Auto-Submitted, X-Auto-Response-Suppress and loop fields, the threading
// codec's Message-ID, and the outbox. It reports false, queueing nothing,
// when To is one of the installation's own addresses (but Internal) or an
// address whose mail bounced. The per-address limits do not apply: a
// notice is caused by the clock, not by mail, so it cannot loop.
func (n *Notifier) NotifyCase(ctx context.Context, c mailcase.Case, cn *CaseNotice) (bool, error) {
	if cn == nil || cn.Key == "" {
		return false, errors.New("outbox: a case notice needs a key")
	}
	addr := mailcase.NormalizeAddress(cn.To)
	if addr == "" {
		return false, fmt.Errorf("outbox: case notice: %q is not an address", cn.To)
	}
	if n.own[addr] && addr != mailcase.NormalizeAddress(n.o.Internal.Address) {
		return false, nil
	}
	if n.o.Bounces != nil {
		_, sup, err := n.o.Bounces.Suppressed(ctx, addr)
		if err != nil {
			return false, fmt.Errorf("outbox: case notice: %w", err)
		}
		if sup {
			return false, nil
		}
	}
	data := &TemplateData{Case: c, Queue: c.Queue, Body: cn.Body,
		Mailbox: TemplateMailbox{Name: cn.Mailbox, Address: n.o.From.Address}}
	msg := &Message{From: n.o.From, To: []mail.Address{{Address: addr}}, Headers: autoFields("auto-generated", n.o.LoopID)}
	if n.o.Codec != nil {
		h, err := n.o.Codec.Outgoing(&threading.OutgoingRequest{Case: c})
		if err != nil {
			return false, fmt.Errorf("outbox: case notice: %w", err)
		}
		msg.MessageID, msg.InReplyTo, msg.References = h.MessageID, h.InReplyTo, h.References
		data.Reference = h.ContextLine
	}
	tpl := n.tpl[KindNotification]
	if qt := n.o.QueueTemplates[c.Queue][KindNotification]; qt != nil {
		tpl = qt
	}
	out, err := tpl.Render(data)
	if err != nil {
		return false, fmt.Errorf("outbox: case notice: %w", err)
	}
	msg.Subject, msg.Text, msg.HTML = out.Subject, out.Text, out.HTML
	composed, err := Compose(msg, nil)
	if err != nil {
		return false, fmt.Errorf("outbox: case notice: %w", err)
	}
	if _, err := n.store.Enqueue(ctx, &driver.OutboxMessage{
		Key: cn.Key, CaseID: c.ID, Mailbox: cn.Mailbox, Kind: KindNotification,
		From: composed.From, To: composed.Recipients, MessageID: composed.MessageID, Raw: composed.Raw}); err != nil {
		return false, fmt.Errorf("outbox: case notice: %w", err)
	}
	return true, nil
}
