package tracker_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/mail"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/mailcase/mailcasetest"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
	"github.com/emailcrm/emailcrm/mailcase/outbox"
	"github.com/emailcrm/emailcrm/mailcase/sla"
	"github.com/emailcrm/emailcrm/mailcase/sla/tracker"
)

var week = []string{"09:00-17:00"}

func office(zone string, holidays ...string) sla.CalendarConfig {
	return sla.CalendarConfig{Zone: zone, Holidays: holidays,
		Hours: map[string][]string{"mon": week, "tue": week, "wed": week, "thu": week, "fri": week}}
}

// testConfig: the "support" mailbox answers in 2 hours (warning after 1)
// and resolves in a day, around the clock; "vip" in 30 minutes; the
// "office" mailbox counts Berlin office hours; queue "billing" answers in
// 30 minutes, "escalation" in 2 hours.
func testConfig() sla.Config {
	return sla.Config{
		Calendars: map[string]sla.CalendarConfig{
			"berlin": office("Europe/Berlin", "2026-12-25"), "newyork": office("America/New_York"),
		},
		Policies: map[string]sla.Policy{
			"standard": {FirstResponse: sla.Target{Warn: time.Hour, Due: 2 * time.Hour}, NextResponse: sla.Target{Warn: 30 * time.Minute, Due: time.Hour},
				Resolution: sla.Target{Warn: 20 * time.Hour, Due: 24 * time.Hour}},
			"vip":        {FirstResponse: sla.Target{Warn: 15 * time.Minute, Due: 30 * time.Minute}},
			"fast":       {FirstResponse: sla.Target{Warn: 10 * time.Minute, Due: 30 * time.Minute}},
			"slow":       {FirstResponse: sla.Target{Warn: time.Hour, Due: 2 * time.Hour}},
			"office":     {Calendar: "berlin", FirstResponse: sla.Target{Warn: time.Hour, Due: 4 * time.Hour, Business: true}},
			"office-2h":  {Calendar: "berlin", FirstResponse: sla.Target{Due: 2 * time.Hour, Business: true}},
			"newyork-2h": {Calendar: "newyork", FirstResponse: sla.Target{Due: 2 * time.Hour, Business: true}},
		},
		Mailboxes: map[string]string{"support": "standard", "vip": "vip", "office": "office", "berlin": "office-2h", "newyork": "newyork-2h"},
		Queues:    map[string]string{"billing": "fast", "escalation": "slow"},
	}
}

type rig struct {
	t      *testing.T
	clock  *mailcasetest.Clock
	store  *mailcase.Store
	tr     *tracker.Tracker
	al     *tracker.Alerter
	mu     sync.Mutex
	events []string
	n      int
}

func newRig(t *testing.T, start time.Time) *rig {
	t.Helper()
	r := &rig{t: t, clock: mailcasetest.NewClock(start)}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := memstore.OpenStore(&memstore.Options{Now: r.clock.Now, Logger: quiet})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	r.store = s
	pol, err := sla.Compile(testConfig())
	require.NoError(t, err)
	r.tr, err = tracker.New(s, pol, &tracker.Options{Now: r.clock.Now, Logger: quiet})
	require.NoError(t, err)
	r.al = r.alerter(s)
	return r
}

func (r *rig) alerter(s *mailcase.Store) *tracker.Alerter {
	n, err := outbox.NewNotifier(s, &outbox.NotifyOptions{From: mail.Address{Address: "support@company.example"}, LoopID: "emailcrm test", Now: r.clock.Now})
	require.NoError(r.t, err)
	al, err := tracker.NewAlerter(s, n, &tracker.AlertOptions{Now: r.clock.Now, Limit: 3,
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		QueueOwners:   map[string]string{"billing": "bill@company.example", "escalation": "esc@company.example"},
		MailboxOwners: map[string]string{"support": "lead@company.example", "vip": "vip-lead@company.example", "office": "office@company.example", "berlin": "b@company.example", "newyork": "ny@company.example"},
		OnEvent: func(_ context.Context, kind string, id driver.CaseID, data map[string]any) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.events = append(r.events, kind+" "+string(id)+" "+data["level"].(string)+" "+data["target"].(string))
		}})
	require.NoError(r.t, err)
	return al
}

// newCase creates a case on queue ("" for none) and starts its clocks as
// the pipeline would: received is when the mail server got the mail.
func (r *rig) newCase(mailbox, queue string, received time.Time) mailcase.CaseID {
	r.t.Helper()
	r.n++
	n := strconv.Itoa(r.n)
	c, err := r.store.CreateCase(r.t.Context(), &mailcase.NewCase{Subject: "Printer " + n, Queue: queue, First: &mailcase.Email{
		IdempotencyKey: mailbox + "\x00m" + n, MessageID: "m" + n + "@customer.example", Mailbox: mailbox,
		From: mailcase.Address{Email: "ann@customer.example"}, Subject: "Printer " + n}})
	require.NoError(r.t, err)
	require.NoError(r.t, r.tr.CaseCreated(r.t.Context(), c.ID, mailbox, received, queue))
	return c.ID
}

// run runs the alert process once at the clock's time and returns "kind
// to recipient" of the notifications it queued.
func (r *rig) run() []string {
	r.t.Helper()
	before := r.sentCount()
	_, err := r.al.RunOnce(r.t.Context())
	require.NoError(r.t, err)
	l, err := r.store.ListOutbox(r.t.Context(), &driver.OutboxListOptions{})
	require.NoError(r.t, err)
	var out []string
	for i := len(l) - 1 - before; i >= 0; i-- { // newest first
		kind := "warning"
		if strings.Contains(l[i].Key, "\x00breach\x00") {
			kind = "breach"
		}
		out = append(out, kind+" to "+strings.Join(l[i].To, ","))
	}
	return out
}

func (r *rig) sentCount() int {
	l, err := r.store.ListOutbox(r.t.Context(), &driver.OutboxListOptions{})
	require.NoError(r.t, err)
	return len(l)
}

func (r *rig) at(t time.Time) *rig { r.clock.Set(t); return r }

func (r *rig) timer(id mailcase.CaseID, level driver.SLALevel, kind driver.SLAKind) driver.SLATimer {
	r.t.Helper()
	ts, ok, err := r.store.GetSLATimers(r.t.Context(), id)
	require.NoError(r.t, err)
	require.True(r.t, ok)
	for _, tm := range ts {
		if tm.Level == level && tm.Kind == kind {
			return tm
		}
	}
	r.t.Fatalf("case %s has no %s %s timer: %+v", id, level, kind, ts)
	return driver.SLATimer{}
}

// Monday 2 March 2026, 10:00 UTC.
var monday = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func TestAlerter_WarningThenFinal(t *testing.T) {
	r := newRig(t, monday)
	id := r.newCase("support", "", monday.Add(-5*time.Minute))
	assert.Empty(t, r.at(monday.Add(54*time.Minute)).run(), "before the warning time")
	assert.Equal(t, []string{"warning to lead@company.example"}, r.at(monday.Add(55*time.Minute)).run(),
		"the warning goes to the mailbox owner: the case is on no queue")
	assert.Empty(t, r.run(), "a warning fires once")
	assert.Empty(t, r.at(monday.Add(114*time.Minute)).run())
	assert.Equal(t, []string{"breach to lead@company.example"}, r.at(monday.Add(115*time.Minute)).run())
	assert.Empty(t, r.at(monday.Add(3*time.Hour)).run(), "a breach fires once")
	assert.Equal(t, []string{"sla.warning " + string(id) + " mailbox first_response", "sla.breach " + string(id) + " mailbox first_response"}, r.events)
}

func TestTracker_PausedWhileWaitingOnCustomer(t *testing.T) {
	r := newRig(t, monday)
	ctx := t.Context()
	id := r.newCase("support", "", monday)
	r.at(monday.Add(30 * time.Minute))
	require.NoError(t, r.tr.StatusChanged(ctx, id, sla.StatusWaitingOnCustomer))
	tm := r.timer(id, driver.SLAMailbox, driver.SLAFirstResponse)
	assert.True(t, tm.Paused)
	assert.Equal(t, 30*time.Minute, tm.Elapsed)
	assert.Empty(t, r.at(monday.Add(5*time.Hour)).run(), "no alert while waiting on the customer")
	// The customer answers at 15:00: the clock resumes with 30 minutes used.
	require.NoError(t, r.tr.CustomerMailed(ctx, id, monday.Add(5*time.Hour)))
	tm = r.timer(id, driver.SLAMailbox, driver.SLAFirstResponse)
	assert.False(t, tm.Paused)
	assert.True(t, tm.WarnAt.Equal(monday.Add(5*time.Hour+30*time.Minute)), "WarnAt %s", tm.WarnAt)
	assert.True(t, tm.DueAt.Equal(monday.Add(6*time.Hour+30*time.Minute)), "DueAt %s", tm.DueAt)
	assert.Empty(t, r.at(monday.Add(5*time.Hour+29*time.Minute)).run())
	assert.Equal(t, []string{"warning to lead@company.example"}, r.at(monday.Add(5*time.Hour+30*time.Minute)).run())
	// A status change back to open resumes as well.
	require.NoError(t, r.tr.StatusChanged(ctx, id, sla.StatusWaitingOnCustomer))
	r.at(monday.Add(7 * time.Hour))
	require.NoError(t, r.tr.StatusChanged(ctx, id, mailcase.StatusOpen))
	assert.True(t, r.timer(id, driver.SLAMailbox, driver.SLAFirstResponse).DueAt.Equal(monday.Add(8*time.Hour)))
}

func TestTracker_AgentReplyStopsResponseClocks(t *testing.T) {
	r := newRig(t, monday)
	ctx := t.Context()
	id := r.newCase("support", "", monday)
	require.NoError(t, r.tr.AgentReplied(ctx, id, monday.Add(20*time.Minute)))
	fr := r.timer(id, driver.SLAMailbox, driver.SLAFirstResponse)
	assert.True(t, fr.Stopped)
	assert.Equal(t, 20*time.Minute, fr.Elapsed)
	assert.Empty(t, r.at(monday.Add(3*time.Hour)).run(), "no first-response alert after the reply")
	// The customer writes again: the next-response clock starts.
	require.NoError(t, r.tr.CustomerMailed(ctx, id, monday.Add(3*time.Hour)))
	nr := r.timer(id, driver.SLAMailbox, driver.SLANextResponse)
	assert.True(t, nr.DueAt.Equal(monday.Add(4*time.Hour)))
	// A second customer mail keeps the start of the unanswered one.
	require.NoError(t, r.tr.CustomerMailed(ctx, id, monday.Add(3*time.Hour+10*time.Minute)))
	assert.True(t, r.timer(id, driver.SLAMailbox, driver.SLANextResponse).DueAt.Equal(monday.Add(4*time.Hour)))
	assert.Equal(t, []string{"warning to lead@company.example"}, r.at(monday.Add(3*time.Hour+30*time.Minute)).run())
	require.NoError(t, r.tr.AgentReplied(ctx, id, monday.Add(3*time.Hour+40*time.Minute)))
	assert.Empty(t, r.at(monday.Add(5*time.Hour)).run(), "the reply stopped the next-response clock")
	// The resolution clock still runs.
	assert.False(t, r.timer(id, driver.SLAMailbox, driver.SLAResolution).Stopped)
}

// A reply reported again after the customer wrote back (a repeated
// command reports the reply queued the first time) answers only the
// clocks that ran when it was queued: the new next-response clock runs on.
func TestTracker_RepeatedReplyKeepsLaterClock(t *testing.T) {
	r := newRig(t, monday)
	ctx := t.Context()
	id := r.newCase("support", "", monday)
	replied := monday.Add(20 * time.Minute)
	require.NoError(t, r.tr.AgentReplied(ctx, id, replied))
	require.NoError(t, r.tr.CustomerMailed(ctx, id, monday.Add(3*time.Hour)))
	require.NoError(t, r.tr.AgentReplied(ctx, id, replied))
	nr := r.timer(id, driver.SLAMailbox, driver.SLANextResponse)
	assert.False(t, nr.Stopped, "a reply queued before the customer's mail does not answer it")
	assert.True(t, nr.DueAt.Equal(monday.Add(4*time.Hour)), "DueAt %s", nr.DueAt)
	fr := r.timer(id, driver.SLAMailbox, driver.SLAFirstResponse)
	assert.Equal(t, 20*time.Minute, fr.Elapsed, "the first response stays met at the first report")
	assert.Equal(t, []string{"warning to lead@company.example"}, r.at(monday.Add(3*time.Hour+30*time.Minute)).run())
}

func TestTracker_ReassignRecomputesQueueLevel(t *testing.T) {
	r := newRig(t, monday)
	ctx := t.Context()
	id := r.newCase("support", "billing", monday)
	mb := r.timer(id, driver.SLAMailbox, driver.SLAFirstResponse)
	assert.True(t, mb.Overridden, "billing sets a first-response target: it overrides the mailbox's")
	assert.Equal(t, []string{"warning to bill@company.example"}, r.at(monday.Add(10*time.Minute)).run())

	// Reassigned to escalation at 10:20: queue-level times from then on.
	r.at(monday.Add(20 * time.Minute))
	esc := "escalation"
	_, err := r.store.UpdateCase(ctx, id, &mailcase.CaseUpdate{Queue: &esc})
	require.NoError(t, err)
	require.NoError(t, r.tr.QueueChanged(ctx, id, esc))
	q := r.timer(id, driver.SLAQueue, driver.SLAFirstResponse)
	assert.Equal(t, "escalation", q.Scope)
	assert.True(t, q.StartedAt.Equal(monday.Add(20*time.Minute)))
	assert.True(t, q.WarnAt.Equal(monday.Add(80*time.Minute)))
	kept := r.timer(id, driver.SLAMailbox, driver.SLAFirstResponse)
	assert.True(t, kept.StartedAt.Equal(mb.StartedAt) && kept.DueAt.Equal(mb.DueAt), "the mailbox-level clock is kept")
	assert.Empty(t, r.at(monday.Add(35*time.Minute)).run(), "billing's final time is gone with billing")
	assert.Equal(t, []string{"warning to esc@company.example"}, r.at(monday.Add(80*time.Minute)).run())

	// On no queue, the mailbox-level clock alerts again, to the mailbox owner.
	none := ""
	_, err = r.store.UpdateCase(ctx, id, &mailcase.CaseUpdate{Queue: &none})
	require.NoError(t, err)
	require.NoError(t, r.tr.QueueChanged(ctx, id, ""))
	assert.False(t, r.timer(id, driver.SLAMailbox, driver.SLAFirstResponse).Overridden)
	assert.Equal(t, []string{"warning to lead@company.example", "breach to lead@company.example"}, r.at(monday.Add(2*time.Hour)).run(),
		"the mailbox-level alerts, never claimed while overridden, are due now, earliest first")
}

func TestTracker_MailboxMoveRecomputes(t *testing.T) {
	r := newRig(t, monday)
	ctx := t.Context()
	received := monday.Add(-10 * time.Minute)
	id := r.newCase("support", "", received)
	r.at(monday.Add(time.Minute))
	require.NoError(t, r.tr.MailboxChanged(ctx, id, "vip"))
	tm := r.timer(id, driver.SLAMailbox, driver.SLAFirstResponse)
	assert.Equal(t, "vip", tm.Scope)
	assert.True(t, tm.StartedAt.Equal(received), "recomputed from when the mail was received")
	assert.True(t, tm.WarnAt.Equal(received.Add(15*time.Minute)))
	assert.True(t, tm.DueAt.Equal(received.Add(30*time.Minute)))
	ts, _, err := r.store.GetSLATimers(ctx, id)
	require.NoError(t, err)
	assert.Len(t, ts, 1, "vip sets no resolution target: the support mailbox's is gone")
	assert.Equal(t, []string{"warning to vip-lead@company.example"}, r.at(received.Add(15*time.Minute)).run())
}

func TestAlerter_NeverForClosedOrCancelled(t *testing.T) {
	r := newRig(t, monday)
	ctx := t.Context()
	for _, st := range []mailcase.CaseStatus{mailcase.StatusClosed, mailcase.StatusCancelled} {
		// Told by the tracker: the clocks stop.
		told := r.newCase("support", "billing", monday)
		_, err := r.store.UpdateCase(ctx, told, &mailcase.CaseUpdate{Status: &st})
		require.NoError(t, err)
		require.NoError(t, r.tr.StatusChanged(ctx, told, st))
		assert.True(t, r.timer(told, driver.SLAQueue, driver.SLAFirstResponse).Stopped)
		// Closed behind the tracker's back: the store never hands out its alerts.
		untold := r.newCase("support", "", monday)
		_, err = r.store.UpdateCase(ctx, untold, &mailcase.CaseUpdate{Status: &st})
		require.NoError(t, err)
	}
	assert.Empty(t, r.at(monday.Add(48*time.Hour)).run())
	assert.Empty(t, r.events)
	// A customer mail on a closed case starts nothing.
	c := r.newCase("support", "", monday.Add(48*time.Hour))
	closed := mailcase.StatusClosed
	_, err := r.store.UpdateCase(ctx, c, &mailcase.CaseUpdate{Status: &closed})
	require.NoError(t, err)
	require.NoError(t, r.tr.StatusChanged(ctx, c, closed))
	require.NoError(t, r.tr.CustomerMailed(ctx, c, monday.Add(49*time.Hour)))
	assert.Empty(t, r.at(monday.Add(96*time.Hour)).run())
}

func TestTracker_BusinessHoursAcrossWeekend(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	require.NoError(t, err)
	fri := time.Date(2026, 3, 6, 16, 0, 0, 0, berlin)
	r := newRig(t, fri)
	id := r.newCase("office", "", fri)
	tm := r.timer(id, driver.SLAMailbox, driver.SLAFirstResponse)
	assert.True(t, tm.WarnAt.Equal(time.Date(2026, 3, 6, 17, 0, 0, 0, berlin)), "WarnAt %s", tm.WarnAt.In(berlin))
	assert.True(t, tm.DueAt.Equal(time.Date(2026, 3, 9, 12, 0, 0, 0, berlin)), "DueAt %s", tm.DueAt.In(berlin))
	assert.Equal(t, []string{"warning to office@company.example"}, r.at(time.Date(2026, 3, 6, 17, 0, 0, 0, berlin)).run())
	for _, quiet := range []time.Time{time.Date(2026, 3, 7, 0, 0, 0, 0, berlin), time.Date(2026, 3, 8, 12, 0, 0, 0, berlin), time.Date(2026, 3, 9, 11, 59, 0, 0, berlin)} {
		assert.Empty(t, r.at(quiet).run(), "no alert at %s (midnight, the weekend, before the final time)", quiet)
	}
	assert.Equal(t, []string{"breach to office@company.example"}, r.at(time.Date(2026, 3, 9, 12, 0, 0, 0, berlin)).run())
	// Paused over the weekend in business time: Friday 16:30 to Monday 9:30
	// counts 30 minutes before and 0 after the pause.
	id2 := r.at(fri).newCase("office", "", fri)
	r.at(time.Date(2026, 3, 6, 16, 30, 0, 0, berlin))
	require.NoError(t, r.tr.StatusChanged(t.Context(), id2, sla.StatusWaitingOnCustomer))
	r.at(time.Date(2026, 3, 9, 9, 30, 0, 0, berlin))
	require.NoError(t, r.tr.CustomerMailed(t.Context(), id2, time.Time{}))
	tm = r.timer(id2, driver.SLAMailbox, driver.SLAFirstResponse)
	assert.Equal(t, 30*time.Minute, tm.Elapsed)
	assert.True(t, tm.DueAt.Equal(time.Date(2026, 3, 9, 13, 0, 0, 0, berlin)), "DueAt %s", tm.DueAt.In(berlin))
}

func TestTracker_Holiday(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	require.NoError(t, err)
	thu := time.Date(2026, 12, 24, 15, 0, 0, 0, berlin)
	r := newRig(t, thu)
	id := r.newCase("office", "", thu)
	tm := r.timer(id, driver.SLAMailbox, driver.SLAFirstResponse)
	// Thursday 15-17 counts 2 hours, Christmas Day is a holiday, Monday
	// 9-11 counts the other 2.
	assert.True(t, tm.DueAt.Equal(time.Date(2026, 12, 28, 11, 0, 0, 0, berlin)), "DueAt %s", tm.DueAt.In(berlin))
	assert.Equal(t, []string{"warning to office@company.example"}, r.at(time.Date(2026, 12, 24, 16, 0, 0, 0, berlin)).run())
	assert.Empty(t, r.at(time.Date(2026, 12, 25, 12, 0, 0, 0, berlin)).run(), "nothing on the holiday")
	assert.Empty(t, r.at(time.Date(2026, 12, 28, 10, 59, 0, 0, berlin)).run())
	assert.Equal(t, []string{"breach to office@company.example"}, r.at(time.Date(2026, 12, 28, 11, 0, 0, 0, berlin)).run())
}

// A 2-hour business target started Friday 16:00 is due Monday 10:00 local
// time across both changes of both zones; the breach fires at that instant,
// not an hour early or late.
func TestTracker_DST(t *testing.T) {
	for _, tc := range []struct {
		name, mailbox, zone string
		friday              [3]int
	}{
		{"Berlin spring", "berlin", "Europe/Berlin", [3]int{2026, 3, 27}},
		{"Berlin autumn", "berlin", "Europe/Berlin", [3]int{2026, 10, 23}},
		{"New York spring", "newyork", "America/New_York", [3]int{2026, 3, 6}},
		{"New York autumn", "newyork", "America/New_York", [3]int{2026, 10, 30}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			loc, err := time.LoadLocation(tc.zone)
			require.NoError(t, err)
			y, m, d := tc.friday[0], time.Month(tc.friday[1]), tc.friday[2]
			start := time.Date(y, m, d, 16, 0, 0, 0, loc)
			due := time.Date(y, m, d+3, 10, 0, 0, 0, loc)
			r := newRig(t, start)
			id := r.newCase(tc.mailbox, "", start)
			tm := r.timer(id, driver.SLAMailbox, driver.SLAFirstResponse)
			assert.True(t, tm.DueAt.Equal(due), "DueAt %s, want %s", tm.DueAt.In(loc), due)
			assert.NotEqual(t, start.Add(66*time.Hour), due, "the offset changed over the weekend")
			assert.Empty(t, r.at(due.Add(-time.Minute)).run())
			owner := map[string]string{"berlin": "b@company.example", "newyork": "ny@company.example"}[tc.mailbox]
			assert.Equal(t, []string{"breach to " + owner}, r.at(due).run())
		})
	}
}

func TestAlerter_ConcurrentWorkersMemstore(t *testing.T) {
	r := newRig(t, monday)
	for range 10 {
		r.newCase("support", "billing", monday)
	}
	r.at(monday.Add(3 * time.Hour))
	workers := []*tracker.Alerter{r.al, r.alerter(r.store), r.alerter(r.store)}
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() {
			_, err := w.RunOnce(t.Context())
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	// 10 cases × (queue-level warning and breach) = 20 alerts, each once.
	assert.Len(t, r.events, 20)
	seen := map[string]int{}
	for _, e := range r.events {
		seen[e]++
	}
	assert.Len(t, seen, 20, "the warning and the breach of each case")
	assert.Equal(t, 20, r.sentCount())
}

func TestAlerter_RunStopsOnCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, monday)
		r.newCase("support", "", monday.Add(-3*time.Hour))
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- r.al.Run(ctx) }()
		synctest.Wait() // Run mails the due alerts at once, then waits for the interval
		assert.Equal(t, 2, r.sentCount())
		r.newCase("support", "", monday.Add(-3*time.Hour))
		time.Sleep(5 * time.Minute) // the next run, in the bubble's time
		synctest.Wait()
		assert.Equal(t, 4, r.sentCount())
		cancel()
		require.NoError(t, <-done)
	})
}

// flakyOutbox is the store's own driver whose Enqueue fails while fail
// is positive: the outbox is down between a claim and its queueing.
type flakyOutbox struct {
	driver.CaseStore
	driver.Outbox
	fail atomic.Int32
}

func (f *flakyOutbox) Enqueue(ctx context.Context, m *driver.OutboxMessage) (string, error) {
	if f.fail.Add(-1) >= 0 {
		return "", errors.New("outbox unavailable")
	}
	return f.Outbox.Enqueue(ctx, m)
}

// An alert whose notification could not be queued is released and mailed
// by the next run, once.
func TestAlerter_RetriesWhenQueueingFails(t *testing.T) {
	r := newRig(t, monday)
	id := r.newCase("support", "billing", monday)
	d := r.store.Driver()
	flaky := &flakyOutbox{CaseStore: d, Outbox: d.(driver.Outbox)}
	flaky.fail.Store(1)
	n, err := outbox.NewNotifier(mailcase.NewStore(flaky, &mailcase.StoreOptions{MaxAttempts: -1}),
		&outbox.NotifyOptions{From: mail.Address{Address: "support@company.example"}, LoopID: "emailcrm test", Now: r.clock.Now})
	require.NoError(t, err)
	al, err := tracker.NewAlerter(r.store, n, &tracker.AlertOptions{Now: r.clock.Now, Limit: 3,
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		QueueOwners: map[string]string{"billing": "bill@company.example"}})
	require.NoError(t, err)

	r.at(monday.Add(15 * time.Minute)) // the queue-level first-response warning is due
	rep, err := al.RunOnce(t.Context())
	require.NoError(t, err)
	assert.Equal(t, tracker.RunReport{Claimed: 1, Retried: 1}, rep)
	assert.Zero(t, r.sentCount(), "nothing queued while the outbox is down")
	assert.False(t, r.timer(id, driver.SLAQueue, driver.SLAFirstResponse).Warned, "the failed alert is released")

	rep, err = al.RunOnce(t.Context())
	require.NoError(t, err)
	assert.Equal(t, tracker.RunReport{Claimed: 1, Mailed: 1}, rep, "the next run mails it")
	assert.Equal(t, 1, r.sentCount())
	rep, err = al.RunOnce(t.Context())
	require.NoError(t, err)
	assert.Zero(t, rep.Claimed, "mailed once")
	assert.Equal(t, 1, r.sentCount())
}

// setStatus changes the case's status in the store and tells the tracker,
// as the worklist and the pipeline do.
func (r *rig) setStatus(id mailcase.CaseID, st mailcase.CaseStatus) {
	r.t.Helper()
	_, err := r.store.UpdateCase(r.t.Context(), id, &mailcase.CaseUpdate{Status: &st})
	require.NoError(r.t, err)
	require.NoError(r.t, r.tr.StatusChanged(r.t.Context(), id, st))
}

// A customer's reply reopens a closed case (the pipeline sets it open,
// then the hook reports the customer's mail): resolution counts on from
// what it had counted, the next response is due again, the met first
// response stays met.
func TestTracker_ReopenedByCustomer(t *testing.T) {
	r := newRig(t, monday)
	ctx := t.Context()
	id := r.newCase("support", "", monday)
	require.NoError(t, r.tr.AgentReplied(ctx, id, monday.Add(30*time.Minute)))
	r.at(monday.Add(time.Hour)).setStatus(id, mailcase.StatusClosed)
	res := r.timer(id, driver.SLAMailbox, driver.SLAResolution)
	assert.True(t, res.Stopped && res.Closed, "closing stops resolution: %+v", res)
	assert.Empty(t, r.at(monday.Add(30*time.Hour)).run(), "no alert while closed")

	reopen := monday.Add(30 * time.Hour)
	_, err := r.store.UpdateCase(ctx, id, &mailcase.CaseUpdate{Status: new(mailcase.StatusOpen)})
	require.NoError(t, err)
	require.NoError(t, r.tr.CustomerMailed(ctx, id, reopen))

	res = r.timer(id, driver.SLAMailbox, driver.SLAResolution)
	assert.False(t, res.Stopped, "resolution runs again")
	assert.Equal(t, time.Hour, res.Elapsed, "the hour counted before the closing; the 29 hours closed do not count")
	assert.True(t, res.DueAt.Equal(reopen.Add(23*time.Hour)), "resolution DueAt %s", res.DueAt)
	assert.True(t, res.WarnAt.Equal(reopen.Add(19*time.Hour)), "resolution WarnAt %s", res.WarnAt)
	fr := r.timer(id, driver.SLAMailbox, driver.SLAFirstResponse)
	assert.True(t, fr.Stopped && !fr.Closed && sla.Timer(fr).Met(), "the first response stays met: %+v", fr)
	nr := r.timer(id, driver.SLAMailbox, driver.SLANextResponse)
	assert.True(t, nr.DueAt.Equal(reopen.Add(time.Hour)), "next response due an hour after the customer's mail: %s", nr.DueAt)

	assert.Equal(t, []string{"warning to lead@company.example"}, r.at(reopen.Add(30*time.Minute)).run(), "next-response warning")
	assert.Equal(t, []string{"breach to lead@company.example"}, r.at(reopen.Add(time.Hour)).run(), "next-response breach")
	assert.Equal(t, []string{"warning to lead@company.example"}, r.at(reopen.Add(19*time.Hour)).run(), "resolution warning")
	assert.Equal(t, []string{"breach to lead@company.example"}, r.at(reopen.Add(23*time.Hour)).run(), "resolution breach")
	assert.Empty(t, r.at(reopen.Add(48*time.Hour)).run())
}

// An agent reopens a case closed before anybody answered: the first
// response and resolution count on; no next response is due (nobody
// wrote). An alert that fired before the closing does not fire again.
func TestTracker_ReopenedByAgent(t *testing.T) {
	r := newRig(t, monday)
	id := r.newCase("support", "", monday)
	assert.Equal(t, []string{"warning to lead@company.example"}, r.at(monday.Add(time.Hour)).run(), "first-response warning")
	r.at(monday.Add(90*time.Minute)).setStatus(id, mailcase.StatusClosed)
	reopen := monday.Add(10 * time.Hour)
	r.at(reopen).setStatus(id, mailcase.StatusInProgress)

	fr := r.timer(id, driver.SLAMailbox, driver.SLAFirstResponse)
	assert.False(t, fr.Stopped)
	assert.Equal(t, 90*time.Minute, fr.Elapsed)
	assert.True(t, fr.DueAt.Equal(reopen.Add(30*time.Minute)), "first response DueAt %s", fr.DueAt)
	assert.True(t, fr.Warned, "the warning fired before the closing")
	assert.Equal(t, 90*time.Minute, r.timer(id, driver.SLAMailbox, driver.SLAResolution).Elapsed)
	ts, _, err := r.store.GetSLATimers(t.Context(), id)
	require.NoError(t, err)
	for _, tm := range ts {
		assert.NotEqual(t, driver.SLANextResponse, tm.Kind, "no next response without a customer mail")
	}
	assert.Equal(t, []string{"breach to lead@company.example"}, r.at(reopen.Add(30*time.Minute)).run(), "only the breach: the warning fired once")
	// Reopened into waiting on the customer: the clocks stay paused.
	r.at(reopen.Add(time.Hour)).setStatus(id, mailcase.StatusClosed)
	r.at(reopen.Add(2*time.Hour)).setStatus(id, mailcase.StatusWaiting)
	res := r.timer(id, driver.SLAMailbox, driver.SLAResolution)
	assert.True(t, res.Paused && !res.Stopped, "reopened to waiting: paused, %+v", res)
	assert.Equal(t, 150*time.Minute, res.Elapsed)
}

// dyingWorker is a store's driver for an alert worker that dies right
// after a claim (the claim is committed, the worker never queues, confirms
// or releases), or, with confirmFails, right after queueing (the
// confirmation never arrives).
type dyingWorker struct {
	driver.CaseStore
	driver.SLAStore
	confirmFails bool
	claimed      atomic.Int32
}

func (d *dyingWorker) ClaimSLAAlerts(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]driver.SLAAlert, error) {
	got, err := d.SLAStore.ClaimSLAAlerts(ctx, now, lease, limit)
	if err != nil || d.confirmFails {
		return got, err
	}
	d.claimed.Add(int32(len(got)))
	return nil, errors.New("worker died after its claim")
}

func (d *dyingWorker) ConfirmSLAAlert(ctx context.Context, a *driver.SLAAlert) error {
	if d.confirmFails {
		return errors.New("worker died before confirming")
	}
	return d.SLAStore.ConfirmSLAAlert(ctx, a)
}

func (r *rig) dyingAlerter(confirmFails bool, lease time.Duration) (*tracker.Alerter, *dyingWorker) {
	r.t.Helper()
	d := r.store.Driver()
	w := &dyingWorker{CaseStore: d, SLAStore: d.(driver.SLAStore), confirmFails: confirmFails}
	n, err := outbox.NewNotifier(r.store, &outbox.NotifyOptions{From: mail.Address{Address: "support@company.example"}, LoopID: "emailcrm test", Now: r.clock.Now})
	require.NoError(r.t, err)
	al, err := tracker.NewAlerter(mailcase.NewStore(w, &mailcase.StoreOptions{MaxAttempts: -1}), n, &tracker.AlertOptions{Now: r.clock.Now, Limit: 3, Lease: lease,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), QueueOwners: map[string]string{"billing": "bill@company.example"}})
	require.NoError(r.t, err)
	return al, w
}

// A worker dies between its claim and the queueing: the alerts are not
// lost. Before the lease ends no worker mails them; after it, another
// worker mails each once.
func TestAlerter_WorkerDiesAfterClaim(t *testing.T) {
	r := newRig(t, monday)
	id := r.newCase("support", "billing", monday)
	const lease = 10 * time.Minute
	dying, w := r.dyingAlerter(false, lease)
	r.at(monday.Add(3 * time.Hour)) // the queue-level first response's warning and breach
	_, err := dying.RunOnce(t.Context())
	require.Error(t, err, "the worker died")
	require.EqualValues(t, 2, w.claimed.Load(), "its claim took every due alert")
	assert.Empty(t, r.run(), "the alerts are claimed by the dead worker until its lease ends")
	assert.Empty(t, r.at(monday.Add(3*time.Hour+lease-time.Second)).run(), "nothing is mailed before the lease ends")

	r.at(monday.Add(3*time.Hour + lease))
	sent := r.run()
	assert.ElementsMatch(t, []string{"warning to bill@company.example", "breach to bill@company.example"}, sent,
		"the next worker mails every alert the dead one claimed")
	assert.Len(t, r.events, 2)
	tm := r.timer(id, driver.SLAQueue, driver.SLAFirstResponse)
	assert.True(t, tm.Warned && tm.Breached && tm.WarnLease.IsZero() && tm.BreachLease.IsZero(), "the claims are confirmed: %+v", tm)
	// Confirmed: no later run, long after any lease, mails them again.
	assert.Empty(t, r.at(monday.Add(5*time.Hour)).run())
	assert.Equal(t, 2, r.sentCount())
	assert.Len(t, r.events, 2)
}

// A worker dies after queueing the notification and before confirming:
// the alert is taken over after the lease, and its notification, queued
// under the same key, is not mailed twice.
func TestAlerter_WorkerDiesBeforeConfirming(t *testing.T) {
	r := newRig(t, monday)
	id := r.newCase("support", "billing", monday)
	const lease = 10 * time.Minute
	dying, _ := r.dyingAlerter(true, lease)
	r.at(monday.Add(15 * time.Minute)) // the queue-level first-response warning
	rep, err := dying.RunOnce(t.Context())
	require.NoError(t, err)
	assert.Equal(t, tracker.RunReport{Claimed: 1, Mailed: 1}, rep)
	assert.Equal(t, 1, r.sentCount())
	assert.False(t, r.timer(id, driver.SLAQueue, driver.SLAFirstResponse).WarnLease.IsZero(), "the claim is still leased")

	r.at(monday.Add(15*time.Minute + lease))
	rep, err = r.al.RunOnce(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 1, rep.Claimed, "the unconfirmed claim is taken over")
	assert.Equal(t, 1, r.sentCount(), "the notification is not queued twice")
	assert.True(t, r.timer(id, driver.SLAQueue, driver.SLAFirstResponse).WarnLease.IsZero(), "the takeover confirmed it")
}

// Alerts that keep failing do not starve the others: a run goes on past
// them (claiming each once per run) and releases them when it ends.
func TestAlerter_FailingAlertsDoNotStarveOthers(t *testing.T) {
	r := newRig(t, monday)
	failing := r.newCase("support", "billing", monday) // queue-level alerts at 10 and 30 minutes
	r.newCase("support", "escalation", monday)         // queue-level alerts at 1 and 2 hours
	n, err := outbox.NewNotifier(r.store, &outbox.NotifyOptions{From: mail.Address{Address: "support@company.example"}, LoopID: "emailcrm test", Now: r.clock.Now})
	require.NoError(t, err)
	al, err := tracker.NewAlerter(r.store, n, &tracker.AlertOptions{Now: r.clock.Now, Limit: 1,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		QueueOwner: func(_ context.Context, q string) (string, error) {
			if q == "billing" {
				return "", errors.New("directory unavailable")
			}
			return "esc@company.example", nil
		}})
	require.NoError(t, err)
	r.at(monday.Add(3 * time.Hour))
	rep, err := al.RunOnce(t.Context())
	require.NoError(t, err)
	assert.Equal(t, tracker.RunReport{Claimed: 4, Mailed: 2, Retried: 2}, rep, "the failing case's 2 alerts (the earliest) do not stop the other case's 2")
	assert.Equal(t, 2, r.sentCount())
	tm := r.timer(failing, driver.SLAQueue, driver.SLAFirstResponse)
	assert.False(t, tm.Warned || tm.Breached, "the failed alerts are released when the run ends: %+v", tm)

	rep, err = al.RunOnce(t.Context())
	require.NoError(t, err)
	assert.Equal(t, tracker.RunReport{Claimed: 2, Retried: 2}, rep, "the next run tries the failed ones again, once each")
	assert.Equal(t, 2, r.sentCount())
}

// A run whose alerts keep failing and whose owner lookups take longer than
// the lease never claims its own failed alerts again: it ends before their
// leases could run out on its clock, releases them, and the next run tries
// them again.
func TestAlerter_RunLongerThanLeaseEnds(t *testing.T) {
	r := newRig(t, monday)
	id := r.newCase("support", "billing", monday) // queue-level warning and breach due at 3h
	n, err := outbox.NewNotifier(r.store, &outbox.NotifyOptions{From: mail.Address{Address: "support@company.example"}, LoopID: "emailcrm test", Now: r.clock.Now})
	require.NoError(t, err)
	var lookups atomic.Int32
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	al, err := tracker.NewAlerter(r.store, n, &tracker.AlertOptions{Now: r.clock.Now, Limit: 1, Lease: time.Minute,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		QueueOwner: func(_ context.Context, q string) (string, error) {
			r.clock.Advance(2 * time.Minute) // the lookup takes 2 minutes, then fails
			if lookups.Add(1) > 20 {
				cancel() // bound the test when the run does not end
			}
			return "", errors.New("directory timed out")
		}})
	require.NoError(t, err)
	r.at(monday.Add(3 * time.Hour))
	rep, err := al.RunOnce(ctx)
	require.NoError(t, err, "the run ends by itself")
	assert.EqualValues(t, 1, lookups.Load(), "the run stops claiming once the lease of its failed alert could have run out")
	assert.Equal(t, tracker.RunReport{Claimed: 1, Retried: 1}, rep)
	tm := r.timer(id, driver.SLAQueue, driver.SLAFirstResponse)
	assert.False(t, tm.Warned || tm.Breached, "the failed alert is released when the run ends: %+v", tm)

	rep, err = al.RunOnce(ctx)
	require.NoError(t, err)
	assert.Equal(t, tracker.RunReport{Claimed: 1, Retried: 1}, rep, "the next run tries it again, once")
	assert.EqualValues(t, 2, lookups.Load())
}

// A worker whose clock is ahead takes over a failed alert of a run still
// going, fails too and releases it: the run's next claim returns the alert
// again, and the run ends instead of trying it twice.
func TestAlerter_RunEndsWhenAFailedAlertComesBack(t *testing.T) {
	r := newRig(t, monday)
	r.newCase("support", "billing", monday)
	n, err := outbox.NewNotifier(r.store, &outbox.NotifyOptions{From: mail.Address{Address: "support@company.example"}, LoopID: "emailcrm test", Now: r.clock.Now})
	require.NoError(t, err)
	const lease = 10 * time.Minute
	var lookups atomic.Int32
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	al, err := tracker.NewAlerter(r.store, n, &tracker.AlertOptions{Now: r.clock.Now, Limit: 1, Lease: lease,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		QueueOwner: func(ctx context.Context, q string) (string, error) {
			if lookups.Add(1) > 20 {
				cancel() // bound the test when the run does not end
			}
			// The other worker, its clock a lease ahead, takes the alert
			// over and releases it.
			got, err := r.store.ClaimSLAAlerts(ctx, r.clock.Now().Add(lease), lease, 1)
			require.NoError(t, err)
			require.Len(t, got, 1)
			require.NoError(t, r.store.ReleaseSLAAlert(ctx, &got[0]))
			return "", errors.New("directory timed out")
		}})
	require.NoError(t, err)
	r.at(monday.Add(3 * time.Hour))
	rep, err := al.RunOnce(ctx)
	require.NoError(t, err, "the run ends by itself")
	assert.EqualValues(t, 1, lookups.Load(), "the failed alert is not tried twice in one run")
	assert.Equal(t, tracker.RunReport{Claimed: 1, Retried: 1}, rep)
	got, err := r.store.ClaimSLAAlerts(t.Context(), r.clock.Now(), lease, 10)
	require.NoError(t, err)
	assert.Len(t, got, 2, "the run released the alert it claimed again: both alerts are claimable at once")
}
