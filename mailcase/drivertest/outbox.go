package drivertest

import (
	"bytes"
	"errors"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// The outbox tests share a database with other subtests (and earlier runs),
// so claims may return messages of others: every check looks only at the
// messages of this subtest, recognised by their mailbox.

func (f *fixture) ob() driver.Outbox { return f.d.(driver.Outbox) }

func (f *fixture) obMailbox() string { return "outbox-" + f.tag }

// outMsg returns a new message of this subtest: a key with NUL bytes like
// the pipeline's, raw bytes with CR LF, NUL and invalid UTF-8.
func (f *fixture) outMsg() *driver.OutboxMessage {
	n := strconv.Itoa(f.next())
	return &driver.OutboxMessage{
		Key:       f.obMailbox() + "\x00ack\x00" + n,
		Mailbox:   f.obMailbox(),
		Kind:      "acknowledgement",
		From:      "support@" + f.domain("company"),
		To:        []string{f.addr("zed" + n), f.addr("amy" + n), `"o'hara; DROP"@` + f.domain("x")},
		MessageID: "out-" + n + "." + f.tag + "@company.example",
		Raw:       []byte("Subject: t\r\n\r\nbody\x00\xff\r\n" + n),
	}
}

// claimOwn claims for holder and returns the claimed messages of this
// subtest, by ID.
func (f *fixture) claimOwn(holder string, limit int, ttl time.Duration) map[string]driver.OutboxMessage {
	f.t.Helper()
	got, err := f.ob().ClaimOutbox(f.ctx, holder, limit, ttl)
	f.noErr(err, "ClaimOutbox")
	own := map[string]driver.OutboxMessage{}
	for _, m := range got {
		if m.Mailbox == f.obMailbox() {
			own[m.ID] = m
		}
	}
	return own
}

// claimAllOwn claims until every due message of this subtest is claimed
// (other subtests' leftovers may come first).
func (f *fixture) claimAllOwn(holder string, want int, ttl time.Duration) map[string]driver.OutboxMessage {
	f.t.Helper()
	all := map[string]driver.OutboxMessage{}
	for range 50 {
		got, err := f.ob().ClaimOutbox(f.ctx, holder, 100, ttl)
		f.noErr(err, "ClaimOutbox")
		for _, m := range got {
			if m.Mailbox == f.obMailbox() {
				all[m.ID] = m
			}
		}
		if len(all) >= want || len(got) == 0 {
			break
		}
	}
	return all
}

func (f *fixture) outbox(id string) driver.OutboxMessage {
	f.t.Helper()
	m, err := f.ob().GetOutbox(f.ctx, id)
	f.noErr(err, "GetOutbox")
	return m
}

func testOutbox(f *fixture) {
	ob := f.ob()
	m := f.outMsg()
	id, err := ob.Enqueue(f.ctx, m)
	f.noErr(err, "Enqueue")
	if id == "" {
		f.t.Fatal("Enqueue returned an empty ID")
	}
	again := *m
	again.Raw = []byte("other content")
	id2, err := ob.Enqueue(f.ctx, &again)
	f.noErr(err, "Enqueue of a queued key")
	if id2 != id {
		f.t.Errorf("Enqueue of a queued key = %q, want the first ID %q (an outbox key is queued once)", id2, id)
	}
	other := *m
	other.Key = m.Key[:len(m.Key)-1] + "\x00x" // differs only after a NUL
	other.MessageID = "other." + m.MessageID
	idOther, err := ob.Enqueue(f.ctx, &other)
	f.noErr(err, "Enqueue of a key differing after a NUL")
	if idOther == id {
		f.t.Error("keys differing only after a NUL byte share one message: outbox keys are opaque bytes, not C strings")
	}

	got := f.outbox(id)
	if got.Status != driver.OutboxPending || got.Attempts != 0 || got.CreatedAt.IsZero() || !got.SentAt.IsZero() {
		f.t.Errorf("queued message: status %q, attempts %d, created %v, sent %v; want pending, 0, set, zero", got.Status, got.Attempts, got.CreatedAt, got.SentAt)
	}
	if got.Key != m.Key || got.CaseID != m.CaseID || got.Mailbox != m.Mailbox || got.Kind != m.Kind || got.From != m.From || got.MessageID != m.MessageID {
		f.t.Errorf("queued message fields changed: got %+v", got)
	}
	if !slices.Equal(got.To, m.To) {
		f.t.Errorf("To = %q, want %q in order", got.To, m.To)
	}
	if !bytes.Equal(got.Raw, m.Raw) {
		f.t.Errorf("Raw = %q, want %q byte for byte", got.Raw, m.Raw)
	}
	got.To[0] = "changed"
	if f.outbox(id).To[0] == "changed" {
		f.t.Error("GetOutbox returned memory shared with the store")
	}

	byID, err := ob.FindOutbox(f.ctx, m.MessageID)
	f.noErr(err, "FindOutbox")
	if byID.ID != id {
		f.t.Errorf("FindOutbox(%q) = %q, want %q", m.MessageID, byID.ID, id)
	}
	_, err = ob.FindOutbox(f.ctx, "never."+f.tag+"@x")
	f.wantDriverCode(err, driver.NotFound, "FindOutbox of an unknown Message-ID")
	_, err = ob.GetOutbox(f.ctx, "missing-"+f.tag)
	f.wantDriverCode(err, driver.NotFound, "GetOutbox of an unknown ID")

	later := f.outMsg()
	later.NextAttemptAt = time.Now().Add(time.Hour)
	idLater, err := ob.Enqueue(f.ctx, later)
	f.noErr(err, "Enqueue due later")

	claimed := f.claimAllOwn("sender-a", 2, time.Minute)
	if _, ok := claimed[idLater]; ok {
		f.t.Error("ClaimOutbox returned a message due in an hour")
	}
	c, ok := claimed[id]
	if !ok || len(claimed) != 2 {
		f.t.Fatalf("ClaimOutbox returned %d due messages of this test, want 2 (%s and %s)", len(claimed), id, idOther)
	}
	if c.Status != driver.OutboxSending || c.Attempts != 1 || !bytes.Equal(c.Raw, m.Raw) {
		f.t.Errorf("claimed message: status %q, attempts %d, raw %q; want sending, 1, the raw bytes", c.Status, c.Attempts, c.Raw)
	}
	if own := f.claimOwn("sender-b", 100, time.Minute); len(own) != 0 {
		f.t.Errorf("a second sender claimed %d messages already claimed", len(own))
	}
	err = ob.FinishOutbox(f.ctx, id, "sender-b", &driver.OutboxResult{Status: driver.OutboxSent})
	f.wantDriverCode(err, driver.FailedPrecondition, "FinishOutbox by a sender that holds no claim")
	err = ob.FinishOutbox(f.ctx, "missing-"+f.tag, "sender-a", &driver.OutboxResult{Status: driver.OutboxSent})
	f.wantDriverCode(err, driver.NotFound, "FinishOutbox of an unknown ID")

	f.noErr(ob.FinishOutbox(f.ctx, id, "sender-a", &driver.OutboxResult{Status: driver.OutboxSent}), "FinishOutbox sent")
	sent := f.outbox(id)
	if sent.Status != driver.OutboxSent || sent.SentAt.IsZero() {
		f.t.Errorf("sent message: status %q, SentAt %v", sent.Status, sent.SentAt)
	}
	err = ob.FinishOutbox(f.ctx, id, "sender-a", &driver.OutboxResult{Status: driver.OutboxSent})
	f.wantDriverCode(err, driver.FailedPrecondition, "FinishOutbox of a message no longer claimed")
	f.noErr(ob.FinishOutbox(f.ctx, idOther, "sender-a", &driver.OutboxResult{Status: driver.OutboxFailed, Error: "550 5.1.1 no such user"}), "FinishOutbox failed")
	failed := f.outbox(idOther)
	if failed.Status != driver.OutboxFailed || failed.LastError != "550 5.1.1 no such user" {
		f.t.Errorf("failed message: status %q, LastError %q", failed.Status, failed.LastError)
	}
	if own := f.claimOwn("sender-b", 100, time.Minute); len(own) != 0 {
		f.t.Errorf("ClaimOutbox returned %d sent or failed messages", len(own))
	}

	list, err := ob.ListOutbox(f.ctx, &driver.OutboxListOptions{Status: driver.OutboxSent})
	f.noErr(err, "ListOutbox by status")
	found := false
	for _, l := range list {
		if l.Status != driver.OutboxSent {
			f.t.Errorf("ListOutbox(status sent) returned a %s message", l.Status)
		}
		if l.ID == id {
			found = true
			if l.Raw != nil {
				f.t.Error("ListOutbox returned raw bytes")
			}
		}
	}
	if !found {
		f.t.Errorf("ListOutbox(status sent) misses %s", id)
	}
	all, err := ob.ListOutbox(f.ctx, &driver.OutboxListOptions{})
	f.noErr(err, "ListOutbox")
	var order []string
	for _, l := range all {
		if l.Mailbox == f.obMailbox() {
			order = append(order, l.ID)
		}
	}
	if want := []string{idLater, idOther, id}; !slices.Equal(order, want) {
		f.t.Errorf("ListOutbox order = %q, want newest first %q", order, want)
	}
	lim, err := ob.ListOutbox(f.ctx, &driver.OutboxListOptions{Limit: 1})
	f.noErr(err, "ListOutbox limit")
	if len(lim) != 1 {
		f.t.Errorf("ListOutbox limit 1 returned %d", len(lim))
	}
}

func testOutboxStatus(f *fixture) {
	ob := f.ob()
	c := f.createCase(f.mail())
	m := f.outMsg()
	m.CaseID = c.ID
	id, err := ob.Enqueue(f.ctx, m)
	f.noErr(err, "Enqueue")
	list, err := ob.ListOutbox(f.ctx, &driver.OutboxListOptions{CaseID: c.ID})
	f.noErr(err, "ListOutbox by case")
	if len(list) != 1 || list[0].ID != id {
		f.t.Errorf("ListOutbox(case) = %d messages, want the one queued for the case", len(list))
	}
	err = ob.SetOutboxStatus(f.ctx, id, driver.OutboxBounced, "x")
	f.wantDriverCode(err, driver.FailedPrecondition, "SetOutboxStatus bounced of a pending message")
	err = ob.SetOutboxStatus(f.ctx, id, driver.OutboxSent, "")
	f.wantDriverCode(err, driver.InvalidArgument, "SetOutboxStatus to sent")
	f.noErr(ob.SetOutboxStatus(f.ctx, id, driver.OutboxCancelled, ""), "cancel a pending message")
	if own := f.claimOwn("s", 100, time.Minute); len(own) != 0 {
		f.t.Error("ClaimOutbox returned a cancelled message")
	}
	f.noErr(ob.SetOutboxStatus(f.ctx, id, driver.OutboxPending, ""), "retry a cancelled message")
	claimed := f.claimAllOwn("s", 1, time.Minute)
	if _, ok := claimed[id]; !ok {
		f.t.Fatal("a message set back to pending is not due at once")
	}
	f.noErr(ob.FinishOutbox(f.ctx, id, "s", &driver.OutboxResult{Status: driver.OutboxFailed, Error: "550 no"}), "FinishOutbox failed")
	f.noErr(ob.SetOutboxStatus(f.ctx, id, driver.OutboxPending, ""), "retry a failed message")
	if r := f.outbox(id); r.Attempts != 0 || r.Status != driver.OutboxPending || r.LastError != "550 no" {
		f.t.Errorf("a retried message: status %q, attempts %d, LastError %q; want pending, 0 (every attempt again), the last error kept", r.Status, r.Attempts, r.LastError)
	}
	claimed = f.claimAllOwn("s", 1, time.Minute)
	if c, ok := claimed[id]; !ok || c.Attempts != 1 {
		f.t.Fatalf("a retried failed message is not due at once with its attempts counted afresh (claimed %v, attempts %d)", ok, c.Attempts)
	}
	err = ob.SetOutboxStatus(f.ctx, id, driver.OutboxCancelled, "")
	f.wantDriverCode(err, driver.FailedPrecondition, "cancel a message being sent")
	f.noErr(ob.FinishOutbox(f.ctx, id, "s", &driver.OutboxResult{Status: driver.OutboxSent}), "FinishOutbox")
	err = ob.SetOutboxStatus(f.ctx, id, driver.OutboxPending, "")
	f.wantDriverCode(err, driver.FailedPrecondition, "retry a sent message (it would be sent twice)")
	f.noErr(ob.SetOutboxStatus(f.ctx, id, driver.OutboxBounced, "550 mailbox unavailable"), "bounce a sent message")
	b := f.outbox(id)
	if b.Status != driver.OutboxBounced || b.LastError != "550 mailbox unavailable" || b.SentAt.IsZero() {
		f.t.Errorf("bounced message: status %q, LastError %q, SentAt %v", b.Status, b.LastError, b.SentAt)
	}
	err = ob.SetOutboxStatus(f.ctx, "missing-"+f.tag, driver.OutboxPending, "")
	f.wantDriverCode(err, driver.NotFound, "SetOutboxStatus of an unknown ID")
}

func testOutboxClaimExpires(f *fixture) {
	ob := f.ob()
	id, err := ob.Enqueue(f.ctx, f.outMsg())
	f.noErr(err, "Enqueue")
	if _, ok := f.claimAllOwn("dead-sender", 1, 200*time.Millisecond)[id]; !ok {
		f.t.Fatal("ClaimOutbox did not return the due message")
	}
	if _, ok := f.claimOwn("live-sender", 100, time.Minute)[id]; ok {
		f.t.Fatal("a live claim was claimed again")
	}
	time.Sleep(500 * time.Millisecond)
	err = ob.FinishOutbox(f.ctx, id, "dead-sender", &driver.OutboxResult{Status: driver.OutboxSent})
	f.wantDriverCode(err, driver.FailedPrecondition, "FinishOutbox after the claim's lease expired (not yet taken by another sender)")
	c, ok := f.claimAllOwn("live-sender", 1, time.Minute)[id]
	if !ok {
		f.t.Fatal("a message whose claim expired (its sender died) is not claimed again")
	}
	if c.Attempts != 2 {
		f.t.Errorf("Attempts after two claims = %d, want 2", c.Attempts)
	}
	err = ob.FinishOutbox(f.ctx, id, "dead-sender", &driver.OutboxResult{Status: driver.OutboxSent})
	f.wantDriverCode(err, driver.FailedPrecondition, "FinishOutbox by the sender whose claim expired")
	f.noErr(ob.FinishOutbox(f.ctx, id, "live-sender", &driver.OutboxResult{Status: driver.OutboxSent}), "FinishOutbox by the new holder")
}

func testOutboxRetryDelay(f *fixture) {
	ob := f.ob()
	id, err := ob.Enqueue(f.ctx, f.outMsg())
	f.noErr(err, "Enqueue")
	if _, ok := f.claimAllOwn("s", 1, time.Minute)[id]; !ok {
		f.t.Fatal("ClaimOutbox did not return the due message")
	}
	f.noErr(ob.FinishOutbox(f.ctx, id, "s", &driver.OutboxResult{Status: driver.OutboxPending, RetryAfter: 400 * time.Millisecond, Error: "451 try later"}), "FinishOutbox retry")
	p := f.outbox(id)
	if p.Status != driver.OutboxPending || p.LastError != "451 try later" || p.Attempts != 1 {
		f.t.Errorf("retried message: status %q, LastError %q, attempts %d", p.Status, p.LastError, p.Attempts)
	}
	if _, ok := f.claimOwn("s", 100, time.Minute)[id]; ok {
		f.t.Error("a message to retry in 400ms was claimed at once")
	}
	time.Sleep(600 * time.Millisecond)
	if _, ok := f.claimAllOwn("s", 1, time.Minute)[id]; !ok {
		f.t.Error("a message whose retry delay passed is not claimed")
	}
}

func testOutboxConcurrentClaims(f *fixture) {
	ob := f.ob()
	const n, senders = 40, 4
	ids := map[string]bool{}
	for range n {
		id, err := ob.Enqueue(f.ctx, f.outMsg())
		f.noErr(err, "Enqueue")
		ids[id] = true
	}
	var mu sync.Mutex
	claims := map[string]int{}
	var wg sync.WaitGroup
	for i := range senders {
		holder := "sender-" + strconv.Itoa(i)
		wg.Go(func() {
			for range 100 {
				got, err := ob.ClaimOutbox(f.ctx, holder, 3, time.Minute)
				if err != nil {
					f.t.Errorf("concurrent ClaimOutbox: %v", err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, m := range got {
					if ids[m.ID] {
						claims[m.ID]++
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(claims) != n {
		f.t.Errorf("%d of %d messages claimed by %d concurrent senders", len(claims), n, senders)
	}
	for id, c := range claims {
		if c != 1 {
			f.t.Errorf("message %s claimed %d times by concurrent senders: it would be sent twice", id, c)
		}
	}
}

func testOutboxListFilters(f *fixture) {
	ob := f.ob()
	rcpt := f.addr("counted")
	var ids []string
	for i, kind := range []string{"acknowledgement", "acknowledgement", "log-email"} {
		m := f.outMsg()
		m.Kind = kind
		if i < 2 {
			m.To = []string{f.addr("other"), rcpt, rcpt} // a repeated recipient counts once
		}
		id, err := ob.Enqueue(f.ctx, m)
		f.noErr(err, "Enqueue")
		ids = append(ids, id)
	}
	ids2 := func(opts driver.OutboxListOptions) []string {
		f.t.Helper()
		got, err := ob.ListOutbox(f.ctx, &opts)
		f.noErr(err, "ListOutbox")
		var out []string
		for _, m := range got {
			out = append(out, m.ID)
		}
		return out
	}
	if got := ids2(driver.OutboxListOptions{Recipient: rcpt}); !slices.Equal(got, []string{ids[1], ids[0]}) {
		f.t.Errorf("ListOutbox(recipient) = %q, want %q", got, []string{ids[1], ids[0]})
	}
	if got := ids2(driver.OutboxListOptions{Recipient: rcpt, Kind: "log-email"}); len(got) != 0 {
		f.t.Errorf("ListOutbox(recipient, kind log-email) = %q, want none", got)
	}
	if got := ids2(driver.OutboxListOptions{Kind: "log-email", Since: time.Now().Add(-time.Minute)}); !slices.Contains(got, ids[2]) {
		f.t.Errorf("ListOutbox(kind, since a minute ago) = %q, want it to hold %s", got, ids[2])
	}
	if got := ids2(driver.OutboxListOptions{Recipient: rcpt, Since: time.Now().Add(time.Hour)}); len(got) != 0 {
		f.t.Errorf("ListOutbox(since in an hour) = %q, want none", got)
	}
}

// testOutboxQueuedWithCase checks driver.OutboxFiler: the messages are
// queued with the case, composed from the case as returned; a failing
// callback files nothing; a mail filed before calls no callback.
func testOutboxQueuedWithCase(f *fixture) {
	of := f.d.(driver.OutboxFiler)
	e := f.mail()
	var seen []driver.Case
	m1, m2 := f.outMsg(), f.outMsg()
	c, ids, err := of.CreateCaseQueue(f.ctx, f.newCase(e), func(c driver.Case) ([]*driver.OutboxMessage, error) {
		seen = append(seen, c)
		a, b := *m1, *m2
		a.CaseID, b.CaseID = c.ID, c.ID
		a.Raw = append([]byte("X-Case: "+c.Number+"\r\n"), m1.Raw...)
		return []*driver.OutboxMessage{&a, nil, &b}, nil
	})
	f.noErr(err, "CreateCaseQueue")
	if c.ID == "" || c.Number == "" || len(seen) == 0 {
		f.t.Fatalf("CreateCaseQueue: case %+v, callback called %d times", c, len(seen))
	}
	last := seen[len(seen)-1]
	if last.ID != c.ID || last.Number != c.Number || !slices.Equal(last.Participants, c.Participants) {
		f.t.Fatalf("callback saw case %+v, CreateCaseQueue returned %+v", last, c)
	}
	if len(ids) != 2 {
		f.t.Fatalf("CreateCaseQueue returned message IDs %q, want 2 (a nil message is skipped)", ids)
	}
	got := f.outbox(ids[0])
	if got.CaseID != c.ID || got.Status != driver.OutboxPending || !bytes.HasPrefix(got.Raw, []byte("X-Case: "+c.Number+"\r\n")) {
		f.t.Fatalf("queued message %+v does not hold the case %s (%s)", got, c.ID, c.Number)
	}
	if f.outbox(ids[1]).Key != m2.Key {
		f.t.Fatalf("second message has key %q, want %q", f.outbox(ids[1]).Key, m2.Key)
	}
	if p, err := f.d.LookupProcessed(f.ctx, e.IdempotencyKey); err != nil || p.CaseID != c.ID {
		f.t.Fatalf("LookupProcessed after CreateCaseQueue = %+v, %v; want case %s", p, err, c.ID)
	}

	// Filed before: the same case, no callback, no IDs.
	again, ids, err := of.CreateCaseQueue(f.ctx, f.newCase(e), func(driver.Case) ([]*driver.OutboxMessage, error) {
		f.t.Error("callback called for a mail filed before")
		return nil, nil
	})
	f.noErr(err, "CreateCaseQueue of a mail filed before")
	if again.ID != c.ID || len(ids) != 0 {
		f.t.Fatalf("CreateCaseQueue of a mail filed before = case %s, IDs %q; want case %s and no IDs", again.ID, ids, c.ID)
	}

	// A failing callback files nothing and its error comes back as it is.
	e2 := f.mail()
	m3 := f.outMsg()
	boom := errors.New("drivertest: compose failed")
	_, _, err = of.CreateCaseQueue(f.ctx, f.newCase(e2), func(driver.Case) ([]*driver.OutboxMessage, error) {
		return []*driver.OutboxMessage{m3}, boom
	})
	if !errors.Is(err, boom) {
		f.t.Fatalf("CreateCaseQueue with a failing callback: error %v, want the callback's", err)
	}
	if _, err := f.d.LookupProcessed(f.ctx, e2.IdempotencyKey); f.d.ErrorCode(err) != driver.NotFound {
		f.t.Fatalf("after a failing callback LookupProcessed = %v (code %v), want NotFound: the mail was filed", err, f.d.ErrorCode(err))
	}
	if _, err := f.d.LookupThread(f.ctx, []string{e2.MessageID}); f.d.ErrorCode(err) != driver.NotFound {
		f.t.Fatalf("after a failing callback LookupThread = %v, want NotFound: a case was created", err)
	}
	if _, err := f.ob().FindOutbox(f.ctx, m3.MessageID); f.d.ErrorCode(err) != driver.NotFound {
		f.t.Fatalf("after a failing callback FindOutbox = %v, want NotFound: the message was queued", err)
	}
	// And the mail files normally afterwards.
	c2, ids, err := of.CreateCaseQueue(f.ctx, f.newCase(e2), func(c driver.Case) ([]*driver.OutboxMessage, error) {
		m := *m3
		m.CaseID = c.ID
		return []*driver.OutboxMessage{&m}, nil
	})
	f.noErr(err, "CreateCaseQueue after a failed one")
	if len(ids) != 1 || f.outbox(ids[0]).CaseID != c2.ID {
		f.t.Fatalf("CreateCaseQueue after a failed one queued %q, want one message of case %s", ids, c2.ID)
	}
}
