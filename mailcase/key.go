package mailcase

import "strings"

// IdempotencyKey returns the key under which a mail is filed at most once: the mailbox name and the Message-ID. A mail without a
// Message-ID has a derived ID (a hash of its bytes, see DerivedMessageID),
// so the same bytes always get the same key. Pipelines and structured
// handlers use this one function so their keys agree.
func IdempotencyKey(mailbox string, m *Message) string {
	return mailbox + "\x00" + m.ID
}

// ToEmail returns the record filed for m: an inbound email with the given
// idempotency key and mailbox, sharing m's slices (the Store copies what it
// keeps).
func (m *Message) ToEmail(key, mailbox string) *Email {
	return &Email{
		IdempotencyKey: key,
		Mailbox:        mailbox,
		Direction:      Inbound,
		MessageID:      m.ID,
		InReplyTo:      m.InReplyTo,
		References:     m.References,
		From:           m.From,
		To:             m.To,
		Cc:             m.Cc,
		Subject:        m.Subject,
		Date:           m.Date,
		Text:           m.Text,
		ReplyText:      m.ReplyText,
		HTML:           m.HTML,
		Attachments:    m.Attachments,
		Problems:       problemLines(m.Problems),
	}
}

// problemLines returns the problems as the lines an Email keeps.
func problemLines(ps []Problem) []string {
	if len(ps) == 0 {
		return nil
	}
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = strings.ToValidUTF8(p.String(), "\uFFFD")
	}
	return out
}
