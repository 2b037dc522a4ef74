package drivertest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// keyHint explains failures with keys shaped like the pipeline's.
const keyHint = "idempotency keys are opaque bytes, not text: the pipeline builds mailbox + \"\\x00\" + Message-ID " +
	"(and key + \"\\x00sender\"), so real keys contain NUL bytes; store keys in a binary column, or hash or escape " +
	"them (a PostgreSQL text column rejects NUL); see \"Idempotency\" in the mailcase/driver package doc"

// next returns a new number, unique within the subtest.
func (f *fixture) next() int { f.n++; return f.n }

// addr returns a unique normalised address for name.
func (f *fixture) addr(name string) string {
	return name + "." + f.tag + "@example.com"
}

// domain returns a unique normalised domain for name.
func (f *fixture) domain(name string) string {
	return name + "-" + f.tag + ".example.org"
}

// mail returns a new normalised inbound mail with a unique key and
// Message-ID, as mailcase.Store would pass it to a driver. The key is
// shaped like the pipeline's: mailbox + "\x00" + Message-ID.
func (f *fixture) mail() *driver.Email {
	n := f.next()
	id := "m" + strconv.Itoa(n) + "." + f.tag + "@mail.example.com"
	return &driver.Email{
		IdempotencyKey: "support\x00" + id,
		Mailbox:        "support",
		Direction:      driver.Inbound,
		MessageID:      id,
		From:           driver.Address{Name: "Alice Customer", Email: f.addr("alice")},
		To:             []driver.Address{{Name: "Support", Email: f.addr("support")}},
		Subject:        "Printer on fire " + strconv.Itoa(n),
		Date:           time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Text:           "It is on fire.\n",
		ReplyText:      "It is on fire.",
		HTML:           "<p>It is on fire.</p>",
	}
}

// newCase returns a case request whose first mail is e, in a queue unique
// to the subtest.
func (f *fixture) newCase(e *driver.Email) *driver.NewCase {
	return &driver.NewCase{
		Subject: e.Subject, Status: driver.StatusNew, Priority: driver.PriorityNormal,
		Queue: f.queue(), Origin: "email", First: e,
	}
}

// account returns the ID of a new account named name when the driver can
// create accounts, else "" (stores may require case accounts to exist).
func (f *fixture) account(name string) string {
	f.t.Helper()
	dw, ok := f.d.(driver.DirectoryWriter)
	if !ok {
		return ""
	}
	a, err := dw.CreateAccount(f.ctx, &driver.NewAccount{Name: name, Domains: []string{f.domain("acct" + strconv.Itoa(f.next()))}})
	f.noErr(err, "CreateAccount")
	if a.ID == "" {
		f.t.Fatal("CreateAccount returned an account without ID")
	}
	return a.ID
}

// queue is the subtest's queue, used to list only its own cases.
func (f *fixture) queue() string { return "queue-" + f.tag }

// createCase creates a case through the raw driver.
func (f *fixture) createCase(e *driver.Email) driver.Case {
	f.t.Helper()
	c, err := f.d.CreateCase(f.ctx, f.newCase(e))
	if err != nil && strings.Contains(e.IdempotencyKey, "\x00") {
		f.t.Fatalf("CreateCase with idempotency key %q: %v (code %v); %s", e.IdempotencyKey, err, f.d.ErrorCode(err), keyHint)
	}
	f.noErr(err, "CreateCase")
	if c.ID == "" || c.Number == "" {
		f.t.Fatalf("CreateCase returned a case without ID or number: %+v", c)
	}
	return c
}

func (f *fixture) noErr(err error, what string) {
	f.t.Helper()
	if err != nil {
		f.t.Fatalf("%s: unexpected error: %v (code %v)", what, err, f.d.ErrorCode(err))
	}
}

// wantDriverCode checks that a raw driver error has code want.
func (f *fixture) wantDriverCode(err error, want driver.ErrorCode, what string) {
	f.t.Helper()
	if err == nil {
		f.t.Fatalf("%s: got nil error, want %v", what, want)
	}
	if got := f.d.ErrorCode(err); got != want {
		f.t.Fatalf("%s: ErrorCode(%v) = %v, want %v", what, err, got, want)
	}
}

// wantStoreCode checks that a Store error has code want and matches the
// code's sentinel.
func (f *fixture) wantStoreCode(err error, want driver.ErrorCode, sentinel error, what string) {
	f.t.Helper()
	if err == nil {
		f.t.Fatalf("%s: got nil error, want %v", what, want)
	}
	if got := mailcase.Code(err); got != want {
		f.t.Fatalf("%s: mailcase.Code(%v) = %v, want %v", what, err, got, want)
	}
	if sentinel != nil && !errors.Is(err, sentinel) {
		f.t.Fatalf("%s: errors.Is(%v, %v) = false", what, err, sentinel)
	}
}

// listQueue lists the subtest's cases (newest first).
func (f *fixture) listQueue(opts driver.ListOptions) []driver.Case {
	f.t.Helper()
	opts.Queue = f.queue()
	cs, err := f.d.(driver.Lister).ListCases(f.ctx, &opts)
	f.noErr(err, "ListCases")
	return cs
}

// timeline lists the interactions of case id.
func (f *fixture) timeline(id driver.CaseID) []driver.Interaction {
	f.t.Helper()
	in, err := f.d.(driver.Lister).ListInteractions(f.ctx, id)
	f.noErr(err, "ListInteractions")
	return in
}

// emailsOf returns the mails in a timeline, in order.
func emailsOf(in []driver.Interaction) []*driver.Email {
	var out []*driver.Email
	for _, i := range in {
		if i.Email != nil {
			out = append(out, i.Email)
		}
	}
	return out
}

// findEmail returns the filed mail with key, or nil.
func (f *fixture) findEmail(id driver.CaseID, key string) *driver.Email {
	f.t.Helper()
	for _, e := range emailsOf(f.timeline(id)) {
		if e.IdempotencyKey == key {
			return e
		}
	}
	return nil
}

// compareEmail reports the first difference between a filed mail and what
// was sent, or "". Times are compared to the second (stores may round).
func compareEmail(got, want *driver.Email) string {
	switch {
	case got == nil:
		return "mail missing"
	case got.IdempotencyKey != want.IdempotencyKey:
		return diff("IdempotencyKey", got.IdempotencyKey, want.IdempotencyKey)
	case got.MessageID != want.MessageID:
		return diff("MessageID", got.MessageID, want.MessageID)
	case got.Mailbox != want.Mailbox:
		return diff("Mailbox", got.Mailbox, want.Mailbox)
	case got.Direction != want.Direction:
		return diff("Direction", got.Direction, want.Direction)
	case got.Subject != want.Subject:
		return diff("Subject", got.Subject, want.Subject)
	case got.Text != want.Text:
		return diff("Text", got.Text, want.Text)
	case got.HTML != want.HTML:
		return diff("HTML", got.HTML, want.HTML)
	case got.ReplyText != want.ReplyText:
		return diff("ReplyText", got.ReplyText, want.ReplyText)
	case got.From != want.From:
		return diff("From", got.From, want.From)
	case !slices.Equal(got.To, want.To):
		return diff("To", got.To, want.To)
	case !slices.Equal(got.Cc, want.Cc):
		return diff("Cc", got.Cc, want.Cc)
	case !slices.Equal(got.InReplyTo, want.InReplyTo):
		return diff("InReplyTo", got.InReplyTo, want.InReplyTo)
	case !slices.Equal(got.References, want.References):
		return diff("References", got.References, want.References)
	case got.Auto != want.Auto || got.Summary != want.Summary:
		return diff("Auto/Summary", [2]bool{got.Auto, got.Summary}, [2]bool{want.Auto, want.Summary})
	case !got.Date.Truncate(time.Second).Equal(want.Date.Truncate(time.Second)):
		return diff("Date", got.Date, want.Date)
	case len(got.Attachments) != len(want.Attachments):
		return diff("len(Attachments)", len(got.Attachments), len(want.Attachments))
	}
	for i, a := range want.Attachments {
		g := got.Attachments[i]
		switch {
		case g.Filename != a.Filename || g.ContentType != a.ContentType || g.ContentID != a.ContentID || g.Inline != a.Inline:
			return diff(fmt.Sprintf("Attachments[%d] metadata", i),
				[]any{g.Filename, g.ContentType, g.ContentID, g.Inline}, []any{a.Filename, a.ContentType, a.ContentID, a.Inline})
		case g.Size != a.Size:
			return diff(fmt.Sprintf("Attachments[%d].Size", i), g.Size, a.Size)
		case !bytes.Equal(g.Data, a.Data):
			return fmt.Sprintf("Attachments[%d].Data differs (%d bytes, want %d)", i, len(g.Data), len(a.Data))
		}
	}
	return ""
}

func diff(field string, got, want any) string {
	s := fmt.Sprintf("%s = %.200q, want %.200q", field, fmt.Sprint(got), fmt.Sprint(want))
	return s
}

// binary returns n bytes covering every byte value, deterministic per seed.
func binary(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	for i := 0; i < 256 && i < n; i++ {
		b[i] = byte(i)
	}
	return b
}

// dir returns the driver's Directory; tests that call it declare
// needDirectory.
func (f *fixture) dir() driver.Directory { return f.d.(driver.Directory) }

// contact creates a contact when the driver has a Directory; without one it
// returns a zero Contact, and cases are created without a contact.
func (f *fixture) contact(c *driver.NewContact) driver.Contact {
	f.t.Helper()
	if !f.cap.Directory {
		return driver.Contact{}
	}
	ct, err := f.dir().CreateContact(f.ctx, c)
	f.noErr(err, "CreateContact")
	return ct
}
