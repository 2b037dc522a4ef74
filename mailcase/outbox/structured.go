package outbox

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"time"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/threading"
)

// KindStructuredReply is the kind of the automated replies to structured
// mail (ERMS webforms and requests of the structured API).
const KindStructuredReply = "structured-reply"

// DefaultStructuredReplyLimits are the per-address limits of automated
// replies to structured mail: 30 in 10 minutes, 200 in a day. They are
// looser than the acknowledgement's, because one monitoring system sends
// many requests on purpose, and still stop a loop.
func DefaultStructuredReplyLimits() []Limit {
	return []Limit{{10 * time.Minute, 30}, {24 * time.Hour, 200}}
}

// StructuredReplyOptions configures a StructuredReplier.
type StructuredReplyOptions struct {
	// From is the mailbox's address and display name. Required.
	From mail.Address
	// LoopID names this installation in the loop header. Required.
	LoopID string
	// Templates are the reply templates by name (the name a structured
	// mail's handler or reply element asks for). Required.
	Templates map[string]*Template
	// Codec signs the Message-ID and the reference line so that a reply
	// to the reply threads back to its case; nil sends In-Reply-To and
	// References only.
	Codec *threading.Codec
	// OwnAddresses, NoReply, Bounces, Cases and Now are as in AckOptions.
	OwnAddresses []string
	NoReply      *regexp.Regexp
	Bounces      *Bounces
	Cases        *mailcase.Store
	Now          func() time.Time
	// Limits bound the replies per address; nil means
	// DefaultStructuredReplyLimits.
	Limits []Limit
}

// StructuredReplier is a mailcase.Responder that queues the automated
// reply a structured mail asks for (Outcome.StructuredReply), rendered
// from the named template with the reply's variables ({{.Vars.NAME}}) and
// the case the mail opened or named. It applies the acknowledgement's
// loop protection: never to automatic, bulk or list mail, an empty
// Return-Path, no-reply or own addresses, or addresses whose mail
// bounced; at most its Limits per address. The reply is threaded
// (In-Reply-To, References, and the case's signed Message-ID with a
// Codec), carries the automatic-mail fields and the loop header, and is
// queued once per mail (its outbox key is the mail's key and the kind).
type StructuredReplier struct {
	ack  *Acknowledger
	tpls map[string]*Template
}

var _ mailcase.Responder = (*StructuredReplier)(nil)

// NewStructuredReplier returns the replier of a mailbox queueing into
// store's outbox.
func NewStructuredReplier(store *mailcase.Store, opts *StructuredReplyOptions) (*StructuredReplier, error) {
	if store == nil || opts == nil {
		return nil, errors.New("outbox: a structured replier needs a store and options")
	}
	if len(opts.Templates) == 0 {
		return nil, errors.New("outbox: a structured replier needs templates")
	}
	tpls := make(map[string]*Template, len(opts.Templates))
	for name, t := range opts.Templates {
		if t == nil {
			return nil, fmt.Errorf("outbox: structured reply template %q is nil", name)
		}
		tpls[name] = t
	}
	limits := opts.Limits
	if limits == nil {
		limits = DefaultStructuredReplyLimits()
	}
	ack, err := NewAcknowledger(store, &AckOptions{From: opts.From, LoopID: opts.LoopID, Codec: opts.Codec,
		OwnAddresses: opts.OwnAddresses, NoReply: opts.NoReply, Limits: limits, Bounces: opts.Bounces,
		Cases: opts.Cases, Now: opts.Now})
	if err != nil {
		return nil, err
	}
	return &StructuredReplier{ack: ack, tpls: tpls}, nil
}

// HasTemplate reports whether the replier has a template called name.
func (s *StructuredReplier) HasTemplate(name string) bool { return s.tpls[name] != nil }

// Respond implements mailcase.Responder.
func (s *StructuredReplier) Respond(ctx context.Context, d *mailcase.Delivery, r *mailcase.Result) (string, error) {
	rep := r.Outcome.StructuredReply
	if r.Outcome.Action != mailcase.ActionStructured || rep == nil || r.Message == nil {
		return "", nil
	}
	tpl := s.tpls[rep.Template]
	if tpl == nil {
		return "", fmt.Errorf("outbox: structured reply: no template %q", rep.Template)
	}
	addr := rep.To
	if addr == "" {
		addr = r.Message.From.Email
	}
	to, why, err := s.ack.checkKind(ctx, d, r, addr, KindStructuredReply, "structured reply")
	if err != nil || why != "" {
		return why, err
	}
	var c mailcase.Case
	if r.Outcome.CaseID != "" {
		var ok bool
		c, ok, err = s.ack.o.Cases.GetCase(ctx, r.Outcome.CaseID)
		if err != nil {
			return "", fmt.Errorf("outbox: structured reply: %w", err)
		}
		if !ok {
			return "", fmt.Errorf("outbox: structured reply: case %s not found", r.Outcome.CaseID)
		}
	}
	m, err := s.ack.composeKind(d, r.Message, c, to, s.ack.o.Now(), KindStructuredReply, tpl, rep.Vars)
	if err != nil {
		return "", err
	}
	id, err := s.ack.store.Enqueue(ctx, m)
	if err != nil {
		return "", err
	}
	return "structured reply " + rep.Template + " queued for " + to + " (outbox " + id + ")", nil
}
