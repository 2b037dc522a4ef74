package mailcase

import "fmt"

// SenderOnCase is the anti-hijack rule. It reports whether the sender of d
// belongs on case c, and when not, why. A thread resolver applies it to
// every signal anyone can forge (a bare case number, an unsigned
// Message-ID) before it files a mail on c, and reports the answer in
// ThreadDecision.SenderOnCase for every case it finds, so that only mail
// from a sender on the case adds addresses to the case's participants.
//
// isOwn reports whether a normalised address is one of the receiving
// side's own addresses (mailbox addresses and aliases); nil means only
// d.Mailbox.Address. Our own addresses are in the To line of every case's
// first mail, so they prove nothing.
//
// The sender belongs on the case when it is
//   - an employee (the pipeline reports SenderEmployee only for
//     authenticated mail);
//   - the case's contact, unless that contact is the unknown-sender
//     placeholder (it stands for many senders) or the From is one of our
//     own addresses;
//   - a participant of the case (Case.Participants) that is not one of our
//     own addresses.
//
// A From that is the unknown-sender placeholder's address (the pipeline
// reports it as SenderUnknown with the placeholder in Sender.Contact)
// never belongs on a case.
func SenderOnCase(d *Delivery, c Case, isOwn func(addr string) bool) (string, bool) {
	if d == nil || d.Message == nil {
		return "no message", false
	}
	own := func(a string) bool {
		if isOwn != nil && isOwn(a) {
			return true
		}
		return d.Mailbox != nil && a == NormalizeAddress(d.Mailbox.Address)
	}
	if d.Sender.Kind == SenderEmployee {
		return "", true
	}
	from := NormalizeAddress(d.Message.From.Email)
	ct := d.Sender.Contact
	if ct != nil && ct.Placeholder && from != "" && from == NormalizeAddress(ct.Email) {
		return fmt.Sprintf("sender %s is the unknown-sender placeholder's address", redactAddr(d.Message.From.Email)), false
	}
	fromOwn := from != "" && own(from)
	if ct != nil && ct.ID != "" && !ct.Placeholder && ct.ID == c.ContactID && !fromOwn {
		return "", true
	}
	if fromOwn {
		return fmt.Sprintf("sender %s is one of our own addresses and not an authenticated employee", redactAddr(d.Message.From.Email)), false
	}
	for _, a := range []string{from, NormalizeAddress(d.Sender.Address)} {
		if a == "" || own(a) {
			continue
		}
		for _, p := range c.Participants {
			if NormalizeAddress(p) == a {
				return "", true
			}
		}
	}
	return fmt.Sprintf("sender %s is not the case's contact, a participant or an employee", redactAddr(d.Message.From.Email)), false
}

// redactAddr keeps the first letter and the domain of an address.
func redactAddr(addr string) string { return redactedAddress(addr).LogValue().String() }
