package drivertest

import (
	"errors"
	"slices"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
)

func (f *fixture) ef() driver.EventFiler { return f.d.(driver.EventFiler) }

// keptEvents returns the events delivered to sink, by ID (every event of
// the event filer tests names a sink of its own, so the deliveries find
// it in a shared log).
func (f *fixture) keptEvents(sink string) map[string]driver.EventRecord {
	f.t.Helper()
	out := map[string]driver.EventRecord{}
	for _, d := range f.ownDeliveries(sink) {
		out[d.Event.ID] = d.Event
	}
	return out
}

// testEventsFiledWithCase checks driver.EventFiler's CreateCaseEvents: the
// events are kept with the case, composed from the case as returned; a
// mail filed before calls no callback and keeps nothing; a failing
// callback files nothing.
func testEventsFiledWithCase(f *fixture) {
	sink := f.sink("filed")
	e := f.mail()
	var (
		seen []driver.Case
		want []*driver.EventRecord
	)
	c, ids, err := f.ef().CreateCaseEvents(f.ctx, f.newCase(e), func(c driver.Case) ([]*driver.OutboxMessage, []*driver.EventRecord, error) {
		seen = append(seen, c)
		a, b := f.event(sink), f.event(sink, sink)
		a.CaseID, b.CaseID = c.ID, c.ID
		a.Data = []byte(`{"number":"` + c.Number + `"}`)
		want = []*driver.EventRecord{a, b}
		return nil, want, nil
	})
	f.noErr(err, "CreateCaseEvents")
	if c.ID == "" || c.Number == "" || len(seen) == 0 || len(ids) != 0 {
		f.t.Fatalf("CreateCaseEvents: case %+v, IDs %q, callback called %d times", c, ids, len(seen))
	}
	last := seen[len(seen)-1]
	if last.ID != c.ID || last.Number != c.Number || !slices.Equal(last.Participants, c.Participants) {
		f.t.Fatalf("callback saw case %+v, CreateCaseEvents returned %+v", last, c)
	}
	if p, err := f.d.LookupProcessed(f.ctx, e.IdempotencyKey); err != nil || p.CaseID != c.ID {
		f.t.Fatalf("LookupProcessed after CreateCaseEvents = %+v, %v; want case %s", p, err, c.ID)
	}
	kept := f.keptEvents(sink)
	if len(kept) != 2 {
		f.t.Fatalf("CreateCaseEvents kept %d events with a delivery to the sink, want 2 (a repeated sink counts once)", len(kept))
	}
	for _, w := range want {
		if d := sameEvent(kept[w.ID], w); d != "" {
			f.t.Errorf("event kept with the case: %s", d)
		}
	}
	if a, b := kept[want[0].ID].Seq, kept[want[1].ID].Seq; a <= 0 || b <= a {
		f.t.Errorf("events kept with Seq %d and %d, want positive and increasing in the callback's order", a, b)
	}

	// Filed before: the same case, no callback, nothing kept.
	again, ids, err := f.ef().CreateCaseEvents(f.ctx, f.newCase(e), func(driver.Case) ([]*driver.OutboxMessage, []*driver.EventRecord, error) {
		f.t.Error("callback called for a mail filed before")
		return nil, []*driver.EventRecord{f.event(sink)}, nil
	})
	f.noErr(err, "CreateCaseEvents of a mail filed before")
	if again.ID != c.ID || len(ids) != 0 {
		f.t.Fatalf("CreateCaseEvents of a mail filed before = case %s, IDs %q; want case %s and no IDs", again.ID, ids, c.ID)
	}
	if n := len(f.keptEvents(sink)); n != 2 {
		f.t.Errorf("after a retried filing the sink has %d events, want still 2", n)
	}

	// A failing callback files nothing and its error comes back as it is.
	e2 := f.mail()
	failSink := f.sink("failed")
	boom := errors.New("drivertest: compose failed")
	_, _, err = f.ef().CreateCaseEvents(f.ctx, f.newCase(e2), func(driver.Case) ([]*driver.OutboxMessage, []*driver.EventRecord, error) {
		return nil, []*driver.EventRecord{f.event(failSink)}, boom
	})
	if !errors.Is(err, boom) {
		f.t.Fatalf("CreateCaseEvents with a failing callback: error %v, want the callback's", err)
	}
	f.wantNotFiled(e2, "after a failing callback")
	if n := len(f.keptEvents(failSink)); n != 0 {
		f.t.Fatalf("a failing callback kept %d events, want none", n)
	}

	// Through the portable Store: an invalid event files nothing.
	e4 := f.mail()
	_, _, err = f.s.CreateCaseEvents(f.ctx, f.newCase(e4), func(c driver.Case) ([]*driver.OutboxMessage, []*driver.EventRecord, error) {
		bad := f.event(failSink)
		bad.Data = []byte(`not json`)
		return nil, []*driver.EventRecord{bad}, nil
	})
	f.wantStoreCode(err, driver.InvalidArgument, mailcase.ErrInvalidArgument, "Store.CreateCaseEvents with an event that is no JSON object")
	f.wantNotFiled(e4, "after an invalid event")
	if n := len(f.keptEvents(failSink)); n != 0 {
		f.t.Fatalf("an invalid event kept %d events, want none", n)
	}

	// A message: queued with the case by an OutboxFiler, refused (nothing
	// filed) by any other store.
	e3 := f.mail()
	msgSink := f.sink("message")
	var msg *driver.OutboxMessage
	if f.cap.Outbox {
		msg = f.outMsg()
	} else {
		msg = &driver.OutboxMessage{Key: "out-" + f.tag, MessageID: "out-" + f.tag + "@drivertest.example",
			From: f.addr("support"), To: []string{f.addr("rcpt")}, Raw: []byte("Subject: x\r\n\r\nx\r\n")}
	}
	c3, ids, err := f.ef().CreateCaseEvents(f.ctx, f.newCase(e3), func(c driver.Case) ([]*driver.OutboxMessage, []*driver.EventRecord, error) {
		m := *msg
		m.CaseID = c.ID
		return []*driver.OutboxMessage{&m}, []*driver.EventRecord{f.event(msgSink)}, nil
	})
	if f.cap.OutboxFiler {
		f.noErr(err, "CreateCaseEvents with a message")
		if len(ids) != 1 || f.outbox(ids[0]).CaseID != c3.ID {
			f.t.Fatalf("CreateCaseEvents with a message queued %q, want one message of case %s", ids, c3.ID)
		}
		if n := len(f.keptEvents(msgSink)); n != 1 {
			f.t.Fatalf("CreateCaseEvents with a message kept %d events, want 1", n)
		}
	} else {
		f.wantDriverCode(err, driver.InvalidArgument, "CreateCaseEvents with a message on a store that is no OutboxFiler")
		f.wantNotFiled(e3, "after a refused message")
		if n := len(f.keptEvents(msgSink)); n != 0 {
			f.t.Fatalf("a refused message kept %d events, want none", n)
		}
	}
}

// wantNotFiled fails unless mail e is unknown to the store: no key, no
// case holds it.
func (f *fixture) wantNotFiled(e *driver.Email, when string) {
	f.t.Helper()
	if _, err := f.d.LookupProcessed(f.ctx, e.IdempotencyKey); f.d.ErrorCode(err) != driver.NotFound {
		f.t.Fatalf("%s LookupProcessed = %v (code %v), want NotFound: the mail was filed", when, err, f.d.ErrorCode(err))
	}
	if _, err := f.d.LookupThread(f.ctx, []string{e.MessageID}); f.d.ErrorCode(err) != driver.NotFound {
		f.t.Fatalf("%s LookupThread = %v, want NotFound: a case holds the mail", when, err)
	}
}

// wantFiled calls AppendEmailEvents, which must succeed and report filed
// as want (false for a mail filed before).
func (f *fixture) wantFiled(id driver.CaseID, e *driver.Email, events []*driver.EventRecord, want bool, what string) {
	f.t.Helper()
	filed, err := f.ef().AppendEmailEvents(f.ctx, id, e, events)
	f.noErr(err, what)
	if filed != want {
		f.t.Fatalf("%s reported filed = %v, want %v", what, filed, want)
	}
}

// testEventsFiledWithAppend checks driver.EventFiler's AppendEmailEvents:
// the events are kept with the mail, which it reports filed; a mail filed
// before keeps none and is reported not filed; an append to a missing case
// files nothing and keeps no event.
func testEventsFiledWithAppend(f *fixture) {
	c := f.createCase(f.mail())
	sink := f.sink("appended")
	e := f.mail()
	want := []*driver.EventRecord{f.event(sink), f.event(sink)}
	want[0].CaseID, want[1].CaseID = c.ID, c.ID
	f.wantFiled(c.ID, e, want, true, "AppendEmailEvents")
	if got, err := f.d.LookupThread(f.ctx, []string{e.MessageID}); err != nil || got.ID != c.ID {
		f.t.Fatalf("LookupThread after AppendEmailEvents = %s, %v; want case %s", got.ID, err, c.ID)
	}
	kept := f.keptEvents(sink)
	if len(kept) != 2 {
		f.t.Fatalf("AppendEmailEvents kept %d events, want 2", len(kept))
	}
	for _, w := range want {
		if d := sameEvent(kept[w.ID], w); d != "" {
			f.t.Errorf("event kept with the mail: %s", d)
		}
	}

	// Filed before: a no-op, a new event is not kept, the old ones once.
	late := f.event(sink)
	f.wantFiled(c.ID, e, append(slices.Clone(want), late), false, "AppendEmailEvents of a mail filed before")
	kept = f.keptEvents(sink)
	if len(kept) != 2 {
		f.t.Fatalf("after a retried append the sink has %d events, want still 2", len(kept))
	}
	if _, ok := kept[late.ID]; ok {
		f.t.Errorf("an event given with a mail filed before was kept")
	}
	if f.cap.Lister {
		if n := len(f.timeline(c.ID)); n != 2 {
			f.t.Errorf("after a retried append the case has %d interactions, want 2", n)
		}
	}

	// A missing case: NotFound, the mail not filed, no event.
	missSink := f.sink("missing")
	e2 := f.mail()
	filed, err := f.ef().AppendEmailEvents(f.ctx, driver.CaseID("missing-"+f.tag), e2, []*driver.EventRecord{f.event(missSink)})
	f.wantDriverCode(err, driver.NotFound, "AppendEmailEvents to a missing case")
	if filed {
		f.t.Errorf("AppendEmailEvents to a missing case reported the mail filed")
	}
	if n := len(f.keptEvents(missSink)); n != 0 {
		f.t.Fatalf("an append to a missing case kept %d events, want none", n)
	}
	// The mail files afterwards, with its events.
	ev := f.event(missSink)
	f.wantFiled(c.ID, e2, []*driver.EventRecord{ev}, true, "AppendEmailEvents after a failed one")
	if n := len(f.keptEvents(missSink)); n != 1 {
		f.t.Fatalf("AppendEmailEvents after a failed one kept %d events, want 1", n)
	}
}

// testEventsFiledKnownIDs checks the ID rules of driver.EventFiler's
// filings: an event whose ID the log holds (appended before) does not stop
// the filing, which commits, and keeps nothing, neither its data nor a
// delivery to a sink it names; of an ID repeated within one call the first
// event is kept, with its deliveries, and the others keep nothing.
func testEventsFiledKnownIDs(f *fixture) {
	old, oldSink := f.sink("known"), f.sink("known-again")
	known := f.event(old)
	f.noErr(f.el().AppendEvents(f.ctx, []*driver.EventRecord{known}), "AppendEvents")
	again := func() *driver.EventRecord {
		e := f.event(oldSink)
		e.ID, e.Kind, e.Data = known.ID, "case.routed", []byte(`{"again":true}`)
		return e
	}
	// wantKnownOnce fails unless the known event is still kept once, as
	// first appended, with its one delivery, and no delivery went to the
	// sink the repeats name.
	wantKnownOnce := func(when string) {
		f.t.Helper()
		kept := f.keptEvents(old)
		if len(kept) != 1 {
			f.t.Fatalf("%s: the sink of the known event has %d deliveries, want still 1", when, len(kept))
		}
		if d := sameEvent(kept[known.ID], known); d != "" {
			f.t.Errorf("%s: the known event changed: %s", when, d)
		}
		if n := len(f.ownDeliveries(oldSink)); n != 0 {
			f.t.Errorf("%s: a known event given again created %d deliveries to the sink it names, want none", when, n)
		}
	}

	// A known ID in a new case's filing: the case is filed, the event
	// given with it is kept.
	newSink := f.sink("known-new")
	e := f.mail()
	fresh := f.event(newSink)
	c, _, err := f.ef().CreateCaseEvents(f.ctx, f.newCase(e), func(driver.Case) ([]*driver.OutboxMessage, []*driver.EventRecord, error) {
		return nil, []*driver.EventRecord{again(), fresh}, nil
	})
	f.noErr(err, "CreateCaseEvents with an event ID the log holds")
	if p, err := f.d.LookupProcessed(f.ctx, e.IdempotencyKey); err != nil || p.CaseID != c.ID {
		f.t.Fatalf("CreateCaseEvents with an event ID the log holds: LookupProcessed = %+v, %v; want case %s", p, err, c.ID)
	}
	wantKnownOnce("after CreateCaseEvents")
	if kept := f.keptEvents(newSink); len(kept) != 1 || sameEvent(kept[fresh.ID], fresh) != "" {
		f.t.Errorf("CreateCaseEvents with an event ID the log holds kept %d of its new events, want the new one", len(kept))
	}

	// The same in an append.
	e2 := f.mail()
	fresh2 := f.event(newSink)
	f.wantFiled(c.ID, e2, []*driver.EventRecord{fresh2, again()}, true, "AppendEmailEvents with an event ID the log holds")
	if got, err := f.d.LookupThread(f.ctx, []string{e2.MessageID}); err != nil || got.ID != c.ID {
		f.t.Fatalf("AppendEmailEvents with an event ID the log holds: LookupThread = %s, %v; want case %s", got.ID, err, c.ID)
	}
	wantKnownOnce("after AppendEmailEvents")
	if kept := f.keptEvents(newSink); len(kept) != 2 || sameEvent(kept[fresh2.ID], fresh2) != "" {
		f.t.Errorf("AppendEmailEvents with an event ID the log holds: the sink has %d events, want 2 (the new one kept)", len(kept))
	}

	// An ID repeated within one call: the first is kept, once.
	first, firstSink, dupSink := f.event(), f.sink("repeat-first"), f.sink("repeat-dup")
	first.Sinks = []string{firstSink}
	dup := func() *driver.EventRecord {
		d := f.event(dupSink)
		d.ID, d.Data = first.ID, []byte(`{"dup":true}`)
		return d
	}
	e3 := f.mail()
	c3, _, err := f.ef().CreateCaseEvents(f.ctx, f.newCase(e3), func(driver.Case) ([]*driver.OutboxMessage, []*driver.EventRecord, error) {
		return nil, []*driver.EventRecord{first, dup(), dup()}, nil
	})
	f.noErr(err, "CreateCaseEvents with an event ID repeated")
	wantFirstOnce := func(sink string, want *driver.EventRecord, when string) {
		f.t.Helper()
		kept := f.ownDeliveries(sink)
		if len(kept) != 1 {
			f.t.Fatalf("%s: the first event's sink has %d deliveries, want 1", when, len(kept))
		}
		for _, d := range kept {
			if diff := sameEvent(d.Event, want); diff != "" {
				f.t.Errorf("%s: the event kept is not the first: %s", when, diff)
			}
		}
		if n := len(f.ownDeliveries(dupSink)); n != 0 {
			f.t.Errorf("%s: the repeats created %d deliveries to the sink they name, want none", when, n)
		}
	}
	wantFirstOnce(firstSink, first, "CreateCaseEvents with an event ID repeated")

	first4, firstSink4 := f.event(), f.sink("repeat-first-append")
	first4.Sinks = []string{firstSink4}
	dup4 := func() *driver.EventRecord {
		d := dup()
		d.ID = first4.ID
		return d
	}
	f.wantFiled(c3.ID, f.mail(), []*driver.EventRecord{first4, dup4(), dup4()}, true, "AppendEmailEvents with an event ID repeated")
	wantFirstOnce(firstSink4, first4, "AppendEmailEvents with an event ID repeated")
}
