package drivertest

import (
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// The service-level tests share a database with other subtests, so claims
// may return alerts of other cases: every check looks only at the alerts
// of the cases this subtest created.

func (f *fixture) slaStore() driver.SLAStore { return f.d.(driver.SLAStore) }

// slaNow is a time with microsecond precision, what every store keeps.
func slaNow() time.Time { return time.Now().Truncate(time.Microsecond) }

// slaTimer returns a running timer of level and kind with its alerts at
// warn and due.
func slaTimer(level driver.SLALevel, kind driver.SLAKind, start, warn, due time.Time) driver.SLATimer {
	return driver.SLATimer{Level: level, Kind: kind, Scope: "scope-'; DROP TABLE cases; --", Policy: "gold", Calendar: "office",
		Warn: warn.Sub(start), Due: due.Sub(start), StartedAt: start, RunningSince: start, Elapsed: 90 * time.Second,
		WarnAt: warn, DueAt: due}
}

// timerDiff describes how got differs from want ("" when equal).
func timerDiff(got, want driver.SLATimer) string {
	times := []struct {
		name string
		g, w time.Time
	}{{"StartedAt", got.StartedAt, want.StartedAt}, {"RunningSince", got.RunningSince, want.RunningSince},
		{"WarnAt", got.WarnAt, want.WarnAt}, {"DueAt", got.DueAt, want.DueAt}}
	for _, t := range times {
		if !t.g.Equal(t.w) {
			return fmt.Sprintf("%s = %v, want %v", t.name, t.g, t.w)
		}
	}
	got.StartedAt, got.RunningSince, got.WarnAt, got.DueAt = want.StartedAt, want.RunningSince, want.WarnAt, want.DueAt
	if got != want {
		return fmt.Sprintf("got %+v, want %+v", got, want)
	}
	return ""
}

func testSLATimers(f *fixture) {
	st := f.slaStore()
	c := f.createCase(f.mail())
	got, err := st.GetSLATimers(f.ctx, c.ID)
	f.noErr(err, "GetSLATimers of a new case")
	if len(got) != 0 {
		f.t.Fatalf("a new case has %d timers, want none", len(got))
	}
	now := slaNow()
	q := slaTimer(driver.SLAQueue, driver.SLAResolution, now, now.Add(time.Hour), now.Add(2*time.Hour))
	m := slaTimer(driver.SLAMailbox, driver.SLAFirstResponse, now.Add(-time.Minute), time.Time{}, now.Add(time.Hour))
	m.Warn = 0
	p := slaTimer(driver.SLAMailbox, driver.SLAResolution, now, time.Time{}, time.Time{})
	p.Warn, p.Due, p.Paused, p.RunningSince, p.Warned, p.Overridden = 0, 8*time.Hour, true, time.Time{}, true, true
	m.Stopped, m.Closed, m.RunningSince, m.WarnAt, m.DueAt = true, true, time.Time{}, time.Time{}, time.Time{}
	f.noErr(st.PutSLATimers(f.ctx, c.ID, []driver.SLATimer{q, p, m}), "PutSLATimers")
	got, err = st.GetSLATimers(f.ctx, c.ID)
	f.noErr(err, "GetSLATimers")
	want := []driver.SLATimer{m, p, q} // by level, then kind
	if len(got) != len(want) {
		f.t.Fatalf("GetSLATimers returned %d timers, want %d", len(got), len(want))
	}
	for i := range want {
		if d := timerDiff(got[i], want[i]); d != "" {
			f.t.Errorf("timer %d (%s %s): %s", i, want[i].Level, want[i].Kind, d)
		}
	}
	// Replacing drops the timers not given.
	f.noErr(st.PutSLATimers(f.ctx, c.ID, []driver.SLATimer{q}), "PutSLATimers (replace)")
	got, err = st.GetSLATimers(f.ctx, c.ID)
	f.noErr(err, "GetSLATimers")
	if len(got) != 1 || timerDiff(got[0], q) != "" {
		f.t.Errorf("after replacing, GetSLATimers = %+v, want only %+v", got, q)
	}
	f.noErr(st.PutSLATimers(f.ctx, c.ID, nil), "PutSLATimers (none)")
	if got, err = st.GetSLATimers(f.ctx, c.ID); err != nil || len(got) != 0 {
		f.t.Errorf("after removing all, GetSLATimers = %d timers, %v; want none", len(got), err)
	}
	_, err = st.GetSLATimers(f.ctx, "missing-"+driver.CaseID(f.tag))
	f.wantDriverCode(err, driver.NotFound, "GetSLATimers of a missing case")
	err = st.PutSLATimers(f.ctx, "missing-"+driver.CaseID(f.tag), []driver.SLATimer{q})
	f.wantDriverCode(err, driver.NotFound, "PutSLATimers of a missing case")
}

// claimOwnSLA claims everything due at now permanently (lease 0) and
// returns the alerts of the given cases, in the order returned.
func (f *fixture) claimOwnSLA(now time.Time, own map[driver.CaseID]bool) []driver.SLAAlert {
	f.t.Helper()
	return f.claimOwnSLALease(now, 0, own)
}

// claimOwnSLALease claims everything due at now with lease and returns
// the alerts of the given cases, in the order returned.
func (f *fixture) claimOwnSLALease(now time.Time, lease time.Duration, own map[driver.CaseID]bool) []driver.SLAAlert {
	f.t.Helper()
	var out []driver.SLAAlert
	for range 1000 {
		got, err := f.slaStore().ClaimSLAAlerts(f.ctx, now, lease, 50)
		f.noErr(err, "ClaimSLAAlerts")
		for _, a := range got {
			if own[a.CaseID] {
				out = append(out, a)
			}
		}
		if len(got) < 50 {
			break
		}
	}
	return out
}

func testSLAClaim(f *fixture) {
	st := f.slaStore()
	now := slaNow()
	open := f.createCase(f.mail())
	closed := f.createCase(f.mail())
	cancelled := f.createCase(f.mail())
	own := map[driver.CaseID]bool{open.ID: true, closed.ID: true, cancelled.ID: true}
	for _, s := range []struct {
		id driver.CaseID
		st driver.CaseStatus
	}{{closed.ID, driver.StatusClosed}, {cancelled.ID, driver.StatusCancelled}} {
		_, err := f.d.UpdateCase(f.ctx, s.id, &driver.CaseUpdate{Status: &s.st})
		f.noErr(err, "UpdateCase")
	}
	live := slaTimer(driver.SLAQueue, driver.SLAFirstResponse, now.Add(-2*time.Hour), now.Add(-time.Hour), now.Add(time.Hour))
	paused := slaTimer(driver.SLAQueue, driver.SLAResolution, now.Add(-2*time.Hour), now.Add(-time.Hour), now.Add(-time.Minute))
	paused.Paused = true
	stopped := slaTimer(driver.SLAMailbox, driver.SLAFirstResponse, now.Add(-2*time.Hour), now.Add(-time.Hour), now.Add(-time.Minute))
	stopped.Stopped = true
	over := slaTimer(driver.SLAMailbox, driver.SLAResolution, now.Add(-2*time.Hour), now.Add(-time.Hour), now.Add(-time.Minute))
	over.Overridden = true
	f.noErr(st.PutSLATimers(f.ctx, open.ID, []driver.SLATimer{live, paused, stopped, over}), "PutSLATimers")
	late := slaTimer(driver.SLAQueue, driver.SLAResolution, now.Add(-2*time.Hour), now.Add(-time.Hour), now.Add(-time.Minute))
	for _, id := range []driver.CaseID{closed.ID, cancelled.ID} {
		f.noErr(st.PutSLATimers(f.ctx, id, []driver.SLATimer{late}), "PutSLATimers")
	}

	got := f.claimOwnSLA(now, own)
	if len(got) != 1 || got[0].CaseID != open.ID || got[0].Alert != driver.SLAWarning || got[0].Timer.Kind != driver.SLAFirstResponse {
		f.t.Fatalf("ClaimSLAAlerts = %+v, want only the warning of the running timer (none of paused, stopped, overridden timers or closed and cancelled cases)", got)
	}
	if !got[0].At.Equal(live.WarnAt) || !got[0].Timer.Warned {
		f.t.Errorf("claimed alert At = %v (want %v), Timer.Warned = %v (want true)", got[0].At, live.WarnAt, got[0].Timer.Warned)
	}
	if again := f.claimOwnSLA(now, own); len(again) != 0 {
		f.t.Errorf("a second claim returned %+v: an alert would fire twice", again)
	}
	timers, err := st.GetSLATimers(f.ctx, open.ID)
	f.noErr(err, "GetSLATimers")
	if len(timers) != 4 || !timers[2].Warned || timers[2].Breached {
		f.t.Errorf("after the claim the timers are %+v, want the queue first-response timer Warned and not Breached", timers)
	}

	// A caller that read the timers before the claim writes them back
	// with Warned false: the claimed warning stays claimed.
	f.noErr(st.PutSLATimers(f.ctx, open.ID, []driver.SLATimer{live}), "PutSLATimers (stale copy)")
	if again := f.claimOwnSLA(now, own); len(again) != 0 {
		f.t.Errorf("after writing back a copy read before the claim, ClaimSLAAlerts = %+v: the warning would fire twice", again)
	}
	// A pause written from a copy read before the claim (WarnAt and DueAt
	// cleared, Warned false), then the resume that sets the times again
	// (the warning moved by the paused minute): still claimed once.
	p := live
	p.Paused, p.RunningSince, p.WarnAt, p.DueAt = true, time.Time{}, time.Time{}, time.Time{}
	f.noErr(st.PutSLATimers(f.ctx, open.ID, []driver.SLATimer{p}), "PutSLATimers (paused, stale)")
	resumed := live
	resumed.WarnAt = live.WarnAt.Add(time.Minute)
	f.noErr(st.PutSLATimers(f.ctx, open.ID, []driver.SLATimer{resumed}), "PutSLATimers (resumed)")
	if again := f.claimOwnSLA(now, own); len(again) != 0 {
		f.t.Errorf("after a stale pause and a resume, ClaimSLAAlerts = %+v: the warning would fire twice", again)
	}
	// The final time passes: the breach is due once.
	later := now.Add(2 * time.Hour)
	got = f.claimOwnSLA(later, own)
	if len(got) != 1 || got[0].Alert != driver.SLABreach || !got[0].At.Equal(live.DueAt) || !got[0].Timer.Breached {
		f.t.Fatalf("after the final time, ClaimSLAAlerts = %+v, want the breach", got)
	}
	if again := f.claimOwnSLA(later, own); len(again) != 0 {
		f.t.Errorf("a second claim after the final time returned %+v", again)
	}
	// Recomputed times (a new WarnAt and DueAt) are new alerts.
	moved := slaTimer(driver.SLAQueue, driver.SLAFirstResponse, now, now.Add(time.Minute), now.Add(30*time.Minute))
	f.noErr(st.PutSLATimers(f.ctx, open.ID, []driver.SLATimer{moved}), "PutSLATimers (recomputed)")
	got = f.claimOwnSLA(later, own)
	if len(got) != 2 || got[0].Alert != driver.SLAWarning || got[1].Alert != driver.SLABreach {
		f.t.Errorf("after recomputing, ClaimSLAAlerts = %+v, want the new warning then the new breach (earliest first)", got)
	}
}

func testSLAConcurrentClaims(f *fixture) { concurrentSLAClaims(f, false) }

// testSLAConcurrentLeaseClaims: alerts claimed once whose lease ran out
// unconfirmed are taken over by concurrent claimers, each exactly once.
func testSLAConcurrentLeaseClaims(f *fixture) { concurrentSLAClaims(f, true) }

func concurrentSLAClaims(f *fixture, expired bool) {
	st := f.slaStore()
	now := slaNow()
	const cases, workers = 12, 3
	own := map[driver.CaseID]bool{}
	for i := range cases {
		c := f.createCase(f.mail())
		own[c.ID] = true
		start := now.Add(-time.Duration(i+10) * time.Minute)
		f.noErr(st.PutSLATimers(f.ctx, c.ID, []driver.SLATimer{
			slaTimer(driver.SLAMailbox, driver.SLAFirstResponse, start, start.Add(time.Minute), start.Add(2*time.Minute)),
			slaTimer(driver.SLAQueue, driver.SLAResolution, start, start.Add(3*time.Minute), start.Add(4*time.Minute)),
		}), "PutSLATimers")
	}
	lease := time.Duration(0)
	if expired {
		// Every alert is claimed once and never confirmed; the workers
		// claim when the lease has run out.
		lease = time.Minute
		if got := f.claimOwnSLALease(now, lease, own); len(got) != cases*4 {
			f.t.Fatalf("the first claim returned %d alerts, want %d", len(got), cases*4)
		}
		if got := f.claimOwnSLALease(now.Add(lease-time.Microsecond), lease, own); len(got) != 0 {
			f.t.Fatalf("a claim before the lease ended returned %d alerts, want none", len(got))
		}
		now = now.Add(lease)
	}
	var mu sync.Mutex
	fired := map[string]int{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for range 200 {
				got, err := st.ClaimSLAAlerts(f.ctx, now, lease, 2+w)
				if err != nil {
					f.t.Errorf("concurrent ClaimSLAAlerts: %v", err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, a := range got {
					if own[a.CaseID] {
						fired[string(a.CaseID)+" "+string(a.Timer.Level)+" "+string(a.Timer.Kind)+" "+string(a.Alert)]++
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(fired) != cases*4 {
		f.t.Errorf("%d of %d alerts claimed by %d concurrent workers", len(fired), cases*4, workers)
	}
	for k, n := range fired {
		if n != 1 {
			f.t.Errorf("alert %s claimed %d times by concurrent workers: it would fire %s times", k, n, strconv.Itoa(n))
		}
	}
}

// testSLAClaimBoth: one claim that takes the warning and the breach of a
// timer returns both with both flags (the timer as stored after the
// claim); claims and releases leave the case's UpdatedAt alone.
func testSLAClaimBoth(f *fixture) {
	st := f.slaStore()
	now := slaNow()
	c := f.createCase(f.mail())
	before, err := f.d.GetCase(f.ctx, c.ID)
	f.noErr(err, "GetCase")
	tm := slaTimer(driver.SLAQueue, driver.SLAResolution, now.Add(-time.Hour), now.Add(-30*time.Minute), now.Add(-time.Minute))
	f.noErr(st.PutSLATimers(f.ctx, c.ID, []driver.SLATimer{tm}), "PutSLATimers")
	got := f.claimOwnSLA(now, map[driver.CaseID]bool{c.ID: true})
	if len(got) != 2 || got[0].Alert != driver.SLAWarning || got[1].Alert != driver.SLABreach {
		f.t.Fatalf("ClaimSLAAlerts = %+v, want the warning and the breach", got)
	}
	for _, a := range got {
		if !a.Timer.Warned || !a.Timer.Breached {
			f.t.Errorf("claimed %s: Timer.Warned = %v, Timer.Breached = %v; want both true (the timer as stored after the claim)", a.Alert, a.Timer.Warned, a.Timer.Breached)
		}
	}
	after, err := f.d.GetCase(f.ctx, c.ID)
	f.noErr(err, "GetCase")
	if !after.UpdatedAt.Equal(before.UpdatedAt) {
		f.t.Errorf("a claim moved the case's UpdatedAt from %v to %v", before.UpdatedAt, after.UpdatedAt)
	}
	// Claimed together with a lease: both alerts carry both leases.
	c2 := f.createCase(f.mail())
	f.noErr(st.PutSLATimers(f.ctx, c2.ID, []driver.SLATimer{tm}), "PutSLATimers")
	end := now.Add(time.Minute)
	got = f.claimOwnSLALease(now, time.Minute, map[driver.CaseID]bool{c2.ID: true})
	if len(got) != 2 {
		f.t.Fatalf("ClaimSLAAlerts with a lease = %+v, want the warning and the breach", got)
	}
	for _, a := range got {
		if !a.Timer.WarnLease.Equal(end) || !a.Timer.BreachLease.Equal(end) {
			f.t.Errorf("claimed %s with a lease: WarnLease = %v, BreachLease = %v; want both %v", a.Alert, a.Timer.WarnLease, a.Timer.BreachLease, end)
		}
	}
}

// testSLARelease: a released alert is claimed again, once; a release of
// an alert whose timer was recomputed changes nothing.
func testSLARelease(f *fixture) {
	st := f.slaStore()
	now := slaNow()
	c := f.createCase(f.mail())
	own := map[driver.CaseID]bool{c.ID: true}
	before, err := f.d.GetCase(f.ctx, c.ID)
	f.noErr(err, "GetCase")
	tm := slaTimer(driver.SLAMailbox, driver.SLAFirstResponse, now.Add(-time.Hour), now.Add(-30*time.Minute), now.Add(time.Hour))
	f.noErr(st.PutSLATimers(f.ctx, c.ID, []driver.SLATimer{tm}), "PutSLATimers")
	got := f.claimOwnSLA(now, own)
	if len(got) != 1 {
		f.t.Fatalf("ClaimSLAAlerts = %+v, want the warning", got)
	}
	f.noErr(st.ReleaseSLAAlert(f.ctx, &got[0]), "ReleaseSLAAlert")
	timers, err := st.GetSLATimers(f.ctx, c.ID)
	f.noErr(err, "GetSLATimers")
	if len(timers) != 1 || timers[0].Warned {
		f.t.Fatalf("after the release the timers are %+v, want Warned false", timers)
	}
	again := f.claimOwnSLA(now, own)
	if len(again) != 1 || again[0].Alert != driver.SLAWarning || !again[0].At.Equal(tm.WarnAt) {
		f.t.Fatalf("after the release ClaimSLAAlerts = %+v, want the warning again", again)
	}
	if more := f.claimOwnSLA(now, own); len(more) != 0 {
		f.t.Errorf("a second claim after the release returned %+v", more)
	}
	// Releasing twice, or a flag that is not set, changes nothing.
	f.noErr(st.ReleaseSLAAlert(f.ctx, &again[0]), "ReleaseSLAAlert")
	f.noErr(st.ReleaseSLAAlert(f.ctx, &again[0]), "ReleaseSLAAlert (again)")
	if n := len(f.claimOwnSLA(now, own)); n != 1 {
		f.t.Errorf("after releasing twice %d alerts were claimed, want 1", n)
	}
	// The timer restarted meanwhile (another StartedAt, claimed already):
	// the stale release leaves the new timer's flag alone.
	restarted := slaTimer(driver.SLAMailbox, driver.SLAFirstResponse, now.Add(-50*time.Minute), now.Add(-30*time.Minute), now.Add(time.Hour))
	restarted.Warned = true
	f.noErr(st.PutSLATimers(f.ctx, c.ID, []driver.SLATimer{restarted}), "PutSLATimers (restarted)")
	f.noErr(st.ReleaseSLAAlert(f.ctx, &again[0]), "ReleaseSLAAlert (stale)")
	if more := f.claimOwnSLA(now, own); len(more) != 0 {
		f.t.Errorf("a release of a restarted timer's old alert made ClaimSLAAlerts return %+v", more)
	}
	missing := again[0]
	missing.CaseID = "missing-" + driver.CaseID(f.tag)
	f.wantDriverCode(st.ReleaseSLAAlert(f.ctx, &missing), driver.NotFound, "ReleaseSLAAlert of a missing case")
	after, err := f.d.GetCase(f.ctx, c.ID)
	f.noErr(err, "GetCase")
	if !after.UpdatedAt.Equal(before.UpdatedAt) {
		f.t.Errorf("claims and releases moved the case's UpdatedAt from %v to %v", before.UpdatedAt, after.UpdatedAt)
	}
}

// slaLeaseCase creates a case with one running timer whose warning is due
// (at now - 30m) and whose final time is far (now + 10h).
func (f *fixture) slaLeaseCase(now time.Time) (driver.CaseID, driver.SLATimer) {
	f.t.Helper()
	c := f.createCase(f.mail())
	tm := slaTimer(driver.SLAQueue, driver.SLAFirstResponse, now.Add(-time.Hour), now.Add(-30*time.Minute), now.Add(10*time.Hour))
	f.noErr(f.slaStore().PutSLATimers(f.ctx, c.ID, []driver.SLATimer{tm}), "PutSLATimers")
	return c.ID, tm
}

// testSLALease: a claim not confirmed is returned again from the end of
// its lease on (measured on the now of the claims) and not before; a
// confirmed claim never again; a late confirmation or release by the
// claimer whose lease was taken over changes nothing.
func testSLALease(f *fixture) {
	st := f.slaStore()
	now := slaNow()
	id, tm := f.slaLeaseCase(now)
	own := map[driver.CaseID]bool{id: true}
	before, err := f.d.GetCase(f.ctx, id)
	f.noErr(err, "GetCase")
	const lease = 10 * time.Minute
	first := f.claimOwnSLALease(now, lease, own)
	if len(first) != 1 || first[0].Alert != driver.SLAWarning || !first[0].At.Equal(tm.WarnAt) {
		f.t.Fatalf("ClaimSLAAlerts = %+v, want the warning", first)
	}
	if !first[0].Timer.Warned || !first[0].Timer.WarnLease.Equal(now.Add(lease)) || !first[0].Timer.BreachLease.IsZero() {
		f.t.Errorf("claimed with a lease: Timer.Warned = %v, WarnLease = %v, BreachLease = %v; want true, %v, zero",
			first[0].Timer.Warned, first[0].Timer.WarnLease, first[0].Timer.BreachLease, now.Add(lease))
	}
	timers, err := st.GetSLATimers(f.ctx, id)
	f.noErr(err, "GetSLATimers")
	if len(timers) != 1 || !timers[0].Warned || !timers[0].WarnLease.Equal(now.Add(lease)) {
		f.t.Errorf("after a claim with a lease the timers are %+v, want Warned with WarnLease %v", timers, now.Add(lease))
	}
	if again := f.claimOwnSLALease(now.Add(lease-time.Microsecond), lease, own); len(again) != 0 {
		f.t.Errorf("a claim before the lease ended returned %+v", again)
	}
	// The lease ends unconfirmed: the next claim takes the alert over.
	second := f.claimOwnSLALease(now.Add(lease), lease, own)
	if len(second) != 1 || second[0].Alert != driver.SLAWarning || !second[0].At.Equal(tm.WarnAt) ||
		!second[0].Timer.WarnLease.Equal(now.Add(2*lease)) {
		f.t.Fatalf("a claim at the end of the lease returned %+v, want the warning again, leased until %v", second, now.Add(2*lease))
	}
	if again := f.claimOwnSLALease(now.Add(lease), lease, own); len(again) != 0 {
		f.t.Errorf("a second claim at the end of the first lease returned %+v", again)
	}
	// The first claimer's confirmation and release come late: the claim
	// is the second's now, and stays leased and claimed.
	f.noErr(st.ConfirmSLAAlert(f.ctx, &first[0]), "ConfirmSLAAlert (taken over)")
	f.noErr(st.ReleaseSLAAlert(f.ctx, &first[0]), "ReleaseSLAAlert (taken over)")
	if again := f.claimOwnSLALease(now.Add(2*lease-time.Microsecond), lease, own); len(again) != 0 {
		f.t.Errorf("after a late release of a claim taken over, ClaimSLAAlerts = %+v", again)
	}
	timers, err = st.GetSLATimers(f.ctx, id)
	f.noErr(err, "GetSLATimers")
	if len(timers) != 1 || !timers[0].Warned || !timers[0].WarnLease.Equal(now.Add(2*lease)) {
		f.t.Errorf("after a late confirmation of a claim taken over the timers are %+v, want Warned with WarnLease %v", timers, now.Add(2*lease))
	}
	// The second claimer confirms: the alert never returns.
	f.noErr(st.ConfirmSLAAlert(f.ctx, &second[0]), "ConfirmSLAAlert")
	f.noErr(st.ConfirmSLAAlert(f.ctx, &second[0]), "ConfirmSLAAlert (again)")
	timers, err = st.GetSLATimers(f.ctx, id)
	f.noErr(err, "GetSLATimers")
	if len(timers) != 1 || !timers[0].Warned || !timers[0].WarnLease.IsZero() {
		f.t.Errorf("after the confirmation the timers are %+v, want Warned with no lease", timers)
	}
	if again := f.claimOwnSLALease(now.Add(5*time.Hour), lease, own); len(again) != 0 {
		f.t.Errorf("a confirmed alert was claimed again: %+v", again)
	}
	// A release with the claim's old lease does not undo the confirmation.
	f.noErr(st.ReleaseSLAAlert(f.ctx, &second[0]), "ReleaseSLAAlert (confirmed)")
	if again := f.claimOwnSLALease(now.Add(5*time.Hour), lease, own); len(again) != 0 {
		f.t.Errorf("a release after the confirmation made ClaimSLAAlerts return %+v", again)
	}
	// A released leased claim is claimable at once.
	id2, _ := f.slaLeaseCase(now)
	own2 := map[driver.CaseID]bool{id2: true}
	got := f.claimOwnSLALease(now, lease, own2)
	if len(got) != 1 {
		f.t.Fatalf("ClaimSLAAlerts = %+v, want the warning", got)
	}
	f.noErr(st.ReleaseSLAAlert(f.ctx, &got[0]), "ReleaseSLAAlert")
	if again := f.claimOwnSLALease(now, lease, own2); len(again) != 1 {
		f.t.Errorf("after the release of a leased claim, ClaimSLAAlerts = %+v, want the warning at once", again)
	}
	missing := second[0]
	missing.CaseID = "missing-" + driver.CaseID(f.tag)
	f.wantDriverCode(st.ConfirmSLAAlert(f.ctx, &missing), driver.NotFound, "ConfirmSLAAlert of a missing case")
	after, err := f.d.GetCase(f.ctx, id)
	f.noErr(err, "GetCase")
	if !after.UpdatedAt.Equal(before.UpdatedAt) {
		f.t.Errorf("claims and confirmations moved the case's UpdatedAt from %v to %v", before.UpdatedAt, after.UpdatedAt)
	}
}

// testSLALeaseUnaligned: a claim at a time between two microseconds holds
// its alert until now + lease at least: the lease end is kept rounded up
// to the microsecond, and a claim at that time takes it over.
func testSLALeaseUnaligned(f *fixture) {
	now := slaNow().Add(500 * time.Nanosecond)
	id, _ := f.slaLeaseCase(now)
	own := map[driver.CaseID]bool{id: true}
	const lease = 10 * time.Minute
	end := now.Add(lease).Truncate(time.Microsecond).Add(time.Microsecond)
	got := f.claimOwnSLALease(now, lease, own)
	if len(got) != 1 {
		f.t.Fatalf("ClaimSLAAlerts = %+v, want the warning", got)
	}
	if !got[0].Timer.WarnLease.Equal(end) {
		f.t.Errorf("claimed at %v with lease %v: WarnLease = %v, want %v (rounded up to the microsecond)", now, lease, got[0].Timer.WarnLease, end)
	}
	if again := f.claimOwnSLALease(now.Add(lease-time.Nanosecond), lease, own); len(again) != 0 {
		f.t.Errorf("a claim at %v, before the claim's now + lease %v, returned %+v", now.Add(lease-time.Nanosecond), now.Add(lease), again)
	}
	if again := f.claimOwnSLALease(end, lease, own); len(again) != 1 {
		f.t.Errorf("a claim at the lease end %v returned %+v, want the warning", end, again)
	}
}

// testSLALeasePutBack: a caller that read the timers before a claim (or
// before its confirmation or release) and writes them back keeps the
// pending lease, never undoes a confirmation and never undoes a release.
func testSLALeasePutBack(f *fixture) {
	st := f.slaStore()
	now := slaNow()
	id, tm := f.slaLeaseCase(now)
	own := map[driver.CaseID]bool{id: true}
	const lease = 10 * time.Minute
	got := f.claimOwnSLALease(now, lease, own)
	if len(got) != 1 {
		f.t.Fatalf("ClaimSLAAlerts = %+v, want the warning", got)
	}
	// A copy read before the claim: not Warned, no lease.
	f.noErr(st.PutSLATimers(f.ctx, id, []driver.SLATimer{tm}), "PutSLATimers (stale copy)")
	// A stale pause, then the resume that moves the times.
	p := tm
	p.Paused, p.RunningSince, p.WarnAt, p.DueAt = true, time.Time{}, time.Time{}, time.Time{}
	f.noErr(st.PutSLATimers(f.ctx, id, []driver.SLATimer{p}), "PutSLATimers (paused, stale)")
	resumed := tm
	resumed.WarnAt = tm.WarnAt.Add(time.Minute)
	f.noErr(st.PutSLATimers(f.ctx, id, []driver.SLATimer{resumed}), "PutSLATimers (resumed)")
	timers, err := st.GetSLATimers(f.ctx, id)
	f.noErr(err, "GetSLATimers")
	if len(timers) != 1 || !timers[0].Warned || !timers[0].WarnLease.Equal(now.Add(lease)) {
		f.t.Fatalf("after writing back copies read before the claim the timers are %+v, want Warned with WarnLease %v", timers, now.Add(lease))
	}
	if again := f.claimOwnSLALease(now.Add(lease-time.Microsecond), lease, own); len(again) != 0 {
		f.t.Errorf("after writing back a stale copy, a claim within the lease returned %+v: the alert would fire twice", again)
	}
	// The claimer confirms; a copy read after the claim (Warned, with the
	// lease) is written back: the claim stays confirmed.
	f.noErr(st.ConfirmSLAAlert(f.ctx, &got[0]), "ConfirmSLAAlert (after a resume)")
	leased := resumed
	leased.Warned, leased.WarnLease = true, now.Add(lease)
	f.noErr(st.PutSLATimers(f.ctx, id, []driver.SLATimer{leased}), "PutSLATimers (copy read before the confirmation)")
	if again := f.claimOwnSLALease(now.Add(5*time.Hour), lease, own); len(again) != 0 {
		f.t.Errorf("after writing back a copy read before the confirmation, ClaimSLAAlerts = %+v: the alert would fire twice", again)
	}
	// A copy read after a claim (Warned, with the lease) is written back
	// after the claim was released: the release stands, and the alert is
	// claimable at once, not only when the copy's lease ends.
	id3, _ := f.slaLeaseCase(now)
	own3 := map[driver.CaseID]bool{id3: true}
	got = f.claimOwnSLALease(now, lease, own3)
	if len(got) != 1 {
		f.t.Fatalf("ClaimSLAAlerts = %+v, want the warning", got)
	}
	copied, err := st.GetSLATimers(f.ctx, id3)
	f.noErr(err, "GetSLATimers")
	f.noErr(st.ReleaseSLAAlert(f.ctx, &got[0]), "ReleaseSLAAlert")
	f.noErr(st.PutSLATimers(f.ctx, id3, copied), "PutSLATimers (copy read before the release)")
	timers, err = st.GetSLATimers(f.ctx, id3)
	f.noErr(err, "GetSLATimers")
	if len(timers) != 1 || timers[0].Warned || !timers[0].WarnLease.IsZero() {
		f.t.Errorf("after writing back a copy read before the release the timers are %+v, want Warned false with no lease", timers)
	}
	if again := f.claimOwnSLALease(now, lease, own3); len(again) != 1 {
		f.t.Errorf("after writing back a copy read before the release, ClaimSLAAlerts = %+v, want the warning at once", again)
	}
	// A lease given without the flag is not kept.
	id2, tm2 := f.slaLeaseCase(now)
	tm2.WarnLease = now.Add(time.Hour)
	f.noErr(st.PutSLATimers(f.ctx, id2, []driver.SLATimer{tm2}), "PutSLATimers (lease without the flag)")
	timers, err = st.GetSLATimers(f.ctx, id2)
	f.noErr(err, "GetSLATimers")
	if len(timers) != 1 || timers[0].Warned || !timers[0].WarnLease.IsZero() {
		f.t.Errorf("a lease given without the flag is stored: %+v", timers)
	}
}

// testSLAConfirmRestarted: a confirmation of an alert whose timer was
// restarted (another StartedAt) or removed meanwhile changes nothing.
func testSLAConfirmRestarted(f *fixture) {
	st := f.slaStore()
	now := slaNow()
	id, _ := f.slaLeaseCase(now)
	own := map[driver.CaseID]bool{id: true}
	const lease = 10 * time.Minute
	got := f.claimOwnSLALease(now, lease, own)
	if len(got) != 1 {
		f.t.Fatalf("ClaimSLAAlerts = %+v, want the warning", got)
	}
	// Recomputed from a new start, claimed by a new claim with a lease.
	restarted := slaTimer(driver.SLAQueue, driver.SLAFirstResponse, now.Add(-50*time.Minute), now.Add(-20*time.Minute), now.Add(10*time.Hour))
	f.noErr(st.PutSLATimers(f.ctx, id, []driver.SLATimer{restarted}), "PutSLATimers (restarted)")
	f.noErr(st.ConfirmSLAAlert(f.ctx, &got[0]), "ConfirmSLAAlert (restarted, unclaimed)")
	newer := f.claimOwnSLALease(now, lease, own)
	if len(newer) != 1 || !newer[0].At.Equal(restarted.WarnAt) {
		f.t.Fatalf("after a stale confirmation the restarted timer's warning is not claimable: %+v", newer)
	}
	f.noErr(st.ConfirmSLAAlert(f.ctx, &got[0]), "ConfirmSLAAlert (restarted, claimed)")
	timers, err := st.GetSLATimers(f.ctx, id)
	f.noErr(err, "GetSLATimers")
	if len(timers) != 1 || !timers[0].Warned || !timers[0].WarnLease.Equal(now.Add(lease)) {
		f.t.Errorf("a stale confirmation changed the restarted timer's claim: %+v", timers)
	}
	if again := f.claimOwnSLALease(now.Add(lease), lease, own); len(again) != 1 {
		f.t.Errorf("after a stale confirmation, the restarted timer's unconfirmed warning was not claimed again at the end of its lease: %+v", again)
	}
	// The timers removed: nothing to confirm.
	f.noErr(st.PutSLATimers(f.ctx, id, nil), "PutSLATimers (none)")
	f.noErr(st.ConfirmSLAAlert(f.ctx, &newer[0]), "ConfirmSLAAlert (removed)")
}
