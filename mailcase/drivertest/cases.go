package drivertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// tests lists the suite, one entry per behaviour.
var tests = []test{
	{name: "FindContacts", needs: needDir, run: testFindContacts},
	{name: "CreateContactThroughStore", needs: needDir, run: testCreateContactThroughStore},
	{name: "FindAccounts", needs: needDirectory, run: testFindAccounts},
	{name: "FindEmployee", needs: needDirectory, run: testFindEmployee},
	{name: "FindEmployeeNotFound", needs: needDir, run: testFindEmployeeNotFound},
	{name: "CreateCaseThenLookupThread", run: testCreateCaseThenLookupThread},
	{name: "CreateCaseFields", run: testCreateCaseFields},
	{name: "CreateCaseDefaults", run: testCreateCaseDefaults},
	{name: "IdempotencyKeysAreBytes", run: testKeysAreBytes},
	{name: "LookupThreadPrefersLastID", run: testLookupThreadPrefersLast},
	{name: "LookupThreadFindsEveryFiledMail", run: testLookupThreadEveryMail},
	{name: "LookupThreadNotFound", run: testLookupThreadNotFound},
	{name: "LookupThreadFirstFilingWins", run: testFirstFilingWins},
	{name: "AppendEmail", run: testAppendEmail},
	{name: "AppendEmailMissingCase", run: testAppendEmailMissing},
	{name: "CreateCaseIdempotent", run: testCreateCaseIdempotent},
	{name: "AppendEmailDuplicateIsNoop", run: testAppendDuplicate},
	{name: "RecordInteractionIdempotent", run: testRecordInteraction},
	{name: "LookupProcessedAllPaths", run: testLookupProcessed},
	{name: "FingerprintRoundTrip", run: testFingerprint},
	{name: "AddNote", run: testAddNote},
	{name: "UpdateCase", run: testUpdateCase},
	{name: "UpdateCaseCloseAndReopen", run: testCloseReopen},
	{name: "FindCaseByNumber", run: testFindCaseByNumber},
	{name: "GetCaseNotFound", run: testGetCaseNotFound},
	{name: "Participants", run: testParticipants},
	{name: "ParticipantsPlaceholderAndNoParticipants", run: testParticipantsWithheld},
	{name: "CaseURL", run: testCaseURL},
	{name: "ErrorCode", run: testErrorCode},
	{name: "CanceledContext", run: testCanceled},
	{name: "ConcurrentCreateSameKey", run: testConcurrentSameKey},
	{name: "ConcurrentCreateDistinctKeys", run: testConcurrentDistinct},
	{name: "UnicodeAndLongSubjects", run: testUnicode},
	{name: "LargeBodiesAndAttachments", run: testLarge},
	{name: "InjectionShapedStrings", run: testInjection},
	{name: "NoAliasing", run: testNoAliasing},
	{name: "ListCases", needs: needLister, run: testListCases},
	{name: "ListInteractions", needs: needLister, run: testListInteractions},
	{name: "Quarantine", needs: needQuarantine, run: testQuarantine},
	{name: "State", needs: needState, run: testState},
	{name: "Lease", needs: needLease, run: testLease},
	{name: "LeaseExpires", needs: needLease, run: testLeaseExpires},
	{name: "LeaseConcurrentAcquire", needs: needLease, run: testLeaseConcurrent},
	{name: "Outbox", needs: needOutbox, run: testOutbox},
	{name: "OutboxStatus", needs: needOutbox, run: testOutboxStatus},
	{name: "OutboxClaimExpires", needs: needOutbox, run: testOutboxClaimExpires},
	{name: "SLATimers", needs: needSLA, run: testSLATimers},
	{name: "SLAClaim", needs: needSLA, run: testSLAClaim},
	{name: "SLAConcurrentClaims", needs: needSLA, run: testSLAConcurrentClaims},
	{name: "SLAClaimBoth", needs: needSLA, run: testSLAClaimBoth},
	{name: "SLARelease", needs: needSLA, run: testSLARelease},
	{name: "SLALease", needs: needSLA, run: testSLALease},
	{name: "SLALeasePutBack", needs: needSLA, run: testSLALeasePutBack},
	{name: "SLALeaseUnaligned", needs: needSLA, run: testSLALeaseUnaligned},
	{name: "SLAConcurrentLeaseClaims", needs: needSLA, run: testSLAConcurrentLeaseClaims},
	{name: "SLAConfirmRestarted", needs: needSLA, run: testSLAConfirmRestarted},
	{name: "OutboxRetryDelay", needs: needOutbox, run: testOutboxRetryDelay},
	{name: "OutboxConcurrentClaims", needs: needOutbox, run: testOutboxConcurrentClaims},
	{name: "OutboxListFilters", needs: needOutbox, run: testOutboxListFilters},
	{name: "OutboxQueuedWithCase", needs: needOutboxFile, run: testOutboxQueuedWithCase},
	{name: "ReferencesFound", needs: needRefs, run: testReferencesFound},
	{name: "ReferencesBounded", needs: needRefs, run: testReferencesBounded},
	{name: "RawMailKeptOnce", needs: needRaw, run: testRawKeptOnce},
	{name: "RawMailLargeAndBinary", needs: needRaw, run: testRawLarge},
	{name: "RawMailDiscarded", needs: needRaw, run: testRawDiscarded},
	{name: "UpdateParsed", needs: needUpdater, run: testUpdateParsed},
	{name: "Reparse", needs: needReparse, run: testReparse},
	{name: "As", needs: needAser, run: testAs},
	{name: "EventLogAppendRead", needs: needEventLog, run: testEventLogAppendRead},
	{name: "EventDeliveries", needs: needEventLog, run: testEventDeliveries},
	{name: "EventDeliveryClaimExpires", needs: needEventLog, run: testEventDeliveryClaimExpires},
	{name: "EventDeliveryConcurrentClaims", needs: needEventLog, run: testEventDeliveryConcurrentClaims},
	{name: "EventsFiledWithCase", needs: needEventFile, run: testEventsFiledWithCase},
	{name: "EventsFiledWithAppend", needs: needEventFile, run: testEventsFiledWithAppend},
	{name: "EventsFiledKnownIDs", needs: needEventFile, run: testEventsFiledKnownIDs},
	{name: "ClosedStore", run: testClosed},
}

func testFindContacts(f *fixture) {
	a := f.addr("shared")
	c1, err := f.dir().CreateContact(f.ctx, &driver.NewContact{Name: "First", Email: a, SupportLevel: "gold"})
	f.noErr(err, "CreateContact")
	c2, err := f.dir().CreateContact(f.ctx, &driver.NewContact{Name: "Second", Email: a, Placeholder: true, Internal: true})
	f.noErr(err, "CreateContact")
	if c1.ID == "" || c1.ID == c2.ID {
		f.t.Fatalf("contact IDs %q and %q: want distinct and non-empty", c1.ID, c2.ID)
	}
	got, err := f.dir().FindContacts(f.ctx, a)
	f.noErr(err, "FindContacts")
	if len(got) != 2 {
		f.t.Fatalf("FindContacts(%q) returned %d contacts, want 2 (two contacts may share an address)", a, len(got))
	}
	byID := map[string]driver.Contact{}
	for _, c := range got {
		byID[c.ID] = c
	}
	if g := byID[c1.ID]; g.Name != "First" || g.Email != a || g.SupportLevel != "gold" || g.Placeholder {
		f.t.Errorf("first contact read back as %+v", g)
	}
	if g := byID[c2.ID]; g.Name != "Second" || !g.Placeholder || !g.Internal {
		f.t.Errorf("second contact read back as %+v", g)
	}
	none, err := f.dir().FindContacts(f.ctx, f.addr("nobody"))
	f.noErr(err, "FindContacts of an unknown address")
	if len(none) != 0 {
		f.t.Errorf("FindContacts of an unknown address returned %v, want none", none)
	}
	// Through the Store, the address is normalised before the lookup.
	viaStore, err := f.s.FindContacts(f.ctx, "  <"+strings.ToUpper(a)+">")
	f.noErr(err, "Store.FindContacts")
	if len(viaStore) != 2 {
		f.t.Errorf("Store.FindContacts with an upper-case address found %d contacts, want 2", len(viaStore))
	}
}

func testCreateContactThroughStore(f *fixture) {
	a := f.addr("bob")
	c, err := f.s.CreateContact(f.ctx, &mailcase.NewContact{Name: " Bob\r\nInjected: yes ", Email: "Bob." + f.tag + "@EXAMPLE.COM"})
	f.noErr(err, "Store.CreateContact")
	if c.ID == "" || c.Email != a {
		f.t.Fatalf("created contact %+v, want an ID and address %q", c, a)
	}
	if strings.ContainsAny(c.Name, "\r\n") {
		f.t.Errorf("contact name %q keeps CR/LF", c.Name)
	}
	got, err := f.s.FindContacts(f.ctx, a)
	f.noErr(err, "Store.FindContacts")
	if len(got) != 1 || got[0].ID != c.ID {
		f.t.Errorf("FindContacts after CreateContact = %+v, want the new contact", got)
	}
	_, err = f.s.CreateContact(f.ctx, &mailcase.NewContact{Email: "not an address"})
	f.wantStoreCode(err, driver.InvalidArgument, mailcase.ErrInvalidArgument, "CreateContact with a bad address")
}

func testFindAccounts(f *fixture) {
	dw := f.d.(driver.DirectoryWriter)
	shared, own := f.domain("shared"), f.domain("own")
	a1, err := dw.CreateAccount(f.ctx, &driver.NewAccount{Name: "Acme", Domains: []string{shared, own}, SupportLevel: "gold"})
	f.noErr(err, "CreateAccount")
	a2, err := dw.CreateAccount(f.ctx, &driver.NewAccount{Name: "Acme Holding", Domains: []string{shared}})
	f.noErr(err, "CreateAccount")
	if a1.ID == "" || a1.ID == a2.ID {
		f.t.Fatalf("account IDs %q and %q: want distinct and non-empty", a1.ID, a2.ID)
	}
	got, err := f.dir().FindAccounts(f.ctx, shared)
	f.noErr(err, "FindAccounts")
	if len(got) != 2 {
		f.t.Fatalf("FindAccounts(%q) returned %d accounts, want 2 (two accounts may share a domain)", shared, len(got))
	}
	got, err = f.dir().FindAccounts(f.ctx, own)
	f.noErr(err, "FindAccounts")
	if len(got) != 1 || got[0].ID != a1.ID || got[0].Name != "Acme" || got[0].SupportLevel != "gold" {
		f.t.Fatalf("FindAccounts(%q) = %+v, want Acme only", own, got)
	}
	d := slices.Clone(got[0].Domains)
	got[0].Domains[0] = "mutated.example" // must not reach the store
	slices.Sort(d)
	want := []string{shared, own}
	slices.Sort(want)
	if !slices.Equal(d, want) {
		f.t.Errorf("account domains = %v, want %v", d, want)
	}
	none, err := f.dir().FindAccounts(f.ctx, f.domain("none"))
	f.noErr(err, "FindAccounts of an unknown domain")
	if len(none) != 0 {
		f.t.Errorf("FindAccounts of an unknown domain = %v, want none", none)
	}
	if again, _ := f.dir().FindAccounts(f.ctx, own); len(again) != 1 || slices.Contains(again[0].Domains, "mutated.example") {
		f.t.Errorf("FindAccounts returned domains that alias the store: %+v", again)
	}
	viaStore, err := f.s.FindAccounts(f.ctx, strings.ToUpper(own)+".")
	f.noErr(err, "Store.FindAccounts")
	if len(viaStore) != 1 {
		f.t.Errorf("Store.FindAccounts with an upper-case domain found %d accounts, want 1", len(viaStore))
	}
	acc, err := f.s.CreateAccount(f.ctx, &mailcase.NewAccount{Name: "Bücher", Domains: []string{"BÜCHER-" + f.tag + ".example"}})
	f.noErr(err, "Store.CreateAccount")
	viaStore, err = f.s.FindAccounts(f.ctx, "bücher-"+f.tag+".example")
	f.noErr(err, "Store.FindAccounts of an IDN domain")
	if len(viaStore) != 1 || viaStore[0].ID != acc.ID {
		f.t.Errorf("Store.FindAccounts of an IDN domain = %+v, want %q", viaStore, acc.ID)
	}
}

func testFindEmployee(f *fixture) {
	dw := f.d.(driver.DirectoryWriter)
	a := f.addr("agent")
	e, err := dw.CreateEmployee(f.ctx, &driver.NewEmployee{Name: "Agent Smith", Email: a, Active: true})
	f.noErr(err, "CreateEmployee")
	inactive, err := dw.CreateEmployee(f.ctx, &driver.NewEmployee{Name: "Gone", Email: f.addr("gone")})
	f.noErr(err, "CreateEmployee")
	got, err := f.dir().FindEmployee(f.ctx, a)
	f.noErr(err, "FindEmployee")
	if got.ID != e.ID || got.Name != "Agent Smith" || got.Email != a || !got.Active {
		f.t.Errorf("FindEmployee = %+v, want %+v", got, e)
	}
	got, err = f.dir().FindEmployee(f.ctx, f.addr("gone"))
	f.noErr(err, "FindEmployee of an inactive employee")
	if got.ID != inactive.ID || got.Active {
		f.t.Errorf("FindEmployee of an inactive employee = %+v", got)
	}
	se, ok, err := f.s.FindEmployee(f.ctx, strings.ToUpper(a))
	f.noErr(err, "Store.FindEmployee")
	if !ok || se.ID != e.ID {
		f.t.Errorf("Store.FindEmployee = %+v, %v; want the employee", se, ok)
	}
}

func testFindEmployeeNotFound(f *fixture) {
	_, err := f.dir().FindEmployee(f.ctx, f.addr("stranger"))
	f.wantDriverCode(err, driver.NotFound, "FindEmployee of an unknown address")
	_, ok, err := f.s.FindEmployee(f.ctx, f.addr("stranger"))
	if ok || err != nil {
		f.t.Errorf("Store.FindEmployee of an unknown address = ok %v, err %v; want false, nil", ok, err)
	}
}

func testCreateCaseThenLookupThread(f *fixture) {
	e := f.mail()
	c, err := f.s.CreateCase(f.ctx, &mailcase.NewCase{Subject: e.Subject, Queue: f.queue(), First: e})
	f.noErr(err, "Store.CreateCase")
	if c.ID == "" || c.Number == "" {
		f.t.Fatalf("CreateCase returned %+v, want an ID and a number", c)
	}
	if c.Status != driver.StatusNew || c.Priority != driver.PriorityNormal {
		f.t.Errorf("default status and priority = %q, %q; want new, normal", c.Status, c.Priority)
	}
	got, err := f.d.LookupThread(f.ctx, []string{e.MessageID})
	f.noErr(err, "LookupThread")
	if got.ID != c.ID {
		f.t.Errorf("LookupThread(first mail) = %q, want %q", got.ID, c.ID)
	}
	sc, ok, err := f.s.LookupThread(f.ctx, "<"+e.MessageID+">")
	f.noErr(err, "Store.LookupThread")
	if !ok || sc.ID != c.ID {
		f.t.Errorf("Store.LookupThread with brackets = %q, %v; want %q", sc.ID, ok, c.ID)
	}
	gc, ok, err := f.s.GetCase(f.ctx, c.ID)
	f.noErr(err, "Store.GetCase")
	if !ok || gc.ID != c.ID || gc.Number != c.Number || gc.Subject != e.Subject {
		f.t.Errorf("GetCase = %+v, want the created case", gc)
	}
}

func testCreateCaseFields(f *fixture) {
	parent := f.createCase(f.mail())
	linked := f.createCase(f.mail())
	ct := f.contact(&driver.NewContact{Name: "Carol", Email: f.addr("carol")})
	e := f.mail()
	req := &driver.NewCase{
		Subject: "Custom subject", Status: driver.StatusOpen, Priority: driver.PriorityHigh,
		Queue: f.queue(), Origin: "web", Category: "billing", ContactID: ct.ID, AccountID: f.account("Acme"),
		ParentID: parent.ID, LinkedID: linked.ID, First: e,
	}
	c, err := f.d.CreateCase(f.ctx, req)
	f.noErr(err, "CreateCase")
	for _, got := range []driver.Case{c, f.get(c.ID)} {
		if got.Subject != req.Subject || got.Status != req.Status || got.Priority != req.Priority ||
			got.Queue != req.Queue || got.Origin != req.Origin || got.Category != req.Category ||
			got.ContactID != req.ContactID || got.AccountID != req.AccountID ||
			got.ParentID != req.ParentID || got.LinkedID != req.LinkedID {
			f.t.Errorf("case fields read back as %+v, want those of %+v", got, req)
		}
		if got.CreatedAt.IsZero() || got.UpdatedAt.Before(got.CreatedAt) {
			f.t.Errorf("CreatedAt %v, UpdatedAt %v: want set, UpdatedAt not before CreatedAt", got.CreatedAt, got.UpdatedAt)
		}
		if !got.ClosedAt.IsZero() {
			f.t.Errorf("open case has ClosedAt %v", got.ClosedAt)
		}
	}
}

// get reads a case back through the raw driver.
func (f *fixture) get(id driver.CaseID) driver.Case {
	f.t.Helper()
	c, err := f.d.GetCase(f.ctx, id)
	f.noErr(err, "GetCase")
	return c
}

func testLookupThreadPrefersLast(f *fixture) {
	ea, eb := f.mail(), f.mail()
	a, b := f.createCase(ea), f.createCase(eb)
	unknown := "unknown." + f.tag + "@mail.example.com"
	for _, tc := range []struct {
		ids  []string
		want driver.CaseID
	}{
		{[]string{ea.MessageID, eb.MessageID}, b.ID},
		{[]string{eb.MessageID, ea.MessageID}, a.ID},
		{[]string{unknown, ea.MessageID}, a.ID},
		{[]string{eb.MessageID, unknown}, b.ID},
		{[]string{ea.MessageID, unknown, eb.MessageID, unknown}, b.ID},
	} {
		got, err := f.d.LookupThread(f.ctx, tc.ids)
		f.noErr(err, "LookupThread")
		if got.ID != tc.want {
			f.t.Errorf("LookupThread(%v) = %q, want %q (the last known ID wins)", tc.ids, got.ID, tc.want)
		}
	}
	sc, ok, err := f.s.LookupThread(f.ctx, ea.MessageID, eb.MessageID)
	f.noErr(err, "Store.LookupThread")
	if !ok || sc.ID != b.ID {
		f.t.Errorf("Store.LookupThread = %q, %v; want %q", sc.ID, ok, b.ID)
	}
}

func testLookupThreadEveryMail(f *fixture) {
	c := f.createCase(f.mail())
	in := f.mail()
	in.InReplyTo = []string{"x." + f.tag + "@mail.example.com"}
	out := f.mail()
	out.Direction = driver.Outbound
	out.From, out.To = out.To[0], []driver.Address{out.From}
	f.noErr(f.d.AppendEmail(f.ctx, c.ID, in), "AppendEmail inbound")
	f.noErr(f.d.AppendEmail(f.ctx, c.ID, out), "AppendEmail outbound")
	for _, e := range []*driver.Email{in, out} {
		got, err := f.d.LookupThread(f.ctx, []string{e.MessageID})
		f.noErr(err, "LookupThread("+string(e.Direction)+" mail)")
		if got.ID != c.ID {
			f.t.Errorf("LookupThread(%s mail) = %q, want %q", e.Direction, got.ID, c.ID)
		}
	}
	// Only Message-IDs of filed mails count, not the IDs they refer to: an
	// unknown parent named in In-Reply-To must not lead to this case.
	if got, err := f.d.LookupThread(f.ctx, in.InReplyTo); f.d.ErrorCode(err) != driver.NotFound {
		f.t.Errorf("LookupThread(an ID only referred to) = %q, %v; want NotFound", got.ID, err)
	}
}

func testLookupThreadNotFound(f *fixture) {
	_, err := f.d.LookupThread(f.ctx, []string{"nothing." + f.tag + "@mail.example.com"})
	f.wantDriverCode(err, driver.NotFound, "LookupThread of unknown IDs")
	_, ok, err := f.s.LookupThread(f.ctx, "<nothing."+f.tag+"@mail.example.com>")
	if ok || err != nil {
		f.t.Errorf("Store.LookupThread of unknown IDs = %v, %v; want false, nil", ok, err)
	}
}

func testAppendEmail(f *fixture) {
	c := f.createCase(f.mail())
	e := f.mail()
	e.Cc = []driver.Address{{Name: "Dave", Email: f.addr("dave")}}
	err := f.s.AppendEmail(f.ctx, c.ID, e)
	f.noErr(err, "Store.AppendEmail")
	got := f.get(c.ID)
	if got.UpdatedAt.Before(c.UpdatedAt) {
		f.t.Errorf("UpdatedAt went back from %v to %v", c.UpdatedAt, got.UpdatedAt)
	}
	if !slices.Contains(got.Participants, f.addr("dave")) {
		f.t.Errorf("participants %v lack the Cc of an appended mail", got.Participants)
	}
	lc, err := f.d.LookupThread(f.ctx, []string{e.MessageID})
	f.noErr(err, "LookupThread(appended mail)")
	if lc.ID != c.ID {
		f.t.Errorf("LookupThread(appended mail) = %q, want %q", lc.ID, c.ID)
	}
	if f.cap.Lister {
		if d := compareEmail(f.findEmail(c.ID, e.IdempotencyKey), e); d != "" {
			f.t.Errorf("appended mail read back wrong: %s", d)
		}
	}
}

func testAppendEmailMissing(f *fixture) {
	f.createCase(f.mail()) // the store is not empty
	missing := driver.CaseID("missing-" + f.tag)
	f.wantDriverCode(f.d.AppendEmail(f.ctx, missing, f.mail()), driver.NotFound, "AppendEmail to a missing case")
	err := f.s.AppendEmail(f.ctx, missing, f.mail())
	f.wantStoreCode(err, driver.NotFound, mailcase.ErrNotFound, "Store.AppendEmail to a missing case")
}

func testCreateCaseIdempotent(f *fixture) {
	e := f.mail()
	c1 := f.createCase(e)
	again := *e
	again.Subject = "A redelivery may differ in details"
	c2, err := f.d.CreateCase(f.ctx, f.newCase(&again))
	f.noErr(err, "CreateCase with a known key")
	if c2.ID != c1.ID || c2.Number != c1.Number {
		f.t.Fatalf("CreateCase with a known key made %q (%s), want the existing %q (%s)", c2.ID, c2.Number, c1.ID, c1.Number)
	}
	c3, err := f.s.CreateCase(f.ctx, f.newCase(e))
	f.noErr(err, "Store.CreateCase with a known key")
	if c3.ID != c1.ID {
		f.t.Fatalf("Store.CreateCase with a known key made %q, want %q", c3.ID, c1.ID)
	}
	if f.cap.Lister {
		if cs := f.listQueue(driver.ListOptions{}); len(cs) != 1 {
			f.t.Errorf("after three creates with one key the queue holds %d cases, want 1", len(cs))
		}
		if n := len(emailsOf(f.timeline(c1.ID))); n != 1 {
			f.t.Errorf("the case holds %d mails, want 1", n)
		}
	}
}

func testAppendDuplicate(f *fixture) {
	first := f.mail()
	a := f.createCase(first)
	b := f.createCase(f.mail())
	e := f.mail()
	f.noErr(f.d.AppendEmail(f.ctx, a.ID, e), "AppendEmail")
	f.noErr(f.d.AppendEmail(f.ctx, a.ID, e), "AppendEmail again (must be a no-op)")
	f.noErr(f.s.AppendEmail(f.ctx, a.ID, e), "Store.AppendEmail again")
	f.noErr(f.d.AppendEmail(f.ctx, a.ID, first), "AppendEmail of the case's first mail")
	// A key filed once is filed forever, even when offered to another case.
	f.noErr(f.d.AppendEmail(f.ctx, b.ID, e), "AppendEmail of a known key to another case")
	p, err := f.d.LookupProcessed(f.ctx, e.IdempotencyKey)
	f.noErr(err, "LookupProcessed")
	if p.CaseID != a.ID {
		f.t.Errorf("the key moved to case %q, want it kept on %q", p.CaseID, a.ID)
	}
	if f.cap.Lister {
		if n := len(emailsOf(f.timeline(a.ID))); n != 2 {
			f.t.Errorf("case A holds %d mails, want 2 (first + one append)", n)
		}
		if n := len(emailsOf(f.timeline(b.ID))); n != 1 {
			f.t.Errorf("case B holds %d mails, want 1", n)
		}
	}
}

func testRecordInteraction(f *fixture) {
	ct := f.contact(&driver.NewContact{Email: f.addr("alice")})
	e := f.mail()
	e.Auto = true
	in := &driver.Interaction{Kind: driver.KindEmail, ContactID: ct.ID, Email: e}
	f.noErr(f.d.RecordInteraction(f.ctx, in), "RecordInteraction")
	f.noErr(f.d.RecordInteraction(f.ctx, in), "RecordInteraction again (must be a no-op)")
	f.noErr(f.s.RecordInteraction(f.ctx, &mailcase.Interaction{ContactID: ct.ID, Email: e}), "Store.RecordInteraction again")
	p, err := f.d.LookupProcessed(f.ctx, e.IdempotencyKey)
	f.noErr(err, "LookupProcessed")
	if p.Key != e.IdempotencyKey || p.CaseID != "" || p.At.IsZero() {
		f.t.Errorf("LookupProcessed = %+v, want the key, no case and a time", p)
	}
	// The key is filed forever: it cannot open a case or join one later.
	_, err = f.d.CreateCase(f.ctx, f.newCase(e))
	f.wantDriverCode(err, driver.AlreadyExists, "CreateCase with a key recorded on no case")
	c := f.createCase(f.mail())
	f.noErr(f.d.AppendEmail(f.ctx, c.ID, e), "AppendEmail of a recorded key (must be a no-op)")
	if p2, err := f.d.LookupProcessed(f.ctx, e.IdempotencyKey); err != nil || p2.CaseID != "" {
		f.t.Errorf("after a no-op append LookupProcessed = %+v, %v; want still on no case", p2, err)
	}
	if _, err := f.d.LookupThread(f.ctx, []string{e.MessageID}); f.d.ErrorCode(err) != driver.NotFound {
		f.t.Errorf("LookupThread found a case for a mail filed on no case (err %v)", err)
	}
}

// testFingerprint checks that the content fingerprint filed with a key is
// returned by LookupProcessed on every path that files a key, that a mail
// filed without one reads back without one, and that a second filing under
// the key does not replace it.
func testFingerprint(f *fixture) {
	created, appended, recorded, bare := f.mail(), f.mail(), f.mail(), f.mail()
	created.Fingerprint = "v1:" + strings.Repeat("a1", 32)
	appended.Fingerprint = "v1:" + strings.Repeat("b2", 32)
	recorded.Fingerprint = "v1:" + strings.Repeat("c3", 32)
	c := f.createCase(created)
	f.noErr(f.d.AppendEmail(f.ctx, c.ID, appended), "AppendEmail")
	f.noErr(f.d.AppendEmail(f.ctx, c.ID, bare), "AppendEmail without a fingerprint")
	f.noErr(f.d.RecordInteraction(f.ctx, &driver.Interaction{Kind: driver.KindEmail, Email: recorded}), "RecordInteraction")
	again := *appended
	again.Fingerprint = "v1:" + strings.Repeat("d4", 32)
	f.noErr(f.d.AppendEmail(f.ctx, c.ID, &again), "AppendEmail of a filed key with another fingerprint (must be a no-op)")
	for _, tc := range []struct {
		path string
		e    *driver.Email
	}{
		{"CreateCase", created},
		{"AppendEmail", appended},
		{"AppendEmail without a fingerprint", bare},
		{"RecordInteraction", recorded},
	} {
		p, ok, err := f.s.LookupProcessed(f.ctx, tc.e.IdempotencyKey)
		f.noErr(err, "Store.LookupProcessed after "+tc.path)
		if !ok || p.Fingerprint != tc.e.Fingerprint {
			f.t.Errorf("LookupProcessed after %s: fingerprint %q (found %v), want %q", tc.path, p.Fingerprint, ok, tc.e.Fingerprint)
		}
	}
}

func testLookupProcessed(f *fixture) {
	created, appended, recorded := f.mail(), f.mail(), f.mail()
	c := f.createCase(created)
	f.noErr(f.d.AppendEmail(f.ctx, c.ID, appended), "AppendEmail")
	f.noErr(f.d.RecordInteraction(f.ctx, &driver.Interaction{Kind: driver.KindEmail, Email: recorded}), "RecordInteraction")
	for _, tc := range []struct {
		path string
		key  string
		want driver.CaseID
	}{
		{"CreateCase", created.IdempotencyKey, c.ID},
		{"AppendEmail", appended.IdempotencyKey, c.ID},
		{"RecordInteraction", recorded.IdempotencyKey, ""},
	} {
		p, ok, err := f.s.LookupProcessed(f.ctx, tc.key)
		f.noErr(err, "Store.LookupProcessed after "+tc.path)
		if !ok || p.Key != tc.key || p.CaseID != tc.want || p.At.IsZero() {
			f.t.Errorf("LookupProcessed after %s = %+v, %v; want key %q on case %q", tc.path, p, ok, tc.key, tc.want)
		}
	}
	_, err := f.d.LookupProcessed(f.ctx, "never-"+f.tag)
	f.wantDriverCode(err, driver.NotFound, "LookupProcessed of an unknown key")
	_, ok, err := f.s.LookupProcessed(f.ctx, "never-"+f.tag)
	if ok || err != nil {
		f.t.Errorf("Store.LookupProcessed of an unknown key = %v, %v; want false, nil", ok, err)
	}
}

func testAddNote(f *fixture) {
	c := f.createCase(f.mail())
	n := &driver.Note{IdempotencyKey: "note-" + f.tag, Author: "router", Body: "Routed to billing:\nkeyword 'invoice'", Public: true}
	f.noErr(f.d.AddNote(f.ctx, c.ID, n), "AddNote")
	f.noErr(f.d.AddNote(f.ctx, c.ID, n), "AddNote again with its key (must be a no-op)")
	f.noErr(f.s.AddNote(f.ctx, c.ID, &mailcase.Note{Author: "agent", Body: "Second note"}), "Store.AddNote")
	f.wantDriverCode(f.d.AddNote(f.ctx, "missing-"+driver.CaseID(f.tag), &driver.Note{Body: "x"}), driver.NotFound, "AddNote to a missing case")
	err := f.s.AddNote(f.ctx, c.ID, &mailcase.Note{Body: "   "})
	f.wantStoreCode(err, driver.InvalidArgument, mailcase.ErrInvalidArgument, "Store.AddNote with an empty body")
	if !f.cap.Lister {
		return
	}
	var notes []*driver.Note
	for _, in := range f.timeline(c.ID) {
		if in.Note != nil {
			notes = append(notes, in.Note)
		}
	}
	if len(notes) != 2 {
		f.t.Fatalf("the case holds %d notes, want 2", len(notes))
	}
	if notes[0].Body != n.Body || notes[0].Author != n.Author || !notes[0].Public || notes[1].Body != "Second note" {
		f.t.Errorf("notes read back as %+v, %+v", *notes[0], *notes[1])
	}
}

func testUpdateCase(f *fixture) {
	c := f.createCase(f.mail())
	st, pr, q, owner := driver.StatusInProgress, driver.PriorityUrgent, "queue2-"+f.tag, "agent-"+f.tag
	got, err := f.d.UpdateCase(f.ctx, c.ID, &driver.CaseUpdate{Status: &st, Priority: &pr, Queue: &q, Owner: &owner})
	f.noErr(err, "UpdateCase")
	for _, g := range []driver.Case{got, f.get(c.ID)} {
		if g.Status != st || g.Priority != pr || g.Queue != q || g.Owner != owner {
			f.t.Errorf("after UpdateCase the case is %+v", g)
		}
		if g.Subject != c.Subject || g.Number != c.Number || g.UpdatedAt.Before(c.UpdatedAt) {
			f.t.Errorf("UpdateCase changed untouched fields: %+v, was %+v", g, c)
		}
	}
	got, err = f.d.UpdateCase(f.ctx, c.ID, &driver.CaseUpdate{})
	f.noErr(err, "UpdateCase with no fields")
	if got.Status != st || got.Priority != pr || got.Queue != q || got.Owner != owner {
		f.t.Errorf("an empty update changed the case: %+v", got)
	}
	empty := ""
	got, err = f.d.UpdateCase(f.ctx, c.ID, &driver.CaseUpdate{Owner: &empty})
	f.noErr(err, "UpdateCase clearing the owner")
	if got.Owner != "" || got.Queue != q {
		f.t.Errorf("clearing the owner gave %+v", got)
	}
	_, err = f.d.UpdateCase(f.ctx, "missing-"+driver.CaseID(f.tag), &driver.CaseUpdate{Status: &st})
	f.wantDriverCode(err, driver.NotFound, "UpdateCase of a missing case")
	_, err = f.s.UpdateCase(f.ctx, c.ID, nil)
	f.wantStoreCode(err, driver.InvalidArgument, mailcase.ErrInvalidArgument, "Store.UpdateCase with nil update")
}

func testCloseReopen(f *fixture) {
	c := f.createCase(f.mail())
	closed, open := driver.StatusClosed, driver.StatusOpen
	got, err := f.s.UpdateCase(f.ctx, c.ID, &mailcase.CaseUpdate{Status: &closed})
	f.noErr(err, "close")
	if got.Status != closed || got.ClosedAt.IsZero() {
		f.t.Fatalf("closed case = status %q, ClosedAt %v; want closed with ClosedAt", got.Status, got.ClosedAt)
	}
	if g := f.get(c.ID); g.ClosedAt.IsZero() || !g.Status.IsClosed() {
		f.t.Errorf("GetCase after close = %+v", g)
	}
	got, err = f.s.UpdateCase(f.ctx, c.ID, &mailcase.CaseUpdate{Status: &open})
	f.noErr(err, "reopen")
	if got.Status != open || !got.ClosedAt.IsZero() {
		f.t.Errorf("reopened case = status %q, ClosedAt %v; want open without ClosedAt", got.Status, got.ClosedAt)
	}
	if g := f.get(c.ID); !g.ClosedAt.IsZero() {
		f.t.Errorf("GetCase after reopen keeps ClosedAt %v", g.ClosedAt)
	}
}

func testFindCaseByNumber(f *fixture) {
	seen := map[string]driver.CaseID{}
	for range 3 {
		c := f.createCase(f.mail())
		if prev, dup := seen[c.Number]; dup {
			f.t.Fatalf("cases %q and %q share number %q", prev, c.ID, c.Number)
		}
		if len(c.Number) > 32 || strings.IndexFunc(c.Number, unicode.IsSpace) >= 0 {
			f.t.Errorf("case number %q is not a short human token", c.Number)
		}
		seen[c.Number] = c.ID
	}
	for num, id := range seen {
		got, err := f.d.FindCaseByNumber(f.ctx, num)
		f.noErr(err, "FindCaseByNumber")
		if got.ID != id {
			f.t.Errorf("FindCaseByNumber(%q) = %q, want %q", num, got.ID, id)
		}
		sc, ok, err := f.s.FindCaseByNumber(f.ctx, " "+num+" ")
		f.noErr(err, "Store.FindCaseByNumber")
		if !ok || sc.ID != id {
			f.t.Errorf("Store.FindCaseByNumber(%q) = %q, %v", num, sc.ID, ok)
		}
	}
	_, err := f.d.FindCaseByNumber(f.ctx, "no-such-"+f.tag)
	f.wantDriverCode(err, driver.NotFound, "FindCaseByNumber of an unknown number")
}

func testGetCaseNotFound(f *fixture) {
	_, err := f.d.GetCase(f.ctx, "missing-"+driver.CaseID(f.tag))
	f.wantDriverCode(err, driver.NotFound, "GetCase of a missing case")
	_, ok, err := f.s.GetCase(f.ctx, "missing-"+driver.CaseID(f.tag))
	if ok || err != nil {
		f.t.Errorf("Store.GetCase of a missing case = %v, %v; want false, nil", ok, err)
	}
}

func testParticipants(f *fixture) {
	ct := f.contact(&driver.NewContact{Email: f.addr("contact")})
	e := f.mail()
	e.Cc = []driver.Address{{Email: f.addr("cc")}, {Email: f.addr("alice")}}
	req := f.newCase(e)
	req.ContactID = ct.ID
	c, err := f.s.CreateCase(f.ctx, req)
	f.noErr(err, "Store.CreateCase")
	reply := f.mail()
	reply.From = driver.Address{Name: "Eve", Email: f.addr("eve")}
	reply.To = []driver.Address{{Email: "SUPPORT." + strings.ToUpper(f.tag) + "@Example.COM"}} // normalised by the Store
	f.noErr(f.s.AppendEmail(f.ctx, c.ID, reply), "Store.AppendEmail")
	want := []string{f.addr("alice"), f.addr("cc"), f.addr("eve"), f.addr("support")}
	if f.cap.Directory {
		want = append(want, f.addr("contact")) // the case contact's address
	}
	slices.Sort(want)
	if got := f.get(c.ID).Participants; !slices.Equal(got, want) {
		f.t.Errorf("participants = %v, want %v (normalised, sorted, unique)", got, want)
	}
}

// testParticipantsWithheld checks the two anti-hijack rules of the
// participants: a placeholder contact's address never joins, and a mail
// filed with NoParticipants adds none of its addresses.
func testParticipantsWithheld(f *fixture) {
	ph := f.contact(&driver.NewContact{Name: "Unknown sender", Email: f.addr("unknown-sender"), Placeholder: true})
	e := f.mail()
	req := f.newCase(e)
	req.ContactID = ph.ID
	c, err := f.s.CreateCase(f.ctx, req)
	f.noErr(err, "Store.CreateCase")
	want := []string{f.addr("alice"), f.addr("support")}
	slices.Sort(want)
	if got := f.get(c.ID).Participants; !slices.Equal(got, want) {
		f.t.Errorf("participants of a placeholder's case = %v, want %v (the placeholder's address never joins)", got, want)
	}
	reply := f.mail()
	reply.From = driver.Address{Email: f.addr("unknown-sender")}
	reply.Cc = []driver.Address{{Email: f.addr("eve")}}
	reply.NoParticipants = true
	f.noErr(f.s.AppendEmail(f.ctx, c.ID, reply), "Store.AppendEmail with NoParticipants")
	if got := f.get(c.ID).Participants; !slices.Equal(got, want) {
		f.t.Errorf("participants after a mail filed with NoParticipants = %v, want %v unchanged", got, want)
	}
	if p, err := f.d.LookupProcessed(f.ctx, reply.IdempotencyKey); err != nil || p.CaseID != c.ID {
		f.t.Errorf("LookupProcessed of a mail filed with NoParticipants = %+v, %v; want it on case %s", p, err, c.ID)
	}
	if f.cap.Lister && f.findEmail(c.ID, reply.IdempotencyKey) == nil {
		f.t.Errorf("a mail filed with NoParticipants is not on the case's timeline")
	}
	first := f.mail()
	first.Cc = []driver.Address{{Email: f.addr("mallory")}}
	first.NoParticipants = true
	c2, err := f.s.CreateCase(f.ctx, f.newCase(first))
	f.noErr(err, "Store.CreateCase with NoParticipants")
	if got := f.get(c2.ID).Participants; len(got) != 0 {
		f.t.Errorf("participants of a case whose first mail has NoParticipants = %v, want none", got)
	}
}

func testCaseURL(f *fixture) {
	c := f.createCase(f.mail())
	u, err := f.d.CaseURL(f.ctx, c.ID)
	f.noErr(err, "CaseURL")
	if u == "" || strings.ContainsAny(u, " \r\n") {
		f.t.Errorf("CaseURL = %q, want a non-empty URL", u)
	}
	su, err := f.s.CaseURL(f.ctx, c.ID)
	f.noErr(err, "Store.CaseURL")
	if su != u {
		f.t.Errorf("Store.CaseURL = %q, driver says %q", su, u)
	}
}

func testErrorCode(f *fixture) {
	if c := f.d.ErrorCode(nil); c != driver.OK {
		f.t.Errorf("ErrorCode(nil) = %v, want OK", c)
	}
	if c := f.d.ErrorCode(errors.New("some error the driver never made")); c == driver.OK {
		f.t.Errorf("ErrorCode of a foreign error = OK, want a failure code (Unknown)")
	}
	if c := f.d.ErrorCode(context.Canceled); c != driver.Canceled {
		f.t.Errorf("ErrorCode(context.Canceled) = %v, want Canceled", c)
	}
	if c := f.d.ErrorCode(fmt.Errorf("call: %w", context.DeadlineExceeded)); c != driver.DeadlineExceeded {
		f.t.Errorf("ErrorCode(wrapped DeadlineExceeded) = %v, want DeadlineExceeded", c)
	}
	_, err := f.d.GetCase(f.ctx, "missing-"+driver.CaseID(f.tag))
	f.wantDriverCode(err, driver.NotFound, "GetCase of a missing case")
}

func testCanceled(f *fixture) {
	c := f.createCase(f.mail())
	ctx, cancel := context.WithCancel(f.ctx)
	cancel()
	_, err := f.d.GetCase(ctx, c.ID)
	f.wantDriverCode(err, driver.Canceled, "driver GetCase with a cancelled context")
	err = f.d.AppendEmail(ctx, c.ID, f.mail())
	f.wantDriverCode(err, driver.Canceled, "driver AppendEmail with a cancelled context")
	_, _, err = f.s.GetCase(ctx, c.ID)
	f.wantStoreCode(err, driver.Canceled, context.Canceled, "Store.GetCase with a cancelled context")
	_, err = f.s.CreateCase(ctx, f.newCase(f.mail()))
	f.wantStoreCode(err, driver.Canceled, context.Canceled, "Store.CreateCase with a cancelled context")
}

func testConcurrentSameKey(f *fixture) {
	e := f.mail()
	const n = 16
	ids := make([]driver.CaseID, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c, err := f.s.CreateCase(f.ctx, f.newCase(e))
			ids[i], errs[i] = c.ID, err
		})
	}
	wg.Wait()
	for i := range n {
		f.noErr(errs[i], "concurrent CreateCase with one key")
		if ids[i] != ids[0] {
			f.t.Fatalf("concurrent creates with one key made cases %q and %q, want one", ids[0], ids[i])
		}
	}
	if f.cap.Lister {
		if cs := f.listQueue(driver.ListOptions{}); len(cs) != 1 {
			f.t.Errorf("16 concurrent creates with one key left %d cases, want exactly 1", len(cs))
		}
		if m := emailsOf(f.timeline(ids[0])); len(m) != 1 {
			f.t.Errorf("the case holds %d mails, want 1", len(m))
		}
	}
}

func testConcurrentDistinct(f *fixture) {
	const n = 16
	mails := make([]*driver.Email, n)
	for i := range mails {
		mails[i] = f.mail()
	}
	cases := make([]driver.Case, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { cases[i], errs[i] = f.s.CreateCase(f.ctx, f.newCase(mails[i])) })
	}
	wg.Wait()
	ids, nums := map[driver.CaseID]bool{}, map[string]bool{}
	for i, c := range cases {
		f.noErr(errs[i], "concurrent CreateCase")
		if ids[c.ID] || nums[c.Number] {
			f.t.Fatalf("concurrent creates reused ID %q or number %q", c.ID, c.Number)
		}
		ids[c.ID], nums[c.Number] = true, true
		if got, err := f.d.LookupThread(f.ctx, []string{mails[i].MessageID}); err != nil || got.ID != c.ID {
			f.t.Errorf("LookupThread of concurrent mail %d = %q, %v; want %q", i, got.ID, err, c.ID)
		}
	}
}

// unicodeSubjects are the Unicode round-trip cases.
var unicodeSubjects = []string{
	"Drucker brennt 🔥🖨️ — bitte helfen",
	"打印机着火了，请尽快处理",
	"الطابعة تحترق، الرجاء المساعدة",
	"שלום – המדפסת בוערת",
	"Mixed \u202eRTL override\u202c and combining é and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
}

func testUnicode(f *fixture) {
	long := strings.Repeat("Ω漢🙂a", 2500) // 10,000 runes
	for _, subj := range append(slices.Clone(unicodeSubjects), long) {
		if f.cap.Directory {
			ct, err := f.s.CreateContact(f.ctx, &mailcase.NewContact{Name: truncRunes(subj, 40), Email: f.addr("u" + strconv.Itoa(f.next()))})
			f.noErr(err, "Store.CreateContact with a Unicode name")
			if got, _ := f.s.FindContacts(f.ctx, ct.Email); len(got) != 1 || got[0].Name != ct.Name {
				f.t.Errorf("Unicode contact name read back as %+v, want %q", got, ct.Name)
			}
		}
		e := f.mail()
		e.Subject, e.Text, e.HTML = subj, subj+"\n", "<p>"+subj+"</p>"
		e.From.Name = truncRunes(subj, 60)
		c, err := f.s.CreateCase(f.ctx, &mailcase.NewCase{Subject: subj, Queue: f.queue(), First: e})
		f.noErr(err, "Store.CreateCase with a Unicode subject")
		if g := f.get(c.ID); g.Subject != subj {
			f.t.Errorf("subject of %d bytes read back as %d bytes %.40q", len(subj), len(g.Subject), g.Subject)
		}
		if f.cap.Lister {
			got := f.findEmail(c.ID, e.IdempotencyKey)
			if d := compareEmail(got, normalized(e)); d != "" {
				f.t.Errorf("Unicode mail read back wrong: %s", d)
			}
		}
	}
}

// normalized returns e as the Store passes it to drivers (the Store trims
// and cleans one-line fields), for comparisons.
func normalized(e *driver.Email) *driver.Email {
	n := *e
	n.From.Name = strings.TrimSpace(n.From.Name)
	return &n
}

func testLarge(f *fixture) {
	e := f.mail()
	e.Text = strings.Repeat("Lorem ipsum dolor sit amet, 0123456789 ÄÖÜ.\n", 5<<20/46)
	e.HTML = "<pre>" + e.Text + "</pre>"
	for i, name := range []string{"photo.jpg", "dump.bin", "report.pdf"} {
		data := binary(2<<20+i, byte(i))
		e.Attachments = append(e.Attachments, driver.Attachment{
			Filename: name, ContentType: "application/octet-stream", ContentID: fmt.Sprintf("cid%d.%s@x", i, f.tag),
			Inline: i == 0, Size: int64(len(data)), Data: data,
		})
	}
	e.Attachments = append(e.Attachments, driver.Attachment{Filename: "empty.txt", ContentType: "text/plain", Data: []byte{}})
	c, err := f.s.CreateCase(f.ctx, f.newCase(e))
	f.noErr(err, "Store.CreateCase with 5 MB bodies and attachments")
	e2 := f.mail()
	e2.Attachments = []driver.Attachment{{Filename: "zeros.bin", ContentType: "application/octet-stream", Size: 1 << 20, Data: make([]byte, 1<<20)}}
	f.noErr(f.s.AppendEmail(f.ctx, c.ID, e2), "Store.AppendEmail with an attachment")
	if !f.cap.Lister {
		return
	}
	if d := compareEmail(f.findEmail(c.ID, e.IdempotencyKey), e); d != "" {
		f.t.Errorf("large mail read back wrong: %s", d)
	}
	if d := compareEmail(f.findEmail(c.ID, e2.IdempotencyKey), e2); d != "" {
		f.t.Errorf("appended attachment read back wrong: %s", d)
	}
}

// injections are strings shaped like SQL, SOQL, OData and shell injection;
// stores must keep them literally.
var injections = []string{
	`'; DROP TABLE cases; --`,
	`Robert'); DROP TABLE students; --`,
	`back\slash \\ and \' and \"`,
	`"double" and 'single' quotes`,
	`%_ wildcards * ? [a-z] $1 ${x} {{.}}`,
	`' OR '1'='1`,
	`x' or name eq 'y`,
	`-- comment /* block */ ; semicolon`,
}

func testInjection(f *fixture) {
	for i, inj := range injections {
		tagged := inj + " #" + strconv.Itoa(i) + f.tag
		ct := f.contact(&driver.NewContact{Name: tagged, Email: "o'brien" + strconv.Itoa(i) + "." + f.tag + "@example.com", SupportLevel: tagged})
		if f.cap.Directory {
			got, err := f.dir().FindContacts(f.ctx, ct.Email)
			f.noErr(err, "FindContacts with a quote in the address")
			if len(got) != 1 || got[0].Name != tagged || got[0].SupportLevel != tagged {
				f.t.Errorf("FindContacts(%q) = %+v, want the contact named %q", ct.Email, got, tagged)
			}
		}
		e := f.mail()
		e.IdempotencyKey = "key-" + tagged
		e.MessageID = "robert');--" + strconv.Itoa(i) + "'\\\"." + f.tag + "@mail.example.com"
		e.Mailbox, e.Subject, e.Text, e.HTML, e.ReplyText = tagged, tagged, tagged, tagged, tagged
		e.From.Name = tagged
		e.Attachments = []driver.Attachment{{Filename: tagged, ContentType: "text/plain", Data: []byte(tagged), Size: int64(len(tagged))}}
		acc := f.account(tagged)
		req := &driver.NewCase{Subject: tagged, Description: tagged, Status: driver.StatusNew, Priority: driver.PriorityNormal,
			Queue: f.queue(), Origin: tagged, Category: tagged, ContactID: ct.ID, AccountID: acc, First: e}
		c, err := f.d.CreateCase(f.ctx, req)
		f.noErr(err, "CreateCase with injection-shaped fields")
		g := f.get(c.ID)
		if g.Subject != tagged || g.Origin != tagged || g.Category != tagged || g.AccountID != acc {
			f.t.Errorf("case fields read back as %+v, want %q literally", g, tagged)
		}
		if lc, err := f.d.LookupThread(f.ctx, []string{e.MessageID}); err != nil || lc.ID != c.ID {
			f.t.Errorf("LookupThread(%q) = %q, %v; want %q", e.MessageID, lc.ID, err, c.ID)
		}
		if p, err := f.d.LookupProcessed(f.ctx, e.IdempotencyKey); err != nil || p.CaseID != c.ID {
			f.t.Errorf("LookupProcessed(%q) = %+v, %v", e.IdempotencyKey, p, err)
		}
		owner, queue := tagged, f.queue()
		if u, err := f.d.UpdateCase(f.ctx, c.ID, &driver.CaseUpdate{Owner: &owner, Queue: &queue}); err != nil || u.Owner != tagged {
			f.t.Errorf("UpdateCase with an injection-shaped owner = %+v, %v", u, err)
		}
		f.noErr(f.d.AddNote(f.ctx, c.ID, &driver.Note{Author: tagged, Body: tagged, IdempotencyKey: "note-" + tagged}), "AddNote")
		if _, err := f.d.FindCaseByNumber(f.ctx, tagged); f.d.ErrorCode(err) != driver.NotFound {
			f.t.Errorf("FindCaseByNumber(%q) = %v, want NotFound", tagged, err)
		}
		if f.cap.Lister {
			if d := compareEmail(f.findEmail(c.ID, e.IdempotencyKey), e); d != "" {
				f.t.Errorf("injection-shaped mail read back wrong: %s", d)
			}
		}
	}
	if f.cap.Lister {
		if cs := f.listQueue(driver.ListOptions{}); len(cs) != len(injections) {
			f.t.Errorf("the queue holds %d cases, want %d (the table is intact)", len(cs), len(injections))
		}
	}
}

func testNoAliasing(f *fixture) {
	e := f.mail()
	e.Cc = []driver.Address{{Email: f.addr("cc")}}
	e.References = []string{"r1." + f.tag + "@x"}
	e.Attachments = []driver.Attachment{{Filename: "a.bin", ContentType: "application/octet-stream", Size: 3, Data: []byte{1, 2, 3}}}
	want := *e
	want.Cc = slices.Clone(e.Cc)
	want.References = slices.Clone(e.References)
	want.Attachments = []driver.Attachment{e.Attachments[0]}
	want.Attachments[0].Data = []byte{1, 2, 3}
	c := f.createCase(e)
	// The caller reuses its buffers.
	e.Cc[0].Email = "changed@example.com"
	e.References[0] = "changed@x"
	e.Attachments[0].Data[0] = 99
	e.Attachments[0].Filename = "changed"
	got := f.get(c.ID)
	got.Participants[0] = "mutated@example.com"
	if again := f.get(c.ID); slices.Contains(again.Participants, "mutated@example.com") || slices.Contains(again.Participants, "changed@example.com") {
		f.t.Errorf("participants alias caller memory: %v", again.Participants)
	}
	if f.cap.Lister {
		filed := f.findEmail(c.ID, e.IdempotencyKey)
		if d := compareEmail(filed, &want); d != "" {
			f.t.Errorf("filed mail changed with the caller's buffers: %s", d)
		}
		filed.Attachments[0].Data[1] = 42
		if d := compareEmail(f.findEmail(c.ID, e.IdempotencyKey), &want); d != "" {
			f.t.Errorf("filed mail changed with a returned buffer: %s", d)
		}
	}
}

func testListCases(f *fixture) {
	var made []driver.Case
	for range 3 {
		made = append(made, f.createCase(f.mail()))
	}
	cs := f.listQueue(driver.ListOptions{})
	if len(cs) != 3 {
		f.t.Fatalf("ListCases(queue) returned %d cases, want 3", len(cs))
	}
	for i, c := range cs {
		if want := made[len(made)-1-i].ID; c.ID != want {
			f.t.Errorf("ListCases[%d] = %q, want %q (newest first)", i, c.ID, want)
		}
	}
	if cs := f.listQueue(driver.ListOptions{Limit: 2}); len(cs) != 2 || cs[0].ID != made[2].ID {
		f.t.Errorf("ListCases(limit 2) = %d cases, want the 2 newest", len(cs))
	}
	closed := driver.StatusClosed
	_, err := f.d.UpdateCase(f.ctx, made[1].ID, &driver.CaseUpdate{Status: &closed})
	f.noErr(err, "UpdateCase")
	if cs := f.listQueue(driver.ListOptions{Status: driver.StatusClosed}); len(cs) != 1 || cs[0].ID != made[1].ID {
		f.t.Errorf("ListCases(status closed) = %+v, want the closed case only", cs)
	}
	sc, err := f.s.ListCases(f.ctx, &mailcase.ListOptions{Queue: f.queue(), Status: driver.StatusNew})
	f.noErr(err, "Store.ListCases")
	if len(sc) != 2 {
		f.t.Errorf("Store.ListCases(status new) = %d cases, want 2", len(sc))
	}
}

func testListInteractions(f *fixture) {
	first, second := f.mail(), f.mail()
	c := f.createCase(first)
	f.noErr(f.d.AddNote(f.ctx, c.ID, &driver.Note{Author: "a", Body: "note between mails"}), "AddNote")
	f.noErr(f.d.AppendEmail(f.ctx, c.ID, second), "AppendEmail")
	tl := f.timeline(c.ID)
	if len(tl) != 3 {
		f.t.Fatalf("timeline has %d entries, want 3", len(tl))
	}
	if tl[0].Email == nil || tl[0].Email.IdempotencyKey != first.IdempotencyKey ||
		tl[1].Note == nil || tl[1].Kind != driver.KindNote ||
		tl[2].Email == nil || tl[2].Email.IdempotencyKey != second.IdempotencyKey || tl[2].Kind != driver.KindEmail {
		f.t.Errorf("timeline is not mail, note, mail oldest first: %+v", tl)
	}
	for _, in := range tl {
		if in.CaseID != c.ID || in.ID == "" {
			f.t.Errorf("interaction %+v: want an ID and case %q", in, c.ID)
		}
	}
	_, err := f.d.(driver.Lister).ListInteractions(f.ctx, "missing-"+driver.CaseID(f.tag))
	f.wantDriverCode(err, driver.NotFound, "ListInteractions of a missing case")
}

func testQuarantine(f *fixture) {
	qs := f.d.(driver.Quarantiner)
	mb1, mb2 := "mb1-"+f.tag, "mb2-"+f.tag
	raw1 := append([]byte("From: x\r\n\r\n"), binary(70000, 7)...)
	raw2 := []byte("Subject: =?utf-8?q?bad?=\r\n\r\n\x00\xff'; DROP TABLE quarantine; --")
	id1, err := qs.PutQuarantine(f.ctx, &driver.QuarantineItem{Mailbox: mb1, Key: "k1-" + f.tag, Reason: "parse: broken MIME", Attempts: 3, Raw: raw1})
	f.noErr(err, "PutQuarantine")
	id2, err := f.s.PutQuarantine(f.ctx, &mailcase.QuarantineItem{Mailbox: mb2, Reason: "too large", Raw: raw2})
	f.noErr(err, "Store.PutQuarantine")
	if id1 == "" || id1 == id2 {
		f.t.Fatalf("quarantine IDs %q and %q: want distinct and non-empty", id1, id2)
	}
	l1, err := qs.ListQuarantine(f.ctx, mb1)
	f.noErr(err, "ListQuarantine")
	if len(l1) != 1 {
		f.t.Fatalf("ListQuarantine(%q) = %d items, want 1", mb1, len(l1))
	}
	q := l1[0]
	if q.ID != id1 || q.Mailbox != mb1 || q.Key != "k1-"+f.tag || q.Reason != "parse: broken MIME" || q.Attempts != 3 || q.CreatedAt.IsZero() {
		f.t.Errorf("quarantine item read back as %+v", q)
	}
	if string(q.Raw) != string(raw1) {
		f.t.Errorf("quarantined raw mail changed: %d bytes, want %d byte-exact", len(q.Raw), len(raw1))
	}
	g, err := qs.GetQuarantine(f.ctx, id2)
	f.noErr(err, "GetQuarantine")
	if g.ID != id2 || g.Mailbox != mb2 || g.Reason != "too large" || string(g.Raw) != string(raw2) || g.CreatedAt.IsZero() {
		f.t.Errorf("GetQuarantine(%q) = %+v, want the item with its raw bytes", id2, g)
	}
	sg, ok, err := f.s.GetQuarantine(f.ctx, id1)
	f.noErr(err, "Store.GetQuarantine")
	if !ok || sg.ID != id1 || string(sg.Raw) != string(raw1) {
		f.t.Errorf("Store.GetQuarantine(%q) = %v, %d raw bytes; want the item byte-exact", id1, ok, len(sg.Raw))
	}
	all, err := f.s.ListQuarantine(f.ctx, "")
	f.noErr(err, "Store.ListQuarantine(all)")
	found := 0
	for _, it := range all {
		if it.ID == id1 || it.ID == id2 && string(it.Raw) == string(raw2) {
			found++
		}
	}
	if found != 2 {
		f.t.Errorf("ListQuarantine(all) found %d of our 2 items", found)
	}
	f.noErr(qs.DeleteQuarantine(f.ctx, id1), "DeleteQuarantine")
	if l, _ := qs.ListQuarantine(f.ctx, mb1); len(l) != 0 {
		f.t.Errorf("after DeleteQuarantine the mailbox still holds %d items", len(l))
	}
	f.wantDriverCode(qs.DeleteQuarantine(f.ctx, id1), driver.NotFound, "DeleteQuarantine twice")
	_, err = qs.GetQuarantine(f.ctx, id1)
	f.wantDriverCode(err, driver.NotFound, "GetQuarantine of a deleted item")
	_, err = qs.GetQuarantine(f.ctx, "missing-"+f.tag)
	f.wantDriverCode(err, driver.NotFound, "GetQuarantine of an unknown ID")
	if _, ok, err := f.s.GetQuarantine(f.ctx, id1); ok || err != nil {
		f.t.Errorf("Store.GetQuarantine of a deleted item = %v, %v; want false, nil", ok, err)
	}
	if l, _ := qs.ListQuarantine(f.ctx, mb2); len(l) != 1 {
		f.t.Errorf("deleting one item touched another mailbox: %d items left, want 1", len(l))
	}
}

func testState(f *fixture) {
	ss := f.d.(driver.StateStore)
	key := "imap/" + f.tag + "/INBOX"
	_, err := ss.GetState(f.ctx, key)
	f.wantDriverCode(err, driver.NotFound, "GetState of an unset key")
	v1 := append([]byte("uidvalidity=1;last=42;"), 0, 0xff, '\'')
	f.noErr(ss.PutState(f.ctx, key, v1), "PutState")
	got, err := ss.GetState(f.ctx, key)
	f.noErr(err, "GetState")
	if string(got) != string(v1) {
		f.t.Errorf("GetState = %q, want %q", got, v1)
	}
	v2 := []byte("uidvalidity=1;last=43")
	f.noErr(f.s.PutState(f.ctx, key, v2), "Store.PutState overwrite")
	sv, ok, err := f.s.GetState(f.ctx, key)
	f.noErr(err, "Store.GetState")
	if !ok || string(sv) != string(v2) {
		f.t.Errorf("Store.GetState after overwrite = %q, %v; want %q", sv, ok, v2)
	}
	_, ok, err = f.s.GetState(f.ctx, key+"/other")
	if ok || err != nil {
		f.t.Errorf("Store.GetState of an unset key = %v, %v; want false, nil", ok, err)
	}
}

func testClosed(f *fixture) {
	c := f.createCase(f.mail())
	if err := f.s.Close(); err != nil {
		f.t.Fatalf("Close: %v", err)
	}
	_, _, err := f.s.GetCase(f.ctx, c.ID)
	f.wantStoreCode(err, driver.FailedPrecondition, mailcase.ErrClosed, "GetCase after Close")
	_, err = f.s.CreateCase(f.ctx, f.newCase(f.mail()))
	f.wantStoreCode(err, driver.FailedPrecondition, mailcase.ErrClosed, "CreateCase after Close")
	if err := f.s.Close(); !errors.Is(err, mailcase.ErrClosed) {
		f.t.Errorf("second Close = %v, want ErrClosed", err)
	}
}

// truncRunes returns the first n runes of s.
func truncRunes(s string, n int) string {
	r := []rune(s)
	return string(r[:min(len(r), n)])
}

// lease takes a Leaser result and returns its check:
// f.lease(ls.AcquireLease(...))(true, "what").
func (f *fixture) lease(got bool, err error) func(want bool, what string) {
	return func(want bool, what string) {
		f.t.Helper()
		f.noErr(err, what)
		if got != want {
			f.t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
}

func testLease(f *fixture) {
	ls := f.d.(driver.Leaser)
	for _, name := range []string{"mailbox:" + f.tag, "mail:'; DROP TABLE leases; --/" + f.tag, strings.Repeat("ü", 300) + f.tag} {
		f.lease(ls.AcquireLease(f.ctx, name, "worker-a", time.Minute))(true, "Acquire a free lease")
		f.lease(ls.AcquireLease(f.ctx, name, "worker-b", time.Minute))(false, "Acquire a lease held by another")
		f.lease(ls.AcquireLease(f.ctx, name, "worker-a", time.Minute))(true, "Acquire a lease already held (extends it)")
		f.lease(ls.RenewLease(f.ctx, name, "worker-a", time.Minute))(true, "Renew by the holder")
		f.lease(ls.RenewLease(f.ctx, name, "worker-b", time.Minute))(false, "Renew by another")
		f.noErr(ls.ReleaseLease(f.ctx, name, "worker-b"), "Release by another (not an error)")
		f.lease(ls.AcquireLease(f.ctx, name, "worker-b", time.Minute))(false, "Acquire after another's release")
		f.noErr(ls.ReleaseLease(f.ctx, name, "worker-a"), "Release by the holder")
		f.lease(ls.RenewLease(f.ctx, name, "worker-a", time.Minute))(false, "Renew a released lease")
		f.lease(ls.AcquireLease(f.ctx, name, "worker-b", time.Minute))(true, "Acquire a released lease")
	}
	f.noErr(ls.ReleaseLease(f.ctx, "never-"+f.tag, "worker-a"), "Release of a lease never granted")
	got, err := f.s.AcquireLease(f.ctx, "store-"+f.tag, "w", time.Minute)
	f.lease(got, err)(true, "Store.AcquireLease")
	_, err = f.s.AcquireLease(f.ctx, "store-"+f.tag, "w", 0)
	f.wantStoreCode(err, driver.InvalidArgument, mailcase.ErrInvalidArgument, "Store.AcquireLease with a zero TTL")
}

func testLeaseExpires(f *fixture) {
	ls := f.d.(driver.Leaser)
	name := "short-" + f.tag
	f.lease(ls.AcquireLease(f.ctx, name, "worker-a", 200*time.Millisecond))(true, "Acquire a short lease")
	f.lease(ls.AcquireLease(f.ctx, name, "worker-b", time.Minute))(false, "Acquire a live short lease")
	time.Sleep(500 * time.Millisecond)
	f.lease(ls.RenewLease(f.ctx, name, "worker-a", time.Minute))(false, "Renew an expired lease")
	f.lease(ls.AcquireLease(f.ctx, name, "worker-b", time.Minute))(true, "Acquire an expired lease")
	f.lease(ls.AcquireLease(f.ctx, name, "worker-a", time.Minute))(false, "Acquire by the old holder after takeover")
}

func testLeaseConcurrent(f *fixture) {
	ls := f.d.(driver.Leaser)
	name := "contended-" + f.tag
	const n = 16
	won := make([]bool, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { won[i], errs[i] = ls.AcquireLease(f.ctx, name, "worker-"+strconv.Itoa(i), time.Minute) })
	}
	wg.Wait()
	winners := 0
	for i := range n {
		f.noErr(errs[i], "concurrent AcquireLease")
		if won[i] {
			winners++
		}
	}
	if winners != 1 {
		f.t.Errorf("%d of %d concurrent workers acquired one lease, want exactly 1", winners, n)
	}
}

// testKeysAreBytes files and looks up keys shaped like the pipeline's (with
// NUL bytes) on every path, and checks that keys differing only after a
// NUL stay distinct (a driver must not cut keys at NUL, C-string style).
func testKeysAreBytes(f *fixture) {
	e := f.mail()
	key := e.IdempotencyKey
	c, err := f.d.CreateCase(f.ctx, f.newCase(e))
	if err != nil {
		f.t.Fatalf("CreateCase with idempotency key %q: %v (code %v); %s", key, err, f.d.ErrorCode(err), keyHint)
	}
	again, err := f.d.CreateCase(f.ctx, f.newCase(e))
	if err != nil || again.ID != c.ID {
		f.t.Fatalf("CreateCase again with key %q = %q, %v; want the case %q; %s", key, again.ID, err, c.ID, keyHint)
	}
	sender := f.mail()
	sender.IdempotencyKey = key + "\x00sender" // the pipeline's copy on the sender's record
	if err := f.d.RecordInteraction(f.ctx, &driver.Interaction{Kind: driver.KindEmail, Email: sender}); err != nil {
		f.t.Fatalf("RecordInteraction with key %q: %v (code %v); %s", sender.IdempotencyKey, err, f.d.ErrorCode(err), keyHint)
	}
	appended := f.mail()
	appended.IdempotencyKey = "support\x00\x00" + appended.MessageID + "\x00"
	if err := f.d.AppendEmail(f.ctx, c.ID, appended); err != nil {
		f.t.Fatalf("AppendEmail with key %q: %v (code %v); %s", appended.IdempotencyKey, err, f.d.ErrorCode(err), keyHint)
	}
	for _, tc := range []struct {
		key  string
		want driver.CaseID
	}{{key, c.ID}, {sender.IdempotencyKey, ""}, {appended.IdempotencyKey, c.ID}} {
		p, err := f.d.LookupProcessed(f.ctx, tc.key)
		if err != nil || p.Key != tc.key || p.CaseID != tc.want {
			f.t.Errorf("LookupProcessed(%q) = key %q on case %q, err %v; want the key exactly, on case %q; %s",
				tc.key, p.Key, p.CaseID, err, tc.want, keyHint)
		}
	}
	if _, err := f.d.LookupProcessed(f.ctx, "support\x00"); f.d.ErrorCode(err) != driver.NotFound {
		f.t.Errorf("LookupProcessed of a key never filed, a prefix up to NUL of filed keys: err %v, want NotFound; %s", err, keyHint)
	}
	if f.cap.Lister {
		if got := f.findEmail(c.ID, appended.IdempotencyKey); got == nil {
			f.t.Errorf("the mail filed with key %q does not read back with it; %s", appended.IdempotencyKey, keyHint)
		}
	}
}

// testCreateCaseDefaults checks the defaults mailcase.Store fills in: an
// empty Subject is the first mail's, an empty Status is new, an empty
// Priority normal; set values are kept.
func testCreateCaseDefaults(f *fixture) {
	e := f.mail()
	c, err := f.s.CreateCase(f.ctx, &mailcase.NewCase{Queue: f.queue(), First: e})
	f.noErr(err, "Store.CreateCase without subject, status and priority")
	for _, got := range []driver.Case{c, f.get(c.ID)} {
		if got.Subject != e.Subject || got.Status != driver.StatusNew || got.Priority != driver.PriorityNormal {
			f.t.Errorf("defaults: subject %q, status %q, priority %q; want %q, new, normal", got.Subject, got.Status, got.Priority, e.Subject)
		}
	}
	set, err := f.s.CreateCase(f.ctx, &mailcase.NewCase{Subject: "Own subject", Status: driver.StatusOpen,
		Priority: driver.PriorityLow, Queue: f.queue(), First: f.mail()})
	f.noErr(err, "Store.CreateCase with subject, status and priority")
	if g := f.get(set.ID); g.Subject != "Own subject" || g.Status != driver.StatusOpen || g.Priority != driver.PriorityLow {
		f.t.Errorf("set fields read back as subject %q, status %q, priority %q", g.Subject, g.Status, g.Priority)
	}
}

// unsupportedAs is a type no driver exposes.
type unsupportedAs struct{ _ int }

// testAs checks driver.Aser: unsupported types are refused without panics,
// through the driver and through the Store; the harness checks the
// supported ones (AsTester).
func testAs(f *fixture) {
	a := f.d.(driver.Aser)
	var u *unsupportedAs
	if a.As(&u) || a.As(nil) || f.s.As(&u) {
		f.t.Errorf("As of an unsupported type reported true")
	}
	err := f.s.AppendEmail(f.ctx, "missing-"+driver.CaseID(f.tag), f.mail())
	f.wantStoreCode(err, driver.NotFound, mailcase.ErrNotFound, "Store.AppendEmail to a missing case")
	if f.s.ErrorAs(err, &u) || a.ErrorAs(err, &u) || u != nil {
		f.t.Errorf("ErrorAs of an unsupported type reported true or set the target")
	}
	if at, ok := f.h.(AsTester); ok {
		if cerr := at.AsCheck(f.s, err); cerr != nil {
			f.t.Errorf("AsCheck: %v", cerr)
		}
	}
}

// testFirstFilingWins files one Message-ID on two cases (a reused ID, under
// another key): the ID keeps leading to the case it was filed on first.
func testFirstFilingWins(f *fixture) {
	first := f.mail()
	a := f.createCase(first)
	b := f.createCase(f.mail())
	reused := f.mail()
	reused.MessageID = first.MessageID
	f.noErr(f.d.AppendEmail(f.ctx, b.ID, reused), "AppendEmail of a reused Message-ID under a new key")
	got, err := f.d.LookupThread(f.ctx, []string{first.MessageID})
	f.noErr(err, "LookupThread")
	if got.ID != a.ID {
		f.t.Errorf("LookupThread(a Message-ID filed on %q, then on %q) = %q; want %q (the first filing wins)", a.ID, b.ID, got.ID, a.ID)
	}
	if p, err := f.d.LookupProcessed(f.ctx, reused.IdempotencyKey); err != nil || p.CaseID != b.ID {
		f.t.Errorf("LookupProcessed(the reused mail's key) = %+v, %v; want it filed on %q", p, err, b.ID)
	}
}
