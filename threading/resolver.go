package threading

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/emailcrm/emailcrm/mailcase"
)

// Resolver is the thread resolution ladder. It tries independent
// resolvers in this order and stops at the first that names a case:
//
//  1. message-id-signed: our signed Message-IDs in In-Reply-To/References
//  2. message-id-store: In-Reply-To/References looked up in the store
//  3. token-subject: a signed [ref:...] token in the subject
//  4. token-body: a signed token in the body (text, or HTML rendered)
//  5. context-id: a signed ctx:<number>.<mac> context ID in the body
//  6. shared-reference: a Message-ID in In-Reply-To/References that a
//     filed mail of the case also refers to, when the Index is a
//     ReferenceIndex (a thread whose first mail the mailbox never received)
//  7. subject-number: a bare case number in a configured subject format
//  8. thread-index: Thread-Index (signed conversation GUID) or Thread-Topic
//
// Signed markers and Message-IDs always thread. A shared reference (6), a
// bare number (7) and an unsigned Thread-Topic (8) thread only when the
// sender is the case's
// contact, a participant of the case, or an employee (anti-hijack);
// our own addresses (Options.OwnAddresses and the receiving mailbox's)
// never count as participants;
// a refused number is recorded in the decision's Reason and the ladder goes
// on, ending with a new case.
//
// A case found closed is handled by the closed-case policy; see
// Options. Automatic mail never reopens a case: it is appended to it.
//
// A Resolver is safe for concurrent use.
type Resolver struct {
	opts  Options
	codec *Codec
	// own is the normalised set of Options.OwnAddresses.
	own    map[string]bool
	ladder []resolver
	log    *slog.Logger
}

var _ mailcase.ThreadResolver = (*Resolver)(nil)

// NewResolver returns a Resolver over idx.
func NewResolver(idx Index, opts *Options) (*Resolver, error) {
	if idx == nil {
		return nil, fmt.Errorf("threading: NewResolver with nil index")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	r := &Resolver{opts: o, own: ownSet(o.OwnAddresses), log: o.Logger.With("component", "threading")}
	if o.Key != nil {
		if r.codec, err = NewCodec(o.Key, o.Domain); err != nil {
			return nil, err
		}
		r.codec.now = o.Now
		r.ladder = append(r.ladder, signedIDResolver{codec: r.codec, idx: idx, limit: o.MaxReferences})
	}
	r.ladder = append(r.ladder, storeIDResolver{idx: idx, limit: o.MaxReferences})
	if r.codec != nil {
		r.ladder = append(r.ladder,
			tokenResolver{codec: r.codec, idx: idx},
			tokenResolver{codec: r.codec, idx: idx, body: true},
			contextResolver{codec: r.codec, idx: idx})
	}
	if ri, ok := idx.(ReferenceIndex); ok {
		r.ladder = append(r.ladder, sharedRefResolver{idx: ri, limit: o.MaxReferences})
	}
	if len(o.SubjectFormats) > 0 {
		r.ladder = append(r.ladder, subjectResolver{idx: idx, formats: o.SubjectFormats})
	}
	r.ladder = append(r.ladder, threadIndexResolver{codec: r.codec, idx: idx, formats: o.SubjectFormats})
	return r, nil
}

// Codec returns the codec of the resolver's key, or nil without a key. The
// outgoing-mail helpers (Outgoing) use it.
func (r *Resolver) Codec() *Codec { return r.codec }

// ResolveThread implements mailcase.ThreadResolver.
func (r *Resolver) ResolveThread(ctx context.Context, d *mailcase.Delivery) (mailcase.ThreadDecision, error) {
	if d == nil || d.Message == nil {
		return mailcase.ThreadDecision{Action: mailcase.ThreadNew, Reason: "no message"}, nil
	}
	return r.resolve(ctx, &input{d: d})
}

// resolve runs the ladder over one delivery; in is shared by the rungs.
func (r *Resolver) resolve(ctx context.Context, in *input) (mailcase.ThreadDecision, error) {
	d := in.d
	var notes []string
	for _, rs := range r.ladder {
		h, ok, note, err := rs.resolve(ctx, in)
		if err != nil {
			return mailcase.ThreadDecision{}, err
		}
		if note != "" {
			notes = append(notes, note)
		}
		if !ok {
			continue
		}
		why, onCase := r.senderMayThread(d, h.c)
		if !h.trusted && !onCase {
			notes = append(notes, fmt.Sprintf("anti-hijack: %s %s refused: %s", h.signal, h.detail, why))
			continue
		}
		dec := r.decide(d, h)
		// A signed signal proves the mail answers ours, not that its
		// sender belongs on the case: only a sender on the case adds
		// addresses to its participants.
		dec.SenderOnCase = onCase
		if h.trusted && !onCase {
			notes = append(notes, "sender is not on the case: its addresses do not join the participants ("+why+")")
		}
		if len(notes) > 0 {
			dec.Reason = strings.Join(append([]string{dec.Reason}, notes...), "; ")
		}
		r.log.DebugContext(ctx, "thread resolved", "signal", dec.Signal, "action", dec.Action, "case_id", dec.CaseID)
		return dec, nil
	}
	reason := "no thread signal matched: new case"
	if len(notes) > 0 {
		reason += "; " + strings.Join(notes, "; ")
	}
	return mailcase.ThreadDecision{Action: mailcase.ThreadNew, Reason: reason}, nil
}

// ownSet normalises addresses into a set; unparsable entries are skipped.
func ownSet(addrs []string) map[string]bool {
	m := make(map[string]bool, len(addrs))
	for _, a := range addrs {
		if n := mailcase.NormalizeAddress(a); n != "" {
			m[n] = true
		}
	}
	return m
}

// isOwn reports whether the normalised address a is one of ours: a
// configured mailbox address or alias, or the receiving mailbox's address.
func (r *Resolver) isOwn(d *mailcase.Delivery, a string) bool {
	if r.own[a] {
		return true
	}
	return d.Mailbox != nil && a == mailcase.NormalizeAddress(d.Mailbox.Address)
}

// senderMayThread is the anti-hijack check (mailcase.SenderOnCase) with
// the resolver's own addresses: Options.OwnAddresses and the receiving
// mailbox's address.
func (r *Resolver) senderMayThread(d *mailcase.Delivery, c mailcase.Case) (string, bool) {
	return mailcase.SenderOnCase(d, c, func(a string) bool { return r.isOwn(d, a) })
}

// rule returns the closed-case rule for a case in the delivery's mailbox.
func (r *Resolver) rule(d *mailcase.Delivery, c mailcase.Case) (ClosedRule, string) {
	if q, ok := r.opts.QueuePolicies[c.Queue]; ok && c.Queue != "" {
		return q, "queue " + c.Queue
	}
	if d.Mailbox != nil {
		if m, ok := r.opts.MailboxPolicies[d.Mailbox.Name]; ok {
			return m, "mailbox " + d.Mailbox.Name
		}
	}
	return ClosedRule{Policy: r.opts.ClosedPolicy}, "default"
}

// decide applies the closed-case policy to a found case.
func (r *Resolver) decide(d *mailcase.Delivery, h hit) mailcase.ThreadDecision {
	c := h.c
	dec := mailcase.ThreadDecision{
		Action: mailcase.ThreadAppend, CaseID: c.ID, CaseNumber: c.Number,
		Signal: h.signal, Detail: h.detail,
	}
	sub := ""
	if c.ParentID != "" {
		sub = fmt.Sprintf(" (sub-case of %s)", c.ParentID)
		dec.Detail += sub
	}
	if !c.Status.IsClosed() {
		dec.Reason = fmt.Sprintf("%s matched case %s%s", h.signal, c.Number, sub)
		return dec
	}
	if d.Auto.IsAuto {
		dec.Reason = fmt.Sprintf("%s matched closed case %s; automatic mail (%s) is appended without reopening", h.signal, c.Number, d.Auto.Kind)
		return dec
	}
	rule, from := r.rule(d, c)
	base := fmt.Sprintf("%s matched closed case %s; policy %s (%s)", h.signal, c.Number, rule.Policy, from)
	switch rule.Policy {
	case PolicyReopen:
		dec.Action = mailcase.ThreadReopen
		dec.Reason = base + ": reopened"
	case PolicyReopenWithin:
		within := rule.ReopenWithin
		if within == 0 {
			within = r.opts.ReopenWithin
		}
		closedAt := c.ClosedAt
		if closedAt.IsZero() {
			closedAt = c.UpdatedAt
		}
		age := r.opts.Now().Sub(closedAt)
		if !closedAt.IsZero() && age <= within {
			dec.Action = mailcase.ThreadReopen
			dec.Reason = fmt.Sprintf("%s: closed %s ago, within %s: reopened", base, roundDur(age), within)
		} else {
			dec.Action = mailcase.ThreadNewLinked
			dec.Reason = fmt.Sprintf("%s: closed %s ago, beyond %s: new case linked to %s", base, roundDur(age), within, c.Number)
			if closedAt.IsZero() {
				dec.Reason = fmt.Sprintf("%s: closing time unknown: new case linked to %s", base, c.Number)
			}
		}
	case PolicyNewLinked:
		dec.Action = mailcase.ThreadNewLinked
		dec.Reason = base + ": new case linked to " + c.Number
	case PolicyNew:
		dec.Action = mailcase.ThreadNew
		dec.CaseID, dec.CaseNumber = "", ""
		dec.Reason = base + ": new case (old case " + c.Number + " left closed)"
	case PolicyReject:
		dec.Action = mailcase.ThreadReject
		dec.Reason = base + ": rejected with a notice"
	}
	return dec
}

func roundDur(d time.Duration) time.Duration {
	if d > time.Hour {
		return d.Round(time.Hour)
	}
	return d.Round(time.Second)
}
