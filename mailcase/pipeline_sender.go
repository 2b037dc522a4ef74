package mailcase

import (
	"context"
	"errors"

	"github.com/emailcrm/emailcrm/mailcase/mailauth"
)

// senderAddress is the address identifying the sender: From, else Sender,
// else the first Reply-To, else the Return-Path.
func (j *job) senderAddress() Address {
	m := j.m
	switch {
	case m.From.Email != "":
		return m.From
	case m.Sender.Email != "":
		return m.Sender
	case len(m.ReplyTo) > 0 && m.ReplyTo[0].Email != "":
		return m.ReplyTo[0]
	case IsNullSender(m.ReturnPath): // "" too; MAILER-DAEMON@host, #@[]
		return Address{}
	}
	return Address{Email: m.ReturnPath}
}

func (j *job) setSender(m SenderMatch, note string) {
	j.d.Sender = m
	j.out.Sender = &m
	r := m.Reason
	if note != "" {
		r += "; " + note
	}
	j.out.Record(stageSender, string(m.Kind), r)
}

// matchParty is the party of a match without any policy: the matched
// contact or account (automatic and filtered mail use it as it is).
func matchParty(m SenderMatch) party {
	switch m.Kind {
	case SenderContact:
		if m.Contact != nil {
			return party{m.Contact.ID, m.Contact.AccountID}
		}
	case SenderAccount:
		if m.Account != nil {
			return party{accountID: m.Account.ID}
		}
	case SenderEmployee:
		if m.Contact != nil && len(m.Candidates) == 0 {
			return party{m.Contact.ID, m.Contact.AccountID}
		}
	}
	return party{}
}

// linkSender identifies the sender without applying policies (filtered,
// automatic and oversized mail). The employee trust rule applies all the
// same (trustMatch): an unauthenticated employee address is linked as the
// contact having it, if any, never as the employee.
func (j *job) linkSender(ctx context.Context, note string) (party, error) {
	m, err := j.p.senders.MatchSender(ctx, j.senderAddress())
	if err != nil {
		return party{}, err
	}
	if m.Address == "" {
		m.Address = NormalizeAddress(j.senderAddress().Email)
	}
	m, trust, err := j.trustMatch(ctx, m)
	if err != nil {
		return party{}, err
	}
	j.setSender(m, join(trust, note))
	return matchParty(m), nil
}

// trustMatch applies the employee trust rule to a match: an employee match is kept only when
// the From address is authenticated (see Options.Authenticated); otherwise
// the employee is dropped and the match falls back to the contacts having
// the address (SenderContact for one, SenderAmbiguous for several) or to
// SenderUnknown. note says what was decided ("" for other kinds).
func (j *job) trustMatch(ctx context.Context, m SenderMatch) (SenderMatch, string, error) {
	if m.Kind != SenderEmployee {
		m, note := placeholderMatch(m, "")
		return m, note, nil
	}
	ok, why, err := j.authenticated(ctx)
	if err != nil {
		return SenderMatch{}, "", err
	}
	if ok {
		return m, "employee trusted: " + why, nil
	}
	note := "employee identity not trusted (" + why + ")"
	j.logger().WarnContext(ctx, "employee address without authentication; not trusted", "from", RedactAddress(m.Address))
	m.Employee = nil
	switch {
	case len(m.Candidates) > 1:
		m.Kind = SenderAmbiguous
		note += "; matched as ambiguous contacts"
	case m.Contact != nil:
		m.Kind = SenderContact
		note += "; matched as contact " + m.Contact.ID
	default:
		m.Kind = SenderUnknown
		note += "; handled as unknown sender"
	}
	m, note = placeholderMatch(m, note)
	return m, note, nil
}

// placeholderMatch downgrades a match on the unknown-sender placeholder's
// own address to SenderUnknown, keeping the placeholder in Contact so the
// thread resolver (SenderOnCase) and the filing know: anyone can write
// that From, so it identifies nobody, never continues a case by number and
// never adds participants.
func placeholderMatch(m SenderMatch, note string) (SenderMatch, string) {
	if m.Kind != SenderContact || m.Contact == nil || !m.Contact.Placeholder {
		return m, note
	}
	m.Kind = SenderUnknown
	return m, join(note, "the address is the unknown-sender placeholder's: handled as unknown sender")
}

// fromPlaceholder reports whether the mail's From is the unknown-sender
// placeholder's address (see placeholderMatch).
func fromPlaceholder(d *Delivery) bool {
	ct := d.Sender.Contact
	return d.Sender.Kind == SenderUnknown && ct != nil && ct.Placeholder
}

// identifySender is stage 8: match, trust check, then the mailbox's
// ambiguity and unknown-sender policies. It returns the party the mail is
// filed under and sets Delivery.Sender, which the router reads (the
// internal-support queue of an ambiguous sender is a route rule: see
// mailboxRouter); done means the mail was refused and recorded.
func (j *job) identifySender(ctx context.Context) (who party, done bool, err error) {
	from := j.senderAddress()
	m, err := j.p.senders.MatchSender(ctx, from)
	if err != nil {
		return party{}, true, err
	}
	if m.Address == "" {
		m.Address = NormalizeAddress(from.Email)
	}
	m, note, err := j.trustMatch(ctx, m)
	if err != nil {
		return party{}, true, err
	}
	mb := &j.p.mb
	switch m.Kind {
	case SenderContact, SenderAccount, SenderEmployee:
		who = matchParty(m)
	case SenderAmbiguous:
		switch mb.Ambiguity {
		case AmbiguousFirst:
			if m.Contact != nil {
				who = party{m.Contact.ID, m.Contact.AccountID}
				note = join(note, j.policy("ambiguous sender", "first: contact "+m.Contact.ID))
			} else if m.Account != nil {
				who = party{accountID: m.Account.ID}
				note = join(note, j.policy("ambiguous sender", "first: account "+m.Account.ID))
			} else {
				note = join(note, j.policy("ambiguous sender", "first: no candidate record, left unassigned"))
			}
		case AmbiguousInternal:
			note = join(note, j.policy("ambiguous sender", "internal: unassigned, queue "+mb.InternalQueue))
		default:
			note = join(note, j.policy("ambiguous sender", "unassigned: no contact or account"))
		}
	case SenderUnknown:
		switch {
		case j.p.noContacts:
			note = join(note, j.policy("unknown sender", "none: the store has no contact directory, the case has no contact"))
		case mb.UnknownSender == UnknownReject:
			j.setSender(m, join(note, j.policy("unknown sender", "reject")))
			if err := j.record(ctx, party{}, j.email(), ""); err != nil {
				return party{}, true, err
			}
			j.out.Action = ActionRejected
			j.out.Record(stageFile, "rejected", "unknown sender refused by the mailbox policy; mail recorded")
			return party{}, true, nil
		case mb.UnknownSender == UnknownCreateContact:
			c, created, err := j.findOrCreateContact(ctx, from, mb.Internal, false)
			if err != nil {
				return party{}, true, err
			}
			who = party{c.ID, c.AccountID}
			note = join(note, j.policy("unknown sender", "create: "+createdWord(created, j.po.DryRun)+" contact "+c.ID))
		default:
			id, why, err := j.placeholder(ctx)
			if err != nil {
				return party{}, true, err
			}
			who = party{contactID: id}
			note = join(note, j.policy("unknown sender", "placeholder: "+why))
		}
	}
	j.setSender(m, note)
	return who, false, nil
}

// policy records which mailbox policy decided the sender (Outcome.SenderPolicy)
// and returns the note for the sender step.
func (j *job) policy(what, decision string) string {
	j.out.SenderPolicy = what + ": " + decision
	return "policy " + decision
}

func createdWord(created, dry bool) string {
	switch {
	case created && dry:
		return "would create"
	case created:
		return "created"
	}
	return "found"
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// authenticated says whether the From address is authenticated, and why.
func (j *job) authenticated(ctx context.Context) (bool, string, error) {
	r, err := j.authenticate(ctx)
	if err != nil {
		return false, "", err
	}
	return r.Pass, string(r.Method) + ": " + r.Reason, nil
}

// authenticate computes the sender authentication once per mail (retries
// included), records it in the outcome and the Delivery, and returns it.
// Only a done ctx is an error.
func (j *job) authenticate(ctx context.Context) (mailauth.Result, error) {
	if j.out.Auth != nil {
		return *j.out.Auth, nil
	}
	var r mailauth.Result
	if f := j.p.opts.Authenticated; f != nil {
		r = mailauth.Result{Method: mailauth.MethodCallback, Pass: f(j.m), FromDomain: DomainOf(j.m.From.Email)}
		r.Reason = "Options.Authenticated refused"
		if r.Pass {
			r.Reason = "Options.Authenticated"
		}
	} else {
		var err error
		if r, err = j.p.auth.VerifySender(ctx, j.raw); err != nil {
			return mailauth.Result{}, err
		}
		if from := DomainOf(j.m.From.Email); r.Pass && r.FromDomain != from {
			// The verifier read another From than the parser did (an
			// ambiguous header): trust neither.
			r.Pass = false
			r.Reason = "authenticated From domain " + r.FromDomain + " is not the From domain " + from + " of the parsed mail; " + r.Reason
		}
	}
	j.out.Auth = &r
	j.d.Auth = r
	decision := "not authenticated"
	if r.Pass {
		decision = "authenticated"
	}
	j.out.Record(stageAuth, decision, string(r.Method)+": "+r.Reason)
	return r, nil
}

// senderForgetter is implemented by matchers with a cache (see
// StoreSenderMatcher.ForgetSender).
type senderForgetter interface{ ForgetSender(addr string) }

// findOrCreateContact looks addr up again and creates a contact when none
// has it. Creation is serialised in the pipeline so two mails from one new
// sender do not create two contacts.
func (j *job) findOrCreateContact(ctx context.Context, a Address, internal, placeholder bool) (Contact, bool, error) {
	addr := NormalizeAddress(a.Email)
	if addr == "" {
		return Contact{}, false, &Error{Code: InvalidArgument, Op: "CreateContact", Err: errors.New("no usable sender address")}
	}
	p := j.p
	p.contactMu.Lock()
	defer p.contactMu.Unlock()
	cs, err := p.store.FindContacts(ctx, addr)
	if err != nil {
		return Contact{}, false, err
	}
	if len(cs) > 0 {
		return cs[0], false, nil
	}
	if j.po.DryRun {
		return Contact{ID: "(new)", Email: addr, Name: a.Name}, true, nil
	}
	c, err := p.store.CreateContact(ctx, &NewContact{Name: a.Name, Email: addr, Internal: internal, Placeholder: placeholder})
	if err != nil {
		return Contact{}, false, err
	}
	if f, ok := p.senders.(senderForgetter); ok {
		f.ForgetSender(addr)
	}
	j.logger().DebugContext(ctx, "contact created for a sender", "contact_id", c.ID, "placeholder", placeholder)
	return c, true, nil
}

// placeholder returns the unknown-sender placeholder contact.
func (j *job) placeholder(ctx context.Context) (id, why string, err error) {
	mb := &j.p.mb
	if mb.UnknownContactID != "" {
		return mb.UnknownContactID, "configured contact " + mb.UnknownContactID, nil
	}
	j.p.contactMu.Lock()
	id = j.p.placeholderID
	j.p.contactMu.Unlock()
	if id != "" {
		return id, "contact " + id, nil
	}
	c, created, err := j.findOrCreateContact(ctx, Address{Name: "Unknown sender", Email: j.p.placeholderAddress()}, false, true)
	if err != nil {
		return "", "", err
	}
	if !j.po.DryRun {
		j.p.contactMu.Lock()
		j.p.placeholderID = c.ID
		j.p.contactMu.Unlock()
	}
	return c.ID, createdWord(created, j.po.DryRun) + " placeholder contact " + c.ID, nil
}

// placeholderAddress is the address of the placeholder contact, in the
// reserved domain "invalid" (RFC 2606) so that it routes nowhere. It is
// never a participant of a case (stores leave a placeholder contact's
// address out) and mail claiming it is handled as from an unknown sender.
func (p *Pipeline) placeholderAddress() string {
	return "unknown-sender@invalid"
}
