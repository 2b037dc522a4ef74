package drivertest

import (
	"bytes"
	"io"
	"log/slog"
	"slices"
	"strings"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// rawOf returns a raw mail for e (its bytes identify the filing that
// handed it over).
func rawOf(e *driver.Email, variant string) []byte {
	return []byte("From: " + e.From.Email + "\r\nMessage-ID: <" + e.MessageID + ">\r\nSubject: " + e.Subject +
		"\r\n\r\n" + variant + " " + strings.Repeat("It is on fire. ", 40) + "\r\n")
}

func (f *fixture) raw() driver.RawKeeper { return f.d.(driver.RawKeeper) }

// wantRaw checks the raw mail kept for key.
func (f *fixture) wantRaw(key string, want []byte, what string) {
	f.t.Helper()
	got, err := f.raw().GetRaw(f.ctx, key)
	if err != nil {
		f.t.Errorf("%s: GetRaw: %v", what, err)
		return
	}
	if !bytes.Equal(got, want) {
		f.t.Errorf("%s: GetRaw = %d bytes %.80q, want %d bytes %.80q", what, len(got), got, len(want), want)
	}
}

// ownKeys returns the keys RawKeys lists that this subtest filed, in order.
func (f *fixture) ownKeys(after string, limit int) []string {
	f.t.Helper()
	keys, err := f.raw().RawKeys(f.ctx, after, limit)
	f.noErr(err, "RawKeys")
	var own []string
	for _, k := range keys {
		if strings.Contains(k, f.tag) {
			own = append(own, k)
		}
	}
	return own
}

// Filing keeps Email.Raw once per mail, on every filing path; a duplicate
// filing and a later PutRaw never replace it; records read back have no
// Raw; RawKeys lists the keys in the order kept.
func testRawKeptOnce(f *fixture) {
	rk := f.raw()
	created, appended, recorded, bare := f.mail(), f.mail(), f.mail(), f.mail()
	created.Raw, appended.Raw, recorded.Raw = rawOf(created, "first"), rawOf(appended, "first"), rawOf(recorded, "first")
	c := f.createCase(created)
	f.noErr(f.d.AppendEmail(f.ctx, c.ID, appended), "AppendEmail")
	f.noErr(f.d.RecordInteraction(f.ctx, &driver.Interaction{Kind: driver.KindEmail, Email: recorded}), "RecordInteraction")
	f.noErr(f.d.AppendEmail(f.ctx, c.ID, bare), "AppendEmail without raw")
	f.wantRaw(created.IdempotencyKey, rawOf(created, "first"), "CreateCase")
	f.wantRaw(appended.IdempotencyKey, rawOf(appended, "first"), "AppendEmail")
	f.wantRaw(recorded.IdempotencyKey, rawOf(recorded, "first"), "RecordInteraction")
	if _, err := rk.GetRaw(f.ctx, bare.IdempotencyKey); f.d.ErrorCode(err) != driver.NotFound {
		f.t.Errorf("GetRaw of a mail filed without raw: err %v, want NotFound", err)
	}

	// Duplicates (redeliveries) never write the raw mail again.
	for _, e := range []*driver.Email{created, appended, recorded} {
		e.Raw = rawOf(e, "redelivered")
	}
	if _, err := f.d.CreateCase(f.ctx, f.newCase(created)); err != nil {
		f.t.Errorf("CreateCase again: %v", err)
	}
	f.noErr(f.d.AppendEmail(f.ctx, c.ID, appended), "AppendEmail again")
	f.noErr(f.d.RecordInteraction(f.ctx, &driver.Interaction{Kind: driver.KindEmail, Email: recorded}), "RecordInteraction again")
	f.noErr(rk.PutRaw(f.ctx, created.IdempotencyKey, []byte("replacement")), "PutRaw on a kept key (a no-op)")
	f.wantRaw(created.IdempotencyKey, rawOf(created, "first"), "CreateCase after duplicates")
	f.wantRaw(appended.IdempotencyKey, rawOf(appended, "first"), "AppendEmail after duplicates")
	f.wantRaw(recorded.IdempotencyKey, rawOf(recorded, "first"), "RecordInteraction after duplicates")

	// PutRaw keeps the raw mail of a key that has none.
	f.noErr(rk.PutRaw(f.ctx, bare.IdempotencyKey, rawOf(bare, "put")), "PutRaw")
	f.wantRaw(bare.IdempotencyKey, rawOf(bare, "put"), "PutRaw")
	if _, err := rk.GetRaw(f.ctx, "never-"+f.tag); f.d.ErrorCode(err) != driver.NotFound {
		f.t.Errorf("GetRaw of an unknown key: err %v, want NotFound", err)
	}

	want := []string{created.IdempotencyKey, appended.IdempotencyKey, recorded.IdempotencyKey, bare.IdempotencyKey}
	if got := f.ownKeys("", 0); !slices.Equal(got, want) {
		f.t.Errorf("RawKeys = %q, want %q (the order kept)", got, want)
	}
	if got := f.ownKeys(created.IdempotencyKey, 2); !slices.Equal(got, want[1:3]) {
		f.t.Errorf("RawKeys(after first, 2) = %q, want %q", got, want[1:3])
	}
	if got := f.ownKeys(bare.IdempotencyKey, 0); len(got) != 0 {
		f.t.Errorf("RawKeys(after last) = %q, want none", got)
	}
	if _, err := rk.RawKeys(f.ctx, "never-"+f.tag, 1); f.d.ErrorCode(err) != driver.NotFound {
		f.t.Errorf("RawKeys after an unknown key: err %v, want NotFound", err)
	}

	// Records read back never carry Raw.
	if f.cap.Lister {
		for _, e := range emailsOf(f.timeline(c.ID)) {
			if e.Raw != nil {
				f.t.Errorf("ListInteractions returned Email.Raw for %q", e.IdempotencyKey)
			}
		}
	}
	if eu, ok := f.d.(driver.EmailUpdater); ok {
		e, err := eu.GetEmail(f.ctx, created.IdempotencyKey)
		f.noErr(err, "GetEmail")
		if e.Raw != nil {
			f.t.Error("GetEmail returned Email.Raw")
		}
	}
}

// Raw mail of every byte value and of several MiB comes back exactly, and
// the portable Store reads it.
func testRawLarge(f *fixture) {
	e := f.mail()
	big := append(rawOf(e, "large"), binary(3<<20, 7)...)
	big = append(big, bytes.Repeat([]byte("quoted history > "), 100_000)...)
	e.Raw = big
	f.createCase(e)
	f.wantRaw(e.IdempotencyKey, big, "large raw mail")
	got, ok, err := f.s.GetRaw(f.ctx, e.IdempotencyKey)
	f.noErr(err, "Store.GetRaw")
	if !ok || !bytes.Equal(got, big) {
		f.t.Errorf("Store.GetRaw = %d bytes, %v; want the %d bytes kept", len(got), ok, len(big))
	}
	if !f.s.KeepsRaw() {
		f.t.Error("Store.KeepsRaw = false for a RawKeeper driver by default")
	}
}

// StoreOptions.DiscardRaw turns keeping off through the portable Store.
func testRawDiscarded(f *fixture) {
	s := mailcase.NewStore(f.d, &mailcase.StoreOptions{DiscardRaw: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if s.KeepsRaw() {
		f.t.Error("KeepsRaw = true with DiscardRaw")
	}
	e := f.mail()
	e.Raw = rawOf(e, "discarded")
	_, err := s.CreateCase(f.ctx, f.newCase(e))
	f.noErr(err, "Store.CreateCase")
	f.noErr(s.PutRaw(f.ctx, e.IdempotencyKey, e.Raw), "Store.PutRaw with DiscardRaw (a no-op)")
	if _, ok, err := s.GetRaw(f.ctx, e.IdempotencyKey); err != nil || ok {
		f.t.Errorf("GetRaw after filing with DiscardRaw = %v, %v; want nothing kept", ok, err)
	}
}

// UpdateParsed replaces the parsed content of a filed mail and nothing
// else; GetEmail reads a filed mail by key, Problems included.
func testUpdateParsed(f *fixture) {
	eu := f.d.(driver.EmailUpdater)
	onCase, onNone := f.mail(), f.mail()
	onCase.Problems = []string{"Missing Header Separator: the body starts at: x"}
	c := f.createCase(onCase)
	f.noErr(f.d.RecordInteraction(f.ctx, &driver.Interaction{Kind: driver.KindEmail, Email: onNone}), "RecordInteraction")
	for _, want := range []*driver.Email{onCase, onNone} {
		got, err := eu.GetEmail(f.ctx, want.IdempotencyKey)
		f.noErr(err, "GetEmail")
		if d := compareEmail(&got, want); d != "" {
			f.t.Errorf("GetEmail(%q): %s", want.IdempotencyKey, d)
		}
		if !slices.Equal(got.Problems, want.Problems) {
			f.t.Errorf("GetEmail Problems = %q, want %q", got.Problems, want.Problems)
		}
	}
	pc := &driver.ParsedContent{
		Subject: "Printer on fire (fixed)", Text: "The body, restored.\n", ReplyText: "The body, restored.",
		HTML: "<p>restored</p>", Problems: []string{"Malformed Date: x", "Missing From: y"},
		Attachments: []driver.Attachment{{Filename: "log.bin", ContentType: "application/octet-stream", Size: 300, Data: binary(300, 3)}},
	}
	for _, e := range []*driver.Email{onCase, onNone} {
		f.noErr(eu.UpdateParsed(f.ctx, e.IdempotencyKey, pc), "UpdateParsed")
		f.noErr(eu.UpdateParsed(f.ctx, e.IdempotencyKey, pc), "UpdateParsed again")
		want := *e
		want.Subject, want.Text, want.ReplyText, want.HTML, want.Attachments, want.Problems =
			pc.Subject, pc.Text, pc.ReplyText, pc.HTML, pc.Attachments, pc.Problems
		got, err := eu.GetEmail(f.ctx, e.IdempotencyKey)
		f.noErr(err, "GetEmail after UpdateParsed")
		if d := compareEmail(&got, &want); d != "" {
			f.t.Errorf("after UpdateParsed(%q): %s", e.IdempotencyKey, d)
		}
		if !slices.Equal(got.Problems, pc.Problems) {
			f.t.Errorf("after UpdateParsed Problems = %q, want %q", got.Problems, pc.Problems)
		}
	}
	// The case and the thread are untouched.
	after := f.get(c.ID)
	if after.Subject != c.Subject || !slices.Equal(after.Participants, c.Participants) {
		f.t.Errorf("UpdateParsed changed the case: %+v, was %+v", after, c)
	}
	if got, err := f.d.LookupThread(f.ctx, []string{onCase.MessageID}); err != nil || got.ID != c.ID {
		f.t.Errorf("LookupThread after UpdateParsed = %v, %v; want case %s", got.ID, err, c.ID)
	}
	if err := eu.UpdateParsed(f.ctx, "never-"+f.tag, pc); f.d.ErrorCode(err) != driver.NotFound {
		f.t.Errorf("UpdateParsed of an unknown key: err %v, want NotFound", err)
	}
	if _, err := eu.GetEmail(f.ctx, "never-"+f.tag); f.d.ErrorCode(err) != driver.NotFound {
		f.t.Errorf("GetEmail of an unknown key: err %v, want NotFound", err)
	}
}

// Store.Reparse restores a body the parser lost at filing: the filed Email
// has an empty text, the kept raw mail has the body.
func testReparse(f *fixture) {
	e := f.mail()
	e.Text, e.ReplyText, e.HTML = "", "", ""
	e.Raw = []byte("From: " + e.From.Email + "\r\nTo: " + e.To[0].Email + "\r\nSubject: " + e.Subject +
		"\r\nMessage-ID: <" + e.MessageID + ">\r\nThe printer is on fire, send help.\r\n")
	_, err := f.s.CreateCase(f.ctx, f.newCase(e))
	f.noErr(err, "Store.CreateCase")
	dry, err := f.s.Reparse(f.ctx, e.IdempotencyKey, &mailcase.ReparseOptions{DryRun: true})
	f.noErr(err, "Reparse --dry-run")
	if !slices.Contains(dry.Changed, "text") || dry.Written {
		f.t.Errorf("dry run = %+v; want text changed, nothing written", dry)
	}
	if got, _, _ := f.s.GetEmail(f.ctx, e.IdempotencyKey); got.Text != "" {
		f.t.Errorf("dry run wrote the text %q", got.Text)
	}
	r, err := f.s.Reparse(f.ctx, e.IdempotencyKey, nil)
	f.noErr(err, "Reparse")
	if !r.Written || !slices.Contains(r.Changed, "text") || !slices.Contains(r.Changed, "problems") {
		f.t.Errorf("Reparse = %+v; want text and problems changed and written", r)
	}
	got, _, err := f.s.GetEmail(f.ctx, e.IdempotencyKey)
	f.noErr(err, "GetEmail")
	if !strings.Contains(got.Text, "The printer is on fire, send help.") || got.ReplyText != got.Text {
		f.t.Errorf("after Reparse text %q reply %q; want the body restored", got.Text, got.ReplyText)
	}
	if got.Subject != e.Subject || got.MessageID != e.MessageID {
		f.t.Errorf("after Reparse subject %q id %q; want them unchanged", got.Subject, got.MessageID)
	}
	again, err := f.s.Reparse(f.ctx, e.IdempotencyKey, nil)
	f.noErr(err, "Reparse again")
	if len(again.Changed) != 0 || again.Written {
		f.t.Errorf("second Reparse = %+v; want nothing to change", again)
	}
}
