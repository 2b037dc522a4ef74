package sqlstore_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/mail"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/sqlstore"
	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/mailcase/mailcasetest"
	"github.com/emailcrm/emailcrm/mailcase/outbox"
	"github.com/emailcrm/emailcrm/mailcase/sla"
	"github.com/emailcrm/emailcrm/mailcase/sla/tracker"
)

// flakyOutbox is a store's driver whose Enqueue fails while fail is
// positive: the outbox is down between a claim and its queueing.
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

// diesAfterClaim is a store's driver of a worker that dies right after
// its claim committed: it never queues, confirms or releases.
type diesAfterClaim struct {
	driver.CaseStore
	driver.SLAStore
}

func (d diesAfterClaim) ClaimSLAAlerts(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]driver.SLAAlert, error) {
	if _, err := d.SLAStore.ClaimSLAAlerts(ctx, now, lease, limit); err != nil {
		return nil, err
	}
	return nil, errors.New("worker died after its claim")
}

// Three alert workers, each with its own pool on one database (as on
// three machines), run at once: every alert fires exactly once, and the
// outbox holds one notification per alert. With a flaky outbox, the
// first worker fails to queue its first notifications: they are released
// and mailed by a later run, still once each. With a dying worker, a
// fourth worker claims a batch and dies: the others mail that batch once
// its lease ends, still once each.
func TestSLA_ThreeAlertWorkers(t *testing.T) {
	for _, mode := range []string{"", "flaky", "dying"} {
		for _, d := range dialects {
			name := d.name
			if mode != "" {
				name += "/" + mode
			}
			t.Run(name, func(t *testing.T) { threeAlertWorkers(t, d.url(t), mode) })
		}
	}
}

func threeAlertWorkers(t *testing.T, u string, mode string) {
	flaky := mode == "flaky"
	ctx := t.Context()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	start := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	clock := mailcasetest.NewClock(start)
	pol, err := sla.Compile(sla.Config{
		Policies: map[string]sla.Policy{
			"mb": {FirstResponse: sla.Target{Warn: time.Hour, Due: 2 * time.Hour}},
			"q":  {Resolution: sla.Target{Warn: 30 * time.Minute, Due: time.Hour}},
		},
		Mailboxes: map[string]string{"support": "mb"},
		Queues:    map[string]string{"general": "q"},
	})
	require.NoError(t, err)
	stores := []*mailcase.Store{openURL(t, u, nil), openURL(t, u, nil), openURL(t, u, nil)}
	tr, err := tracker.New(stores[0], pol, &tracker.Options{Now: clock.Now, Logger: quiet})
	require.NoError(t, err)
	const cases = 15
	for i := range cases {
		n := strconv.Itoa(i)
		c, err := stores[0].CreateCase(ctx, &mailcase.NewCase{Subject: "Case " + n, Queue: "general", First: &mailcase.Email{
			IdempotencyKey: "support\x00m" + n, MessageID: "m" + n + "@customer.example", Mailbox: "support",
			From: mailcase.Address{Email: "ann@customer.example"}, Subject: "Case " + n}})
		require.NoError(t, err)
		require.NoError(t, tr.CaseCreated(ctx, c.ID, "support", start, "general"))
	}
	var mu sync.Mutex
	fired := map[string]int{}
	var workers []*tracker.Alerter
	for i, s := range stores {
		queueIn := s
		if flaky && i == 0 {
			f := &flakyOutbox{CaseStore: s.Driver(), Outbox: s.Driver().(driver.Outbox)}
			f.fail.Store(3)
			queueIn = mailcase.NewStore(f, &mailcase.StoreOptions{MaxAttempts: -1})
		}
		n, err := outbox.NewNotifier(queueIn, &outbox.NotifyOptions{From: mail.Address{Address: "support@company.example"}, LoopID: "emailcrm test"})
		require.NoError(t, err)
		al, err := tracker.NewAlerter(s, n, &tracker.AlertOptions{Now: clock.Now, Limit: 4, Logger: quiet,
			QueueOwners: map[string]string{"general": "owner@company.example"},
			OnEvent: func(_ context.Context, kind string, id driver.CaseID, data map[string]any) {
				mu.Lock()
				defer mu.Unlock()
				fired[kind+" "+string(id)+" "+data["level"].(string)+" "+data["target"].(string)]++
			}})
		require.NoError(t, err)
		workers = append(workers, al)
	}
	clock.Set(start.Add(3 * time.Hour))
	if flaky {
		// The first worker's outbox fails its first 3 notifications: they
		// are released when its run ends, which mails all the others.
		r, err := workers[0].RunOnce(ctx)
		require.NoError(t, err)
		assert.Equal(t, tracker.RunReport{Claimed: cases * 4, Mailed: cases*4 - 3, Retried: 3}, r)
	}
	const lease = 10 * time.Minute
	if mode == "dying" {
		s := openURL(t, u, nil)
		d := diesAfterClaim{CaseStore: s.Driver(), SLAStore: s.Driver().(driver.SLAStore)}
		n, err := outbox.NewNotifier(s, &outbox.NotifyOptions{From: mail.Address{Address: "support@company.example"}, LoopID: "emailcrm test"})
		require.NoError(t, err)
		dying, err := tracker.NewAlerter(mailcase.NewStore(d, &mailcase.StoreOptions{MaxAttempts: -1}), n,
			&tracker.AlertOptions{Now: clock.Now, Limit: 4, Lease: lease, Logger: quiet})
		require.NoError(t, err)
		_, err = dying.RunOnce(ctx)
		require.Error(t, err, "the worker died after its claim")
	}
	rounds := func() {
		t.Helper()
		var retried atomic.Int32
		for round := 0; round < 10 && (round == 0 || retried.Load() > 0); round++ {
			retried.Store(0)
			var wg sync.WaitGroup
			for _, w := range workers {
				wg.Go(func() {
					r, err := w.RunOnce(ctx)
					assert.NoError(t, err)
					retried.Add(int32(r.Retried))
				})
			}
			wg.Wait()
		}
	}
	rounds()
	if mode == "dying" {
		mu.Lock()
		assert.Len(t, fired, cases*4-4, "the dead worker's 4 alerts wait for its lease")
		mu.Unlock()
		clock.Set(start.Add(3*time.Hour + lease))
		rounds()
	}
	// Per case: the mailbox-level first-response warning and breach,
	// the queue-level resolution warning and breach.
	assert.Len(t, fired, cases*4)
	for k, n := range fired {
		assert.Equal(t, 1, n, "alert %s fired %d times", k, n)
	}
	sent, err := stores[0].ListOutbox(ctx, &driver.OutboxListOptions{Kind: outbox.KindNotification})
	require.NoError(t, err)
	assert.Len(t, sent, cases*4)
	for _, m := range sent {
		assert.Equal(t, []string{"owner@company.example"}, m.To, "the queue owner gets every alert of a case on a queue")
	}
	// Nothing is left to claim.
	for _, w := range workers {
		r, err := w.RunOnce(ctx)
		require.NoError(t, err)
		assert.Zero(t, r.Claimed)
	}
}

// A timer started again (same alert time, another start) between a claim's
// read of its candidates and its update is not claimed with the old start:
// the claim that returned it could neither confirm nor release it, and it
// would be taken over after the lease and reported twice. SQLite is left
// out: its one writer runs the claim and the restart one after the other.
func TestSLA_ClaimSkipsTimerRestartedMeanwhile(t *testing.T) {
	for _, d := range dialects {
		if d.name == "sqlite" {
			continue
		}
		t.Run(d.name, func(t *testing.T) {
			ctx := t.Context()
			u := d.url(t)
			claimer, other := openURL(t, u, nil), openURL(t, u, nil)
			now := time.Now().UTC().Truncate(time.Microsecond)
			c, err := claimer.CreateCase(ctx, &mailcase.NewCase{Subject: "Restarted", First: &mailcase.Email{
				IdempotencyKey: "restart\x00" + now.String(), MessageID: strconv.FormatInt(now.UnixNano(), 10) + "@customer.example",
				Mailbox: "support", From: mailcase.Address{Email: "ann@customer.example"}, Subject: "Restarted"}})
			require.NoError(t, err)
			warnAt := now.Add(-time.Minute)
			tm := driver.SLATimer{Level: driver.SLAQueue, Kind: driver.SLAFirstResponse, Scope: "general", Policy: "q",
				Warn: time.Hour, Due: 2 * time.Hour, StartedAt: warnAt.Add(-time.Hour), RunningSince: warnAt.Add(-time.Hour),
				WarnAt: warnAt, DueAt: warnAt.Add(time.Hour)}
			require.NoError(t, claimer.PutSLATimers(ctx, c.ID, []driver.SLATimer{tm}))
			restarted := tm
			restarted.StartedAt, restarted.RunningSince = tm.StartedAt.Add(-time.Minute), tm.StartedAt.Add(-time.Minute)
			restarted.Elapsed = time.Minute // the same alert times
			var once sync.Once
			sqlstore.SetSLAClaimHook(claimer, func() {
				once.Do(func() { assert.NoError(t, other.PutSLATimers(ctx, c.ID, []driver.SLATimer{restarted})) })
			})
			own := func(as []driver.SLAAlert) []driver.SLAAlert {
				var out []driver.SLAAlert
				for _, a := range as {
					if a.CaseID == c.ID {
						out = append(out, a)
					}
				}
				return out
			}
			const lease = 10 * time.Minute
			got, err := claimer.ClaimSLAAlerts(ctx, now, lease, 100)
			require.NoError(t, err)
			assert.Empty(t, own(got), "the timer restarted between the read and the update is not claimed with its old start")
			got, err = claimer.ClaimSLAAlerts(ctx, now, lease, 100)
			require.NoError(t, err)
			got = own(got)
			require.Len(t, got, 1, "the next claim takes the restarted timer's warning")
			assert.True(t, got[0].Timer.StartedAt.Equal(restarted.StartedAt), "claimed with the start stored: %v, want %v", got[0].Timer.StartedAt, restarted.StartedAt)
			require.NoError(t, claimer.ConfirmSLAAlert(ctx, &got[0]))
			ts, _, err := claimer.GetSLATimers(ctx, c.ID)
			require.NoError(t, err)
			require.Len(t, ts, 1)
			assert.True(t, ts[0].Warned && ts[0].WarnLease.IsZero(), "the claim is confirmed: %+v", ts[0])
		})
	}
}
