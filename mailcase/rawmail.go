package mailcase

import (
	"bytes"
	"context"
	"slices"

	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// ParsedContent is the parsed content of a filed mail that Reparse
// replaces (see driver.EmailUpdater).
type ParsedContent = driver.ParsedContent

// rawPolicy drops e.Raw (a normalised copy) when the store does not keep
// raw mail.
func (s *Store) rawPolicy(e *Email) {
	if !s.KeepsRaw() {
		e.Raw = nil
	}
}

// KeepsRaw reports whether the store keeps the original raw mail of the
// mails it files: the driver can (driver.RawKeeper) and
// StoreOptions.DiscardRaw is not set.
func (s *Store) KeepsRaw() bool {
	_, ok := s.d.(driver.RawKeeper)
	return ok && !s.opts.DiscardRaw
}

// PutRaw keeps raw as the original mail of the mail filed under key, when
// none is kept yet (the first bytes kept for a key are never replaced).
// The pipeline does not need it: filing keeps Email.Raw. It does nothing
// when StoreOptions.DiscardRaw is set, and is Unimplemented when the driver
// cannot keep raw mail.
func (s *Store) PutRaw(ctx context.Context, key string, raw []byte) error {
	const op = "PutRaw"
	rk, ok := s.d.(driver.RawKeeper)
	if !ok {
		return &Error{Code: Unimplemented, Op: op}
	}
	if key == "" || len(raw) == 0 {
		return invalid(op, "empty key or raw mail")
	}
	if s.opts.DiscardRaw {
		return nil
	}
	return s.do(ctx, op, true, func(ctx context.Context) error { return rk.PutRaw(ctx, key, raw) })
}

// GetRaw returns the original raw mail of the mail filed under key; ok is
// false when none is kept. It is Unimplemented when the driver cannot keep
// raw mail.
func (s *Store) GetRaw(ctx context.Context, key string) (raw []byte, ok bool, err error) {
	const op = "GetRaw"
	rk, has := s.d.(driver.RawKeeper)
	if !has {
		return nil, false, &Error{Code: Unimplemented, Op: op}
	}
	if key == "" {
		return nil, false, invalid(op, "empty key")
	}
	err = s.do(ctx, op, true, func(ctx context.Context) (err error) {
		raw, err = rk.GetRaw(ctx, key)
		return err
	})
	ok, err = notFound(err)
	return raw, ok, err
}

// RawKeys lists the idempotency keys that have a raw mail kept, in the order
// they were kept: at most limit (limit <= 0 means all), after the key after
// ("" for the first page).
func (s *Store) RawKeys(ctx context.Context, after string, limit int) ([]string, error) {
	const op = "RawKeys"
	rk, ok := s.d.(driver.RawKeeper)
	if !ok {
		return nil, &Error{Code: Unimplemented, Op: op}
	}
	var out []string
	err := s.do(ctx, op, true, func(ctx context.Context) (err error) {
		out, err = rk.RawKeys(ctx, after, limit)
		return err
	})
	return out, err
}

// GetEmail returns the mail filed under key; ok is false when none is. It
// is Unimplemented when the driver cannot (driver.EmailUpdater).
func (s *Store) GetEmail(ctx context.Context, key string) (e Email, ok bool, err error) {
	const op = "GetEmail"
	eu, has := s.d.(driver.EmailUpdater)
	if !has {
		return e, false, &Error{Code: Unimplemented, Op: op}
	}
	if key == "" {
		return e, false, invalid(op, "empty key")
	}
	err = s.do(ctx, op, true, func(ctx context.Context) (err error) {
		e, err = eu.GetEmail(ctx, key)
		return err
	})
	ok, err = notFound(err)
	return e, ok, err
}

// UpdateParsed replaces the parsed content of the mail filed under key (see
// driver.EmailUpdater). The subject is made single-line as on filing. It is
// retried: writing the same content twice changes nothing.
func (s *Store) UpdateParsed(ctx context.Context, key string, c *ParsedContent) error {
	const op = "UpdateParsed"
	eu, ok := s.d.(driver.EmailUpdater)
	if !ok {
		return &Error{Code: Unimplemented, Op: op}
	}
	if key == "" || c == nil {
		return invalid(op, "empty key or content")
	}
	n := *c
	n.Subject = cleanLine(n.Subject)
	return s.do(ctx, op, true, func(ctx context.Context) error { return eu.UpdateParsed(ctx, key, &n) })
}

// ReparseOptions configures Reparse. A nil options pointer is equivalent to
// a zero options value.
type ReparseOptions struct {
	// DryRun computes the changes without writing them.
	DryRun bool
	// Parse is passed to ParseMessage; nil means defaults.
	Parse *ParseOptions
}

// ReparseResult says what Reparse found for one filed mail.
type ReparseResult struct {
	Key       string
	MessageID string
	// Changed names the parsed fields that differ ("subject", "text",
	// "reply_text", "html", "attachments", "problems"), empty when the
	// mail parses as it was filed or was skipped.
	Changed []string
	// Old and New are the stored and the re-parsed content.
	Old, New ParsedContent
	// Skipped says why the mail was not re-parsed ("" when it was): no raw
	// mail kept, a summary filed in place of the mail, or a mail that no
	// longer parses.
	Skipped string
	// Written is true when the changes were stored (not a dry run).
	Written bool
}

// Reparse parses the kept raw mail of the mail filed under key again and,
// unless opts.DryRun, replaces the stored parsed content (subject, text,
// HTML, attachments, problems) when it changed. The case, addresses and
// Message-IDs are left alone. Summaries filed in place of a mail (filtered
// or structured mail, the sender's copy) are skipped. The reply text is
// replaced only when it was the whole text (no reply extractor shortened
// it). A key never filed is NotFound; a store without raw mail or without
// EmailUpdater is Unimplemented.
func (s *Store) Reparse(ctx context.Context, key string, opts *ReparseOptions) (ReparseResult, error) {
	var o ReparseOptions
	if opts != nil {
		o = *opts
	}
	r := ReparseResult{Key: key}
	e, ok, err := s.GetEmail(ctx, key)
	if err != nil {
		return r, err
	}
	if !ok {
		return r, &Error{Code: NotFound, Op: "Reparse", Err: ErrNotFound}
	}
	r.MessageID = e.MessageID
	r.Old = ParsedContent{Subject: e.Subject, Text: e.Text, ReplyText: e.ReplyText, HTML: e.HTML,
		Attachments: e.Attachments, Problems: e.Problems}
	if e.Summary {
		r.Skipped = "a summary is filed in place of the mail"
		return r, nil
	}
	raw, ok, err := s.GetRaw(ctx, key)
	if err != nil {
		return r, err
	}
	if !ok {
		r.Skipped = "no raw mail kept"
		return r, nil
	}
	m, err := ParseMessage(raw, o.Parse)
	if err != nil {
		r.Skipped = "the raw mail does not parse: " + err.Error()
		return r, nil
	}
	n := m.ToEmail(key, e.Mailbox)
	r.New = ParsedContent{Subject: cleanLine(n.Subject), Text: n.Text, ReplyText: e.ReplyText, HTML: n.HTML,
		Attachments: n.Attachments, Problems: n.Problems}
	if e.ReplyText == e.Text {
		r.New.ReplyText = n.Text
	}
	if r.Old.Subject != r.New.Subject {
		r.Changed = append(r.Changed, "subject")
	}
	if r.Old.Text != r.New.Text {
		r.Changed = append(r.Changed, "text")
	}
	if r.Old.ReplyText != r.New.ReplyText {
		r.Changed = append(r.Changed, "reply_text")
	}
	if r.Old.HTML != r.New.HTML {
		r.Changed = append(r.Changed, "html")
	}
	if !sameAttachments(r.Old.Attachments, r.New.Attachments) {
		r.Changed = append(r.Changed, "attachments")
	}
	if !slices.Equal(r.Old.Problems, r.New.Problems) {
		r.Changed = append(r.Changed, "problems")
	}
	if len(r.Changed) == 0 || o.DryRun {
		return r, nil
	}
	if err := s.UpdateParsed(ctx, key, &r.New); err != nil {
		return r, err
	}
	r.Written = true
	return r, nil
}

func sameAttachments(a, b []Attachment) bool {
	return slices.EqualFunc(a, b, func(x, y Attachment) bool {
		return x.Filename == y.Filename && x.ContentType == y.ContentType && x.ContentID == y.ContentID &&
			x.Inline == y.Inline && x.Size == y.Size && bytes.Equal(x.Data, y.Data)
	})
}
