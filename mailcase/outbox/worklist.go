package outbox

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"

	"github.com/emailcrm/emailcrm/mailcase"
)

// ItemReply is the owner's reply from a work item: free text, or a
// correspondence template rendered for the case.
type ItemReply struct {
	// Key makes the reply idempotent, as LogEmail.Key. Required.
	Key string
	// Case is the work item's case. Required.
	Case mailcase.CaseID
	// Agent must own the work item (Agent.Email is compared with the
	// item's owner).
	Agent mailcase.Employee
	// Template, when set, renders the reply: its text becomes the body
	// (Body is given to it as {{.Body}}) and its subject the subject's
	// title. Nil sends Body as it is.
	Template *Template
	Body     string
	// To, Cc, Bcc and Parent are as in LogEmail.
	To, Cc, Bcc []mail.Address
	Parent      string
}

// ReplyFromItem queues the reply of the work item's owner, threaded like
// a Log Email (it is one: filed on the case as an outbound mail, so the
// case's mail is no longer open, and queued). An agent who does not own the
// item gets an error classified PermissionDenied matching
// mailcase.ErrNotOwner, and nothing is filed or queued. Where the cases
// and the outbox are one store that can (mailcase.Store.CanEnqueueAsOwner:
// memstore, sqlstore), ownership is checked again in the same atomic step
// that queues the reply, so an accept or reassign by someone else between
// the first check and the queueing refuses the reply; elsewhere (a CRM
// store with a local outbox) only the first check is made. It returns the
// outbox ID; the store's WorklistOptions.OnEvent hears "reply.queued".
func (m *Mailer) ReplyFromItem(ctx context.Context, r *ItemReply) (string, error) {
	if r == nil || r.Key == "" || r.Case == "" {
		return "", errors.New("outbox: a reply needs a key and a case")
	}
	if r.Template == nil && strings.TrimSpace(r.Body) == "" {
		return "", errors.New("outbox: a reply needs a template or a text")
	}
	return m.o.Cases.ReplyFromWorkItem(ctx, r.Case, r.Agent.Email, func(ctx context.Context) (string, error) {
		e := &LogEmail{Key: "reply\x00" + r.Key, Case: r.Case, Agent: r.Agent, To: r.To, Cc: r.Cc, Bcc: r.Bcc, Body: r.Body, Parent: r.Parent}
		if r.Template != nil {
			c, ok, err := m.o.Cases.GetCase(ctx, r.Case)
			if err != nil {
				return "", fmt.Errorf("outbox: reply: %w", err)
			}
			if !ok {
				return "", fmt.Errorf("outbox: reply: case %s not found", r.Case)
			}
			out, err := r.Template.Render(&TemplateData{Case: c, Queue: c.Queue, Agent: r.Agent, Body: r.Body,
				Mailbox: TemplateMailbox{Address: m.o.From.Address}})
			if err != nil {
				return "", fmt.Errorf("outbox: reply: %w", err)
			}
			if strings.TrimSpace(out.Text) == "" {
				return "", fmt.Errorf("outbox: reply: template %s renders no text", r.Template.Name)
			}
			e.Body, e.Title = out.Text, strings.TrimSpace(out.Subject)
		}
		return m.logEmail(ctx, e, mailcase.NormalizeAddress(r.Agent.Email))
	})
}
