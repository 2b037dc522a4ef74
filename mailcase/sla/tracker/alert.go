package tracker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/mailcase/outbox"
)

// Event kinds passed to AlertOptions.OnEvent.
const (
	EventWarning = "sla.warning"
	EventBreach  = "sla.breach"
)

// AlertOptions configures an Alerter. A nil *AlertOptions is equivalent
// to a zero value.
type AlertOptions struct {
	// Interval is the pause between runs of Run; 0 means 5 minutes.
	Interval time.Duration
	// Limit bounds the alerts claimed at once; 0 means 100. A run claims
	// until no alert is due.
	Limit int
	// Lease is how long a claimed alert is held for this alerter before
	// another claim may take it over, unless its notification was queued
	// and the claim confirmed (mailcase.Store.ConfirmSLAAlert) meanwhile;
	// 0 (or negative) means 5 minutes. It should exceed the time a run
	// takes to mail one batch of Limit alerts: an alert still being
	// mailed when its lease ends may be claimed by another worker, whose
	// notification the idempotency key then drops as a duplicate. The
	// lease is measured on Now of the claiming workers, so their clocks
	// must agree to well within it.
	Lease time.Duration
	// QueueOwner returns the address of the owner of a queue, and
	// MailboxOwner that of a mailbox ("" for none: the alert is recorded
	// in the log and not mailed). nil means QueueOwners and MailboxOwners.
	QueueOwner   func(ctx context.Context, queue string) (string, error)
	MailboxOwner func(ctx context.Context, mailbox string) (string, error)
	// QueueOwners and MailboxOwners map names to owner addresses, used
	// when the functions above are nil.
	QueueOwners, MailboxOwners map[string]string
	// OnEvent, if set, is called synchronously for each alert claimed on
	// a case still open, with kind EventWarning or EventBreach and data
	// holding "level", "target", "at", "due_at", "scope", "queue" and
	// "owner" (and "notified" true when the alert was mailed; never the
	// recipient's address). It must not block for long. An alert taken
	// over after a worker died between queueing and confirming it is
	// reported again (its notification is not queued twice).
	OnEvent func(ctx context.Context, kind string, caseID driver.CaseID, data map[string]any)
	// Now is the clock of the claims; nil means time.Now.
	Now func() time.Time
	// Logger receives the alerter's logs; nil means slog.Default().
	Logger *slog.Logger
}

// Alerter mails the service-level alerts that are due: it claims them in
// the store with a lease (AlertOptions.Lease; each alert for one worker at
// a time, in one process or on many machines), queues a notification in
// the outbox, to the owner of the case's queue, or to the owner of the
// mailbox when the case is on no queue (a queue-level alert of a case that
// left every queue is dropped), and then confirms the claim
// (mailcase.Store.ConfirmSLAAlert), which makes it permanent. It never
// alerts for closed or cancelled cases (such an alert is confirmed
// unmailed, and so is one without a recipient).
//
// An alert whose notification could not be queued (a store outage between
// the claim and the queueing, an owner lookup that failed) is logged as an
// error and released (mailcase.Store.ReleaseSLAAlert) at the end of the
// run, so a later run, of this worker or another, claims and mails it
// again; the run itself goes on claiming the other due alerts (the failed
// ones stay claimed by it meanwhile, and it ends before their leases could
// run out or when a claim returns one of them again, so it never tries one
// twice; see RunOnce). A worker that dies between its claim and the confirmation (before or after
// the queueing) does not lose the alert: its lease runs out and the next
// claim after that, of any worker, takes it over. The notification is
// queued under a key made of the case, timer and alert time, so a retry
// after a queueing whose answer was lost, or a takeover after a worker
// died between queueing and confirming, does not mail it twice. It is
// safe for concurrent use.
type Alerter struct {
	store *mailcase.Store
	n     *outbox.Notifier
	o     AlertOptions
	log   *slog.Logger
}

// NewAlerter returns an Alerter claiming alerts in store and queueing
// notifications with n.
func NewAlerter(store *mailcase.Store, n *outbox.Notifier, opts *AlertOptions) (*Alerter, error) {
	if store == nil || n == nil {
		return nil, errors.New("sla: an alerter needs a store and a notifier")
	}
	if !store.CanSLA() {
		return nil, errors.New("sla: the store keeps no service-level timers")
	}
	var o AlertOptions
	if opts != nil {
		o = *opts
	}
	if o.Interval <= 0 {
		o.Interval = 5 * time.Minute
	}
	if o.Limit <= 0 {
		o.Limit = 100
	}
	if o.Lease <= 0 {
		o.Lease = 5 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.QueueOwner == nil {
		m := o.QueueOwners
		o.QueueOwner = func(_ context.Context, q string) (string, error) { return m[q], nil }
	}
	if o.MailboxOwner == nil {
		m := o.MailboxOwners
		o.MailboxOwner = func(_ context.Context, mb string) (string, error) { return m[mb], nil }
	}
	return &Alerter{store: store, n: n, o: o, log: o.Logger.With("component", "sla-alerts")}, nil
}

// RunReport counts what a run did.
type RunReport struct {
	Claimed int `json:"claimed"` // alerts claimed
	Mailed  int `json:"mailed"`  // notifications queued
	Dropped int `json:"dropped"` // claimed but not mailed: no recipient, or the case closed meanwhile
	Retried int `json:"retried"` // not queued (an error): released for the next run
}

// RunOnce claims every alert due now and mails them. It returns the first
// error that stopped it (a failing claim); failures of single alerts are
// logged and counted as retried, and the run goes on with the other due
// alerts; the failed ones are released when the run ends, for the next
// run. Each claim is made at the clock's time then (AlertOptions.Now),
// which the lease is measured from. A run that holds failed alerts ends
// before its claims could take them back: once Lease has passed on that
// clock since the claim of the first one that failed, or when a claim
// returns one of them again (another worker with a clock ahead took it
// over and released it); the due alerts it did not reach are left to the
// next run. The report counts each alert once.
func (a *Alerter) RunOnce(ctx context.Context) (RunReport, error) {
	var r RunReport
	// Failed alerts stay claimed by this run until it ends (or their
	// leases run out), so its later claims skip them (no busy loop on one
	// failing alert), and are released then: a failed release leaves the
	// alert to its lease.
	var failed []driver.SLAAlert
	seen := map[string]int{} // alert key -> index in failed
	var failedAt time.Time   // the claim time of the first failed alert
	defer func() {
		if len(failed) == 0 {
			return
		}
		// The run's own context may be what failed; the releases must
		// still happen.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		for i := range failed {
			al := &failed[i]
			if err := a.store.ReleaseSLAAlert(rctx, al); err != nil {
				a.log.ErrorContext(ctx, "sla: alert could not be released: it is mailed when its claim's lease ends", "case_id", al.CaseID, "alert", string(al.Alert), "err", err)
			}
		}
	}()
	for {
		now := a.o.Now()
		if len(failed) > 0 && !now.Before(failedAt.Add(a.o.Lease)) {
			// The failed alerts' leases may have run out: a claim now
			// could return them to this run again.
			return r, nil
		}
		alerts, err := a.store.ClaimSLAAlerts(ctx, now, a.o.Lease, a.o.Limit)
		if err != nil {
			return r, fmt.Errorf("sla: claiming alerts: %w", err)
		}
		again := false
		for _, al := range alerts {
			k := alertKey(&al)
			if i, ok := seen[k]; ok {
				// Failed in this run already: not tried twice. The new
				// claim is the one to release.
				failed[i] = al
				again = true
				continue
			}
			r.Claimed++
			ok, err := a.alert(ctx, &al, k)
			if err != nil {
				a.log.ErrorContext(ctx, "sla: alert not mailed; released for the next run", "case_id", al.CaseID, "alert", string(al.Alert), "err", err)
				if len(failed) == 0 {
					failedAt = now
				}
				seen[k] = len(failed)
				failed = append(failed, al)
				r.Retried++
				continue
			}
			if ok {
				r.Mailed++
			} else {
				r.Dropped++
			}
			// Queued (or nothing to mail): the claim is made permanent. A
			// failed confirmation leaves the alert to its lease; the
			// takeover's notification has the same key and is dropped.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			if err := a.store.ConfirmSLAAlert(cctx, &al); err != nil {
				a.log.ErrorContext(ctx, "sla: alert claim could not be confirmed: claimed again when its lease ends", "case_id", al.CaseID, "alert", string(al.Alert), "err", err)
			}
			cancel()
		}
		if again || len(alerts) < a.o.Limit {
			return r, nil
		}
	}
}

// alertKey identifies an alert of a case: its timer's level and kind, the
// alert kind and its time. It keys the alert's notification in the outbox
// and, as "alert_id", its event in the log.
func alertKey(al *driver.SLAAlert) string {
	return "sla\x00" + string(al.CaseID) + "\x00" + string(al.Timer.Level) + "\x00" + string(al.Timer.Kind) + "\x00" + string(al.Alert) + "\x00" + strconv.FormatInt(al.At.UnixMicro(), 10)
}

// Run calls RunOnce now and then every Interval until ctx is done; it
// returns nil then. Errors of a run are logged and the next run goes on.
func (a *Alerter) Run(ctx context.Context) error {
	tick := time.NewTicker(a.o.Interval)
	defer tick.Stop()
	for {
		r, err := a.RunOnce(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			a.log.ErrorContext(ctx, "sla: alert run failed", "err", err)
		case r.Claimed > 0:
			a.log.InfoContext(ctx, "sla: alerts", "claimed", r.Claimed, "mailed", r.Mailed, "dropped", r.Dropped, "retried", r.Retried)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

var targetNames = map[driver.SLAKind]string{
	driver.SLAFirstResponse: "first response",
	driver.SLANextResponse:  "next response",
	driver.SLAResolution:    "resolution",
}

// alert mails one claimed alert and reports whether it was queued; an
// error means it should be tried again (no event is emitted then: the
// retry emits it).
func (a *Alerter) alert(ctx context.Context, al *driver.SLAAlert, key string) (bool, error) {
	c, ok, err := a.store.GetCase(ctx, al.CaseID)
	if err != nil {
		return false, err
	}
	if !ok || c.Status.IsClosed() {
		return false, nil // never for closed or cancelled cases
	}
	tm := &al.Timer
	kind := EventWarning
	if al.Alert == driver.SLABreach {
		kind = EventBreach
	}
	data := map[string]any{"level": string(tm.Level), "target": string(tm.Kind), "at": al.At, "due_at": tm.DueAt, "scope": tm.Scope,
		"queue": c.Queue, "owner": c.Owner}
	mailbox, to, err := a.recipient(ctx, c, tm)
	if err != nil {
		return false, err
	}
	if to == "" {
		a.event(ctx, kind, c.ID, data)
		a.log.WarnContext(ctx, "sla: alert has no recipient (no owner configured)", "case_id", c.ID, "alert", string(al.Alert), "queue", c.Queue, "mailbox", mailbox)
		return false, nil
	}
	body := alertText(c, al)
	queued, err := a.n.NotifyCase(ctx, c, &outbox.CaseNotice{Key: key, Mailbox: mailbox, To: to, Body: body})
	if err != nil {
		return false, err
	}
	if queued {
		data["notified"] = true
	}
	a.event(ctx, kind, c.ID, data)
	return queued, nil
}

func (a *Alerter) event(ctx context.Context, kind string, id driver.CaseID, data map[string]any) {
	if a.o.OnEvent != nil {
		a.o.OnEvent(ctx, kind, id, data)
	}
}

// recipient returns the mailbox of the alert and the address it goes to:
// the queue owner when the case is on a queue, the mailbox owner otherwise
// (none for a queue-level alert of a case on no queue).
func (a *Alerter) recipient(ctx context.Context, c mailcase.Case, tm *driver.SLATimer) (mailbox, to string, err error) {
	if tm.Level == driver.SLAMailbox {
		mailbox = tm.Scope
	} else if ts, ok, err := a.store.GetSLATimers(ctx, c.ID); err != nil {
		return "", "", err
	} else if ok {
		for _, t := range ts {
			if t.Level == driver.SLAMailbox {
				mailbox = t.Scope
			}
		}
	}
	switch {
	case c.Queue != "":
		to, err = a.o.QueueOwner(ctx, c.Queue)
	case tm.Level == driver.SLAMailbox:
		to, err = a.o.MailboxOwner(ctx, mailbox)
	}
	if err != nil {
		return mailbox, "", fmt.Errorf("sla: alert recipient: %w", err)
	}
	return mailbox, to, nil
}

// alertText is the body of an alert notification.
func alertText(c mailcase.Case, al *driver.SLAAlert) string {
	tm := &al.Timer
	var b strings.Builder
	what := "Service-level warning"
	if al.Alert == driver.SLABreach {
		what = "Service-level breach"
	}
	fmt.Fprintf(&b, "%s: the %s target (%s level, %s) ", what, targetNames[tm.Kind], tm.Level, oneLine(tm.Scope))
	if al.Alert == driver.SLABreach {
		fmt.Fprintf(&b, "was due at %s and is missed.", tm.DueAt.UTC().Format(time.RFC3339))
	} else {
		fmt.Fprintf(&b, "is due at %s.", tm.DueAt.UTC().Format(time.RFC3339))
	}
	if tm.Calendar != "" {
		fmt.Fprintf(&b, "\nCounted in business hours (calendar %s).", oneLine(tm.Calendar))
	}
	return b.String()
}

// oneLine keeps a configured name on one line.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}
