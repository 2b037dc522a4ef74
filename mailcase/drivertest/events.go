package drivertest

import (
	"bytes"
	"strconv"
	"sync"
	"time"

	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// The event log tests share a database with other subtests (and earlier
// runs): every check looks only at this subtest's events (IDs with its tag)
// and sinks (names with its tag).

func (f *fixture) el() driver.EventLog { return f.d.(driver.EventLog) }

func (f *fixture) sink(name string) string { return "sink-" + name + "-" + f.tag }

// event returns a new event of this subtest for sinks; its payload holds
// quotes, SQL, a NUL escape and non-ASCII text.
func (f *fixture) event(sinks ...string) *driver.EventRecord {
	n := strconv.Itoa(f.next())
	return &driver.EventRecord{
		ID: "ev-" + f.tag + "-" + n, Kind: "case.created", CaseID: driver.CaseID("case-" + n),
		Time:    time.Date(2026, 3, 29, 1, 30, 0, 123456789, time.UTC),
		Version: 1,
		Data:    []byte(`{"n":` + n + `,"q":"o'hara\"; DROP TABLE events; --","nul":"\u0000","s":"Größe 🙂"}`),
		Sinks:   sinks,
	}
}

// ownDeliveries lists the deliveries of sink by Seq.
func (f *fixture) ownDeliveries(sink string) map[int64]driver.EventDelivery {
	f.t.Helper()
	got, err := f.el().ListDeliveries(f.ctx, &driver.DeliveryListOptions{Sink: sink})
	f.noErr(err, "ListDeliveries")
	out := map[int64]driver.EventDelivery{}
	for _, d := range got {
		if d.Sink != sink {
			f.t.Errorf("ListDeliveries(Sink %q) returned a delivery to %q", sink, d.Sink)
		}
		out[d.Event.Seq] = d
	}
	return out
}

func (f *fixture) claimDeliveries(sink, holder string, limit int, ttl time.Duration) map[int64]driver.EventDelivery {
	f.t.Helper()
	got, err := f.el().ClaimDeliveries(f.ctx, sink, holder, limit, ttl)
	f.noErr(err, "ClaimDeliveries")
	out := map[int64]driver.EventDelivery{}
	for _, d := range got {
		if d.Sink != sink || d.Status != driver.DeliveryDelivering {
			f.t.Errorf("claimed delivery to %q has status %q, want a delivery to %q, delivering", d.Sink, d.Status, sink)
		}
		out[d.Event.Seq] = d
	}
	return out
}

func sameEvent(got driver.EventRecord, want *driver.EventRecord) string {
	switch {
	case got.ID != want.ID:
		return diff("ID", got.ID, want.ID)
	case got.Kind != want.Kind:
		return diff("Kind", got.Kind, want.Kind)
	case got.CaseID != want.CaseID:
		return diff("CaseID", got.CaseID, want.CaseID)
	case !got.Time.Equal(want.Time.Truncate(time.Microsecond)):
		return diff("Time", got.Time, want.Time.Truncate(time.Microsecond))
	case got.Version != want.Version:
		return diff("Version", got.Version, want.Version)
	case !bytes.Equal(got.Data, want.Data):
		return diff("Data", string(got.Data), string(want.Data))
	case len(got.Sinks) != 0:
		return diff("Sinks", got.Sinks, []string(nil))
	}
	return ""
}

func testEventLogAppendRead(f *fixture) {
	l := f.el()
	a, b := f.sink("a"), f.sink("b")
	evs := []*driver.EventRecord{f.event(a, b), f.event(a, a), f.event()}
	evs = append(evs, &driver.EventRecord{ID: evs[0].ID, Kind: "other", Version: 1, Data: []byte(`{}`), Sinks: []string{f.sink("c")}})
	f.noErr(l.AppendEvents(f.ctx, evs), "AppendEvents")
	da := f.ownDeliveries(a)
	if len(da) != 2 {
		f.t.Fatalf("sink a has %d deliveries, want 2 (one per event naming it, a repeated name counts once)", len(da))
	}
	if n := len(f.ownDeliveries(b)); n != 1 {
		f.t.Errorf("sink b has %d deliveries, want 1", n)
	}
	if n := len(f.ownDeliveries(f.sink("c"))); n != 0 {
		f.t.Errorf("an event repeating a known ID in the same call added %d deliveries, want 0", n)
	}
	var first int64
	for seq, d := range da {
		if d.Status != driver.DeliveryPending || d.Attempts != 0 {
			f.t.Errorf("new delivery: status %q, attempts %d, want pending, 0", d.Status, d.Attempts)
		}
		if first == 0 || seq < first {
			first = seq
		}
	}
	got, err := l.ReadEvents(f.ctx, first-1, 100)
	f.noErr(err, "ReadEvents")
	var own []driver.EventRecord
	last := first - 1
	for _, e := range got {
		if e.Seq <= last {
			f.t.Fatalf("ReadEvents: Seq %d after %d: not increasing or not after the cursor", e.Seq, last)
		}
		last = e.Seq
		if bytes.HasPrefix([]byte(e.ID), []byte("ev-"+f.tag)) {
			own = append(own, e)
		}
	}
	if len(own) != 3 {
		f.t.Fatalf("ReadEvents returned %d of this test's events, want 3 (a repeated ID is kept once)", len(own))
	}
	for i, e := range own {
		if d := sameEvent(e, evs[i]); d != "" {
			f.t.Errorf("event %d: %s", i, d)
		}
	}
	if d := sameEvent(da[own[0].Seq].Event, evs[0]); d != "" {
		f.t.Errorf("ListDeliveries event: %s", d)
	}
	one, err := l.ReadEvents(f.ctx, own[0].Seq, 1)
	f.noErr(err, "ReadEvents")
	if len(one) != 1 || one[0].Seq != own[1].Seq {
		f.t.Errorf("ReadEvents(after the first, limit 1) = %d events, want the second event (Seq %d)", len(one), own[1].Seq)
	}
	// A later call with a known ID keeps nothing, not even a new sink.
	again := f.event(f.sink("late"))
	again.ID = evs[1].ID
	f.noErr(l.AppendEvents(f.ctx, []*driver.EventRecord{again}), "AppendEvents again")
	if n := len(f.ownDeliveries(f.sink("late"))); n != 0 {
		f.t.Errorf("an event appended again added %d deliveries, want 0", n)
	}
	got, err = l.ReadEvents(f.ctx, own[2].Seq, 100)
	f.noErr(err, "ReadEvents")
	for _, e := range got {
		if e.ID == again.ID {
			f.t.Errorf("an event appended again was kept a second time (Seq %d)", e.Seq)
		}
	}
}

func testEventDeliveries(f *fixture) {
	l := f.el()
	s := f.sink("hook")
	f.noErr(l.AppendEvents(f.ctx, []*driver.EventRecord{f.event(s), f.event(s), f.event(s)}), "AppendEvents")
	c := f.claimDeliveries(s, "w1", 2, time.Minute)
	if len(c) != 2 {
		f.t.Fatalf("ClaimDeliveries(limit 2) returned %d, want 2", len(c))
	}
	var seqs []int64
	for seq, d := range c {
		if d.Attempts != 1 {
			f.t.Errorf("claimed delivery attempts = %d, want 1", d.Attempts)
		}
		seqs = append(seqs, seq)
	}
	all := f.ownDeliveries(s)
	var third int64
	for seq := range all {
		if _, ok := c[seq]; !ok {
			third = seq
		}
	}
	for _, seq := range seqs {
		if seq > third {
			f.t.Errorf("ClaimDeliveries(limit 2) claimed Seq %d before Seq %d: not in Seq order", seq, third)
		}
	}
	if got := f.claimDeliveries(s, "w2", 10, time.Minute); len(got) != 1 || got[third].Event.Seq != third {
		f.t.Fatalf("a second claim returned %d deliveries, want only the unclaimed one", len(got))
	}
	err := l.FinishDelivery(f.ctx, s, seqs[0], "w2", &driver.DeliveryResult{Status: driver.DeliveryDelivered})
	f.wantDriverCode(err, driver.FailedPrecondition, "FinishDelivery by a worker that does not hold the claim")
	err = l.FinishDelivery(f.ctx, f.sink("none"), seqs[0], "w1", &driver.DeliveryResult{Status: driver.DeliveryDelivered})
	f.wantDriverCode(err, driver.NotFound, "FinishDelivery of an unknown sink")
	err = l.FinishDelivery(f.ctx, s, seqs[0], "w1", &driver.DeliveryResult{Status: "bogus"})
	f.wantDriverCode(err, driver.InvalidArgument, "FinishDelivery with an unknown status")

	f.noErr(l.FinishDelivery(f.ctx, s, seqs[0], "w1", &driver.DeliveryResult{Status: driver.DeliveryDelivered}), "FinishDelivery delivered")
	f.noErr(l.FinishDelivery(f.ctx, s, seqs[1], "w1", &driver.DeliveryResult{Status: driver.DeliveryPending, Error: "HTTP 500"}), "FinishDelivery pending")
	f.noErr(l.FinishDelivery(f.ctx, s, third, "w2", &driver.DeliveryResult{Status: driver.DeliveryPending, RetryAfter: time.Hour, Error: "timeout"}), "FinishDelivery later")
	err = l.FinishDelivery(f.ctx, s, seqs[0], "w1", &driver.DeliveryResult{Status: driver.DeliveryDelivered})
	f.wantDriverCode(err, driver.FailedPrecondition, "FinishDelivery of a delivered delivery")

	again := f.claimDeliveries(s, "w3", 10, time.Minute)
	if len(again) != 1 || again[seqs[1]].Attempts != 2 {
		f.t.Fatalf("claim after a retry now: %d deliveries, want the retried one with 2 attempts (%+v)", len(again), again)
	}
	f.noErr(l.FinishDelivery(f.ctx, s, seqs[1], "w3", &driver.DeliveryResult{Status: driver.DeliveryFailed, Error: "gave up"}), "FinishDelivery failed")
	if n := len(f.claimDeliveries(s, "w4", 10, time.Minute)); n != 0 {
		f.t.Errorf("claim returned %d deliveries, want none (delivered, failed and one due in an hour)", n)
	}
	all = f.ownDeliveries(s)
	want := map[int64]struct {
		st  driver.DeliveryStatus
		err string
		n   int
	}{seqs[0]: {driver.DeliveryDelivered, "", 1}, seqs[1]: {driver.DeliveryFailed, "gave up", 2}, third: {driver.DeliveryPending, "timeout", 1}}
	for seq, w := range want {
		d := all[seq]
		if d.Status != w.st || d.LastError != w.err || d.Attempts != w.n {
			f.t.Errorf("delivery %d: status %q, last error %q, attempts %d; want %q, %q, %d", seq, d.Status, d.LastError, d.Attempts, w.st, w.err, w.n)
		}
	}
	if all[seqs[0]].DeliveredAt.IsZero() {
		f.t.Error("a delivered delivery has no DeliveredAt")
	}
	failed, err := l.ListDeliveries(f.ctx, &driver.DeliveryListOptions{Sink: s, Status: driver.DeliveryFailed})
	f.noErr(err, "ListDeliveries failed")
	if len(failed) != 1 || failed[0].Event.Seq != seqs[1] {
		f.t.Errorf("ListDeliveries(failed) = %d deliveries, want the failed one", len(failed))
	}
	newest, err := l.ListDeliveries(f.ctx, &driver.DeliveryListOptions{Sink: s, Limit: 1})
	f.noErr(err, "ListDeliveries limit")
	if len(newest) != 1 || newest[0].Event.Seq != max(seqs[0], seqs[1], third) {
		f.t.Errorf("ListDeliveries(limit 1) does not return the delivery of the newest event")
	}
}

func testEventDeliveryClaimExpires(f *fixture) {
	l := f.el()
	s := f.sink("exp")
	f.noErr(l.AppendEvents(f.ctx, []*driver.EventRecord{f.event(s)}), "AppendEvents")
	c := f.claimDeliveries(s, "dead", 1, 200*time.Millisecond)
	if len(c) != 1 {
		f.t.Fatalf("claim returned %d deliveries, want 1", len(c))
	}
	var seq int64
	for k := range c {
		seq = k
	}
	if n := len(f.claimDeliveries(s, "live", 10, time.Minute)); n != 0 {
		f.t.Fatal("a live claim was claimed again")
	}
	time.Sleep(500 * time.Millisecond)
	err := l.FinishDelivery(f.ctx, s, seq, "dead", &driver.DeliveryResult{Status: driver.DeliveryDelivered})
	f.wantDriverCode(err, driver.FailedPrecondition, "FinishDelivery after the claim's lease expired")
	again := f.claimDeliveries(s, "live", 10, time.Minute)
	if d, ok := again[seq]; !ok || d.Attempts != 2 {
		f.t.Fatalf("a delivery whose claim expired is not claimed again with 2 attempts (%+v)", again)
	}
	f.noErr(l.FinishDelivery(f.ctx, s, seq, "live", &driver.DeliveryResult{Status: driver.DeliveryDelivered}), "FinishDelivery by the new holder")
}

func testEventDeliveryConcurrentClaims(f *fixture) {
	l := f.el()
	s := f.sink("conc")
	const n = 24
	evs := make([]*driver.EventRecord, n)
	for i := range evs {
		evs[i] = f.event(s)
	}
	f.noErr(l.AppendEvents(f.ctx, evs), "AppendEvents")
	var mu sync.Mutex
	seen := map[int64]string{}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		holder := "w" + strconv.Itoa(w)
		wg.Go(func() {
			for range 50 {
				got, err := l.ClaimDeliveries(f.ctx, s, holder, 3, time.Minute)
				if err != nil {
					errs <- err
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, d := range got {
					if prev, dup := seen[d.Event.Seq]; dup {
						f.t.Errorf("delivery %d claimed by %s and %s", d.Event.Seq, prev, holder)
					}
					seen[d.Event.Seq] = holder
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		f.noErr(err, "ClaimDeliveries")
	}
	if len(seen) != n {
		f.t.Errorf("concurrent claims returned %d deliveries, want %d", len(seen), n)
	}
}
