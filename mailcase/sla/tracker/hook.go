package tracker

import (
	"context"
	"net/mail"
	"strings"
	"time"

	"github.com/emailcrm/emailcrm/mailcase"
)

// Hook ties a Tracker to the pipeline: add it to the pipeline's
// Responders (mailcase.Options.Responders), which the pipeline calls after
// each mail is filed. A new case starts its clocks (mailbox-level ones
// from when our mail server received the mail, read from the topmost
// Received field, queue-level ones from the routing); a mail of a trusted
// employee on a case is an agent reply; any other mail that is not
// automatic is the customer's. Quiet (backlog) mail and dry runs start no
// clock, as the pipeline calls no Responder for them. On a case the mail
// reopened, the clocks its closing stopped run again (see the package sla
// documentation, Reopened cases): resolution counts on, and a customer's
// reply after an agent's makes the next response due. Status changes made
// outside the pipeline (worklists, the XML API) are the caller's to report
// with Tracker.StatusChanged.
//
// A failing update is recorded in the mail's outcome and logged by the
// pipeline; the mail is filed all the same.
type Hook struct {
	t *Tracker
}

var _ mailcase.Responder = (*Hook)(nil)

// NewHook returns the pipeline hook of t.
func NewHook(t *Tracker) *Hook { return &Hook{t: t} }

// maxReceivedSkew bounds how far the Received time may lie before now:
// older (or later than now) means a wrong clock somewhere, and now is
// taken instead.
const maxReceivedSkew = 7 * 24 * time.Hour

// Respond implements mailcase.Responder.
func (h *Hook) Respond(ctx context.Context, d *mailcase.Delivery, r *mailcase.Result) (string, error) {
	o := &r.Outcome
	if r.Message == nil || o.CaseID == "" {
		return "", nil
	}
	now := h.t.now()
	switch o.Action {
	case mailcase.ActionCreated:
		queue := ""
		if o.Route != nil {
			queue = o.Route.Queue
		}
		mailbox := ""
		if d.Mailbox != nil {
			mailbox = d.Mailbox.Name
		}
		if err := h.t.CaseCreated(ctx, o.CaseID, mailbox, ReceivedAt(r.Message, now), queue); err != nil {
			return "", err
		}
		return "service-level clocks started", nil
	case mailcase.ActionAppended, mailcase.ActionReopened:
		if o.Auto.IsAuto || o.Bounce.IsBounce {
			return "", nil
		}
		if d.Sender.Kind == mailcase.SenderEmployee {
			if err := h.t.AgentReplied(ctx, o.CaseID, now); err != nil {
				return "", err
			}
			return "agent reply: response clocks stopped", nil
		}
		if err := h.t.CustomerMailed(ctx, o.CaseID, ReceivedAt(r.Message, now)); err != nil {
			return "", err
		}
		return "customer mail: service-level clocks updated", nil
	}
	return "", nil
}

// ReceivedAt returns when our mail server received m: the date of the
// topmost Received field (the one our server added), or now when it has
// none, it does not parse, or it lies in the future or more than a week
// before now.
func ReceivedAt(m *mailcase.Message, now time.Time) time.Time {
	if m == nil || m.Header == nil {
		return now
	}
	vs := m.Header.Values("Received")
	if len(vs) == 0 {
		return now
	}
	t, ok := parseReceivedDate(vs[0])
	if !ok || t.After(now) || now.Sub(t) > maxReceivedSkew {
		return now
	}
	return t
}

// parseReceivedDate parses the date after the last ";" of a Received
// field (RFC 5321 section 4.4).
func parseReceivedDate(v string) (time.Time, bool) {
	i := strings.LastIndexByte(v, ';')
	if i < 0 {
		return time.Time{}, false
	}
	t, err := mail.ParseDate(strings.TrimSpace(v[i+1:]))
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}
