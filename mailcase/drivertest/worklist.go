package drivertest

import (
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// The worklist tests (driver.Queues and driver.Worklist) use queues and
// agents unique to the subtest; cases are created on the subtest's queue.

var (
	needWorklist       = []need{{"driver.Queues and driver.Worklist", func(c Capabilities) bool { return c.Worklist }}}
	needWorkItemOutbox = append(slices.Clone(needWorklist), needOutbox[0],
		need{"driver.WorkItemOutbox", func(c Capabilities) bool { return c.WorkItemOutbox }})
)

func init() {
	tests = append(tests,
		test{name: "WorklistQueues", needs: needWorklist, run: testWorklistQueues},
		test{name: "WorklistAccept", needs: needWorklist, run: testWorklistAccept},
		test{name: "WorklistConcurrentAccept", needs: needWorklist, run: testWorklistConcurrentAccept},
		test{name: "WorklistReleaseReassign", needs: needWorklist, run: testWorklistReleaseReassign},
		test{name: "WorklistStatusOpenMail", needs: needWorklist, run: testWorklistStatusOpenMail},
		test{name: "WorklistList", needs: needWorklist, run: testWorklistList},
		test{name: "WorklistEnqueueAsOwner", needs: needWorkItemOutbox, run: testWorklistEnqueueAsOwner},
	)
}

func (f *fixture) wq() driver.Queues   { return f.d.(driver.Queues) }
func (f *fixture) wl() driver.Worklist { return f.d.(driver.Worklist) }

// groupQueue creates the subtest's queue (f.queue()+suffix) with owner and
// members (names turned into addresses) and returns its name.
func (f *fixture) groupQueue(suffix, owner string, members ...string) string {
	f.t.Helper()
	q := &driver.Queue{Name: f.queue() + suffix}
	if owner != "" {
		q.Owner = f.addr(owner)
	}
	for _, m := range members {
		q.Members = append(q.Members, f.addr(m))
	}
	slices.Sort(q.Members)
	f.noErr(f.wq().CreateQueue(f.ctx, q), "CreateQueue")
	return q.Name
}

func (f *fixture) findQueue(name string) (driver.Queue, bool) {
	f.t.Helper()
	qs, err := f.wq().ListQueues(f.ctx)
	f.noErr(err, "ListQueues")
	for _, q := range qs {
		if q.Name == name {
			return q, true
		}
	}
	return driver.Queue{}, false
}

func (f *fixture) work(id driver.CaseID, action driver.WorkAction, agent string) (driver.WorkItem, error) {
	return f.wl().ChangeWorkItem(f.ctx, id, &driver.WorkChange{Action: action, Agent: f.addr(agent)})
}

func (f *fixture) setStatus(id driver.CaseID, agent string, st driver.CaseStatus) (driver.WorkItem, error) {
	return f.wl().ChangeWorkItem(f.ctx, id, &driver.WorkChange{Action: driver.WorkSetStatus, Agent: f.addr(agent), Status: st})
}

func (f *fixture) getItem(id driver.CaseID) driver.WorkItem {
	f.t.Helper()
	it, err := f.wl().GetWorkItem(f.ctx, id)
	f.noErr(err, "GetWorkItem")
	return it
}

func testWorklistQueues(f *fixture) {
	name := f.groupQueue("", "boss", "bob", "amy")
	f.wantDriverCode(f.wq().CreateQueue(f.ctx, &driver.Queue{Name: name}), driver.AlreadyExists, "CreateQueue of an existing name")
	q, ok := f.findQueue(name)
	if !ok {
		f.t.Fatalf("ListQueues does not list queue %q", name)
	}
	if want := []string{f.addr("amy"), f.addr("bob")}; q.Owner != f.addr("boss") || !slices.Equal(q.Members, want) {
		f.t.Fatalf("queue = %+v, want owner %s and members %v", q, f.addr("boss"), want)
	}
	f.noErr(f.wq().UpdateQueue(f.ctx, &driver.Queue{Name: name, Owner: f.addr("chief"), Address: f.addr("team")}), "UpdateQueue")
	f.wantDriverCode(f.wq().UpdateQueue(f.ctx, &driver.Queue{Name: name + "-missing"}), driver.NotFound, "UpdateQueue of an unknown queue")
	f.noErr(f.wq().SetQueueMember(f.ctx, name, f.addr("cat"), true), "SetQueueMember add")
	f.noErr(f.wq().SetQueueMember(f.ctx, name, f.addr("cat"), true), "SetQueueMember add twice")
	f.noErr(f.wq().SetQueueMember(f.ctx, name, f.addr("bob"), false), "SetQueueMember remove")
	f.noErr(f.wq().SetQueueMember(f.ctx, name, f.addr("nobody"), false), "SetQueueMember remove a non-member")
	f.wantDriverCode(f.wq().SetQueueMember(f.ctx, name+"-missing", f.addr("cat"), true), driver.NotFound, "SetQueueMember of an unknown queue")
	q, _ = f.findQueue(name)
	if want := []string{f.addr("amy"), f.addr("cat")}; q.Owner != f.addr("chief") || q.Address != f.addr("team") || !slices.Equal(q.Members, want) {
		f.t.Fatalf("queue after updates = %+v, want owner %s, address %s, members %v (UpdateQueue leaves members alone)",
			q, f.addr("chief"), f.addr("team"), want)
	}
	qs, err := f.wq().ListQueues(f.ctx)
	f.noErr(err, "ListQueues")
	if !slices.IsSortedFunc(qs, func(a, b driver.Queue) int { return compareStrings(a.Name, b.Name) }) {
		f.t.Fatal("ListQueues is not sorted by name")
	}
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func testWorklistAccept(f *fixture) {
	f.groupQueue("", "boss", "bob", "amy")
	c := f.createCase(f.mail())
	it := f.getItem(c.ID)
	if it.Owner != "" || it.Queue != f.queue() || !it.Status.IsOpenStatus() || !it.MailOpen || it.Number != c.Number {
		f.t.Fatalf("new item = %+v, want unowned, open, on %s, with open mail", it, f.queue())
	}
	_, err := f.work(c.ID, driver.WorkAccept, "mallory")
	f.wantDriverCode(err, driver.PermissionDenied, "accept by a non-member")
	_, err = f.work(c.ID, driver.WorkAccept, "boss")
	f.wantDriverCode(err, driver.PermissionDenied, "accept by the queue's owner who is no member")
	it, err = f.work(c.ID, driver.WorkAccept, "bob")
	f.noErr(err, "accept by a member")
	if it.Owner != f.addr("bob") || it.Status != driver.StatusInProgress {
		f.t.Fatalf("accepted item = %+v, want owner bob, in progress", it)
	}
	if got, err := f.d.GetCase(f.ctx, c.ID); err != nil || got.Owner != f.addr("bob") || got.Status != driver.StatusInProgress {
		f.t.Fatalf("GetCase after accept = %+v, %v; want the item's owner and status on the case", got, err)
	}
	if _, err := f.work(c.ID, driver.WorkAccept, "bob"); err != nil {
		f.t.Fatalf("accepting an item one owns again: %v, want nil", err)
	}
	_, err = f.work(c.ID, driver.WorkAccept, "amy")
	f.wantDriverCode(err, driver.AlreadyExists, "accept of an item another agent owns")
	_, err = f.wl().ChangeWorkItem(f.ctx, c.ID, &driver.WorkChange{Action: driver.WorkAccept})
	f.wantDriverCode(err, driver.InvalidArgument, "a change without agent")
	_, err = f.wl().ChangeWorkItem(f.ctx, c.ID, &driver.WorkChange{Action: "steal", Agent: f.addr("bob")})
	f.wantDriverCode(err, driver.InvalidArgument, "an unknown action")
	_, err = f.work("missing-"+driver.CaseID(f.tag), driver.WorkAccept, "bob")
	f.wantDriverCode(err, driver.NotFound, "accept on a missing case")
	// The change is checked before the case is looked up.
	_, err = f.setStatus("missing-"+driver.CaseID(f.tag), "bob", "bogus")
	f.wantDriverCode(err, driver.InvalidArgument, "an invalid status on a missing case")
	_, err = f.work("missing-"+driver.CaseID(f.tag), "bogus", "bob")
	f.wantDriverCode(err, driver.InvalidArgument, "an unknown action on a missing case")
	_, err = f.wl().ChangeWorkItem(f.ctx, "missing-"+driver.CaseID(f.tag), &driver.WorkChange{Action: driver.WorkAccept})
	f.wantDriverCode(err, driver.InvalidArgument, "an empty agent on a missing case")
	_, err = f.wl().GetWorkItem(f.ctx, "missing-"+driver.CaseID(f.tag))
	f.wantDriverCode(err, driver.NotFound, "GetWorkItem of a missing case")

	// A done item cannot be accepted; a queue that does not exist has no
	// members.
	d := f.createCase(f.mail())
	cancelled := driver.StatusCancelled
	_, err = f.d.UpdateCase(f.ctx, d.ID, &driver.CaseUpdate{Status: &cancelled})
	f.noErr(err, "UpdateCase")
	_, err = f.work(d.ID, driver.WorkAccept, "amy")
	f.wantDriverCode(err, driver.FailedPrecondition, "accept of a cancelled item")
	nq := f.queue() + "-none"
	e := f.createCase(f.mail())
	_, err = f.d.UpdateCase(f.ctx, e.ID, &driver.CaseUpdate{Queue: &nq})
	f.noErr(err, "UpdateCase")
	_, err = f.work(e.ID, driver.WorkAccept, "amy")
	f.wantDriverCode(err, driver.PermissionDenied, "accept of an item on no group queue")
}

func testWorklistConcurrentAccept(f *fixture) {
	const n = 8
	var agents []string
	for i := range n {
		agents = append(agents, "agent"+strconv.Itoa(i))
	}
	f.groupQueue("", "", agents...)
	for round := range 3 {
		c := f.createCase(f.mail())
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { _, errs[i] = f.work(c.ID, driver.WorkAccept, agents[i]) })
		}
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				f.t.Fatalf("round %d: agents %d and %d both accepted the item", round, winner, i)
			case err == nil:
				winner = i
			case f.d.ErrorCode(err) != driver.AlreadyExists:
				f.t.Fatalf("round %d: losing accept: %v (code %v), want AlreadyExists", round, err, f.d.ErrorCode(err))
			}
		}
		if winner < 0 {
			f.t.Fatalf("round %d: none of %d concurrent accepts won", round, n)
		}
		if it := f.getItem(c.ID); it.Owner != f.addr(agents[winner]) {
			f.t.Fatalf("round %d: owner %q, want the winner %q", round, it.Owner, f.addr(agents[winner]))
		}
	}
}

func testWorklistReleaseReassign(f *fixture) {
	f.groupQueue("", "boss", "bob", "amy")
	other := f.groupQueue("-2", "chief", "cat")
	c := f.createCase(f.mail())
	_, err := f.work(c.ID, driver.WorkRelease, "bob")
	f.wantDriverCode(err, driver.FailedPrecondition, "release of an unowned item")
	_, err = f.work(c.ID, driver.WorkAccept, "bob")
	f.noErr(err, "accept")
	_, err = f.work(c.ID, driver.WorkRelease, "amy")
	f.wantDriverCode(err, driver.PermissionDenied, "release by a member who is not the owner")
	it, err := f.work(c.ID, driver.WorkRelease, "bob")
	f.noErr(err, "release by the owner")
	if it.Owner != "" || it.Status != driver.StatusOpen || it.Queue != f.queue() {
		f.t.Fatalf("released item = %+v, want unowned, open, on its queue", it)
	}
	_, err = f.work(c.ID, driver.WorkAccept, "amy")
	f.noErr(err, "accept after release")
	_, err = f.work(c.ID, driver.WorkRelease, "boss")
	f.noErr(err, "release by the queue's owner")

	reassign := func(agent, queue, member string) (driver.WorkItem, error) {
		ch := &driver.WorkChange{Action: driver.WorkReassign, Agent: f.addr(agent), Queue: queue}
		if member != "" {
			ch.Member = f.addr(member)
		}
		return f.wl().ChangeWorkItem(f.ctx, c.ID, ch)
	}
	_, err = reassign("mallory", other, "")
	f.wantDriverCode(err, driver.PermissionDenied, "reassign by an outsider")
	_, err = reassign("bob", other+"-missing", "")
	f.wantDriverCode(err, driver.NotFound, "reassign to an unknown queue")
	_, err = reassign("bob", other, "amy")
	f.wantDriverCode(err, driver.FailedPrecondition, "reassign to someone who is no member of the target queue")
	it, err = reassign("bob", other, "")
	f.noErr(err, "reassign of an unowned item by a member")
	if it.Queue != other || it.Owner != "" || !it.Status.IsOpenStatus() {
		f.t.Fatalf("reassigned item = %+v, want unowned on %s", it, other)
	}
	_, err = reassign("bob", f.queue(), "")
	f.wantDriverCode(err, driver.PermissionDenied, "reassign by a member of the queue it left")
	it, err = reassign("chief", other, "cat")
	f.noErr(err, "reassign to a member by the queue's owner")
	if it.Owner != f.addr("cat") || it.Status != driver.StatusInProgress {
		f.t.Fatalf("item reassigned to a member = %+v, want owned by cat, in progress", it)
	}
	_, err = f.work(c.ID, driver.WorkAccept, "amy")
	f.wantDriverCode(err, driver.PermissionDenied, "accept by a member of another queue")
	it, err = reassign("cat", f.queue(), "")
	f.noErr(err, "reassign back by the owner")
	if it.Queue != f.queue() || it.Owner != "" || it.Status != driver.StatusOpen {
		f.t.Fatalf("item moved back = %+v, want unowned and open on %s", it, f.queue())
	}
	if got, err := f.d.GetCase(f.ctx, c.ID); err != nil || got.Queue != f.queue() || got.Owner != "" {
		f.t.Fatalf("GetCase after reassign = %+v, %v; want the item's queue and no owner", got, err)
	}
}

func testWorklistStatusOpenMail(f *fixture) {
	f.groupQueue("", "boss", "bob", "amy")
	c := f.createCase(f.mail())
	_, err := f.setStatus(c.ID, "bob", driver.StatusWaiting)
	f.wantDriverCode(err, driver.PermissionDenied, "status change of an unowned item")
	_, err = f.work(c.ID, driver.WorkAccept, "bob")
	f.noErr(err, "accept")
	_, err = f.setStatus(c.ID, "amy", driver.StatusWaiting)
	f.wantDriverCode(err, driver.PermissionDenied, "status change by a member who is not the owner")
	_, err = f.work(c.ID, driver.WorkHandled, "boss")
	f.wantDriverCode(err, driver.PermissionDenied, "handled mark by the queue's owner")
	for _, st := range []driver.CaseStatus{driver.StatusNew, "", "bogus"} {
		_, err = f.setStatus(c.ID, "bob", st)
		f.wantDriverCode(err, driver.InvalidArgument, "status "+strconv.Quote(string(st)))
	}
	_, err = f.setStatus(c.ID, "bob", driver.StatusClosed)
	f.wantDriverCode(err, driver.FailedPrecondition, "close with open mail")

	// An automatic mail neither answers nor opens mail.
	auto := f.mail()
	auto.Direction, auto.Auto = driver.Outbound, true
	f.noErr(f.d.AppendEmail(f.ctx, c.ID, auto), "AppendEmail automatic")
	if !f.getItem(c.ID).MailOpen {
		f.t.Fatal("an automatic outbound mail closed the open mail")
	}
	answer := f.mail()
	answer.Direction = driver.Outbound
	f.noErr(f.d.AppendEmail(f.ctx, c.ID, answer), "AppendEmail answer")
	if f.getItem(c.ID).MailOpen {
		f.t.Fatal("mail is still open after the agent's answer")
	}
	autoIn := f.mail()
	autoIn.Auto = true
	f.noErr(f.d.AppendEmail(f.ctx, c.ID, autoIn), "AppendEmail automatic inbound")
	if f.getItem(c.ID).MailOpen {
		f.t.Fatal("an automatic received mail (an auto-reply) opened the mail")
	}
	it, err := f.setStatus(c.ID, "bob", driver.StatusWaiting)
	f.noErr(err, "waiting on customer")
	if it.Status != driver.StatusWaiting {
		f.t.Fatalf("status %q, want waiting", it.Status)
	}
	if _, err := f.setStatus(c.ID, "bob", driver.StatusWaiting); err != nil {
		f.t.Fatalf("setting the status an item has: %v, want nil", err)
	}
	// The customer answers: mail is open again.
	f.noErr(f.d.AppendEmail(f.ctx, c.ID, f.mail()), "AppendEmail customer")
	if !f.getItem(c.ID).MailOpen {
		f.t.Fatal("a received mail after the answer did not open the mail")
	}
	_, err = f.setStatus(c.ID, "bob", driver.StatusClosed)
	f.wantDriverCode(err, driver.FailedPrecondition, "close with the customer's new mail open")
	before := f.getItem(c.ID).UpdatedAt
	time.Sleep(2 * time.Millisecond) // the store's clock moves on
	marked, err := f.work(c.ID, driver.WorkHandled, "bob")
	f.noErr(err, "handled mark by the owner")
	if got, err := f.d.GetCase(f.ctx, c.ID); err != nil || !got.UpdatedAt.After(before) || !got.UpdatedAt.Equal(marked.UpdatedAt) {
		f.t.Errorf("after the handled mark the case's UpdatedAt is %v (%v), the item's %v; want both the same, after %v",
			got.UpdatedAt, err, marked.UpdatedAt, before)
	}
	it, err = f.setStatus(c.ID, "bob", driver.StatusClosed)
	f.noErr(err, "close after the handled mark")
	if it.Status != driver.StatusClosed || it.MailOpen {
		f.t.Fatalf("closed item = %+v", it)
	}
	if got, err := f.d.GetCase(f.ctx, c.ID); err != nil || got.Status != driver.StatusClosed || got.ClosedAt.IsZero() {
		f.t.Fatalf("GetCase after close = %+v, %v; want closed with ClosedAt", got, err)
	}
	_, err = f.work(c.ID, driver.WorkRelease, "bob")
	f.wantDriverCode(err, driver.FailedPrecondition, "release of a closed item")
	it, err = f.setStatus(c.ID, "bob", driver.StatusInProgress)
	f.noErr(err, "reopen by the owner")
	if got, err := f.d.GetCase(f.ctx, c.ID); err != nil || !got.ClosedAt.IsZero() || it.Status != driver.StatusInProgress {
		f.t.Fatalf("GetCase after reopen = %+v, %v; want in progress without ClosedAt", got, err)
	}
	// A handled mark covers the mail filed before it, not after.
	f.noErr(f.d.AppendEmail(f.ctx, c.ID, f.mail()), "AppendEmail after the mark")
	if !f.getItem(c.ID).MailOpen {
		f.t.Fatal("a mail filed after the handled mark is not open")
	}
	// Cancelling needs no closed mail.
	it, err = f.setStatus(c.ID, "bob", driver.StatusCancelled)
	f.noErr(err, "cancel with open mail")
	if it.Status != driver.StatusCancelled {
		f.t.Fatalf("status %q, want cancelled", it.Status)
	}
}

func testWorklistList(f *fixture) {
	f.groupQueue("", "", "bob", "amy")
	a := f.createCase(f.mail())
	b := f.createCase(f.mail())
	d := f.createCase(f.mail())
	_, err := f.work(b.ID, driver.WorkAccept, "bob")
	f.noErr(err, "accept")
	_, err = f.work(d.ID, driver.WorkAccept, "amy")
	f.noErr(err, "accept")
	answer := f.mail()
	answer.Direction = driver.Outbound
	f.noErr(f.d.AppendEmail(f.ctx, d.ID, answer), "AppendEmail")
	_, err = f.setStatus(d.ID, "amy", driver.StatusClosed)
	f.noErr(err, "close")
	ids := func(fl driver.WorkItemFilter) []driver.CaseID {
		f.t.Helper()
		items, err := f.wl().ListWorkItems(f.ctx, &fl)
		f.noErr(err, "ListWorkItems")
		var out []driver.CaseID
		for _, it := range items {
			out = append(out, it.CaseID)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		f    driver.WorkItemFilter
		want []driver.CaseID
	}{
		{"queue (not done)", driver.WorkItemFilter{Queue: f.queue()}, []driver.CaseID{b.ID, a.ID}},
		{"queue with done", driver.WorkItemFilter{Queue: f.queue(), Done: true}, []driver.CaseID{d.ID, b.ID, a.ID}},
		{"group worklist", driver.WorkItemFilter{Queue: f.queue(), Unowned: true}, []driver.CaseID{a.ID}},
		{"agent's worklist", driver.WorkItemFilter{Owner: f.addr("bob")}, []driver.CaseID{b.ID}},
		{"status closed", driver.WorkItemFilter{Queue: f.queue(), Status: driver.StatusClosed}, []driver.CaseID{d.ID}},
		{"limit", driver.WorkItemFilter{Queue: f.queue(), Done: true, Limit: 2}, []driver.CaseID{d.ID, b.ID}},
		{"no such queue", driver.WorkItemFilter{Queue: f.queue() + "-none"}, nil},
	} {
		if got := ids(tc.f); !slices.Equal(got, tc.want) {
			f.t.Errorf("ListWorkItems %s = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// testWorklistEnqueueAsOwner: a reply is queued only for the item's owner,
// in one step with the ownership check; a key queued before returns its
// ID whoever owns the item now.
func testWorklistEnqueueAsOwner(f *fixture) {
	wo := f.d.(driver.WorkItemOutbox)
	f.groupQueue("", "boss", "bob", "amy")
	c := f.createCase(f.mail())
	msg := func() *driver.OutboxMessage {
		m := f.outMsg()
		m.CaseID = c.ID
		return m
	}
	queued := func() int {
		l, err := f.ob().ListOutbox(f.ctx, &driver.OutboxListOptions{CaseID: c.ID})
		f.noErr(err, "ListOutbox")
		return len(l)
	}
	_, err := wo.EnqueueAsOwner(f.ctx, c.ID, f.addr("bob"), msg())
	f.wantDriverCode(err, driver.PermissionDenied, "EnqueueAsOwner on an unowned item")
	_, err = f.work(c.ID, driver.WorkAccept, "bob")
	f.noErr(err, "accept")
	_, err = wo.EnqueueAsOwner(f.ctx, c.ID, f.addr("amy"), msg())
	f.wantDriverCode(err, driver.PermissionDenied, "EnqueueAsOwner by a member who is not the owner")
	_, err = wo.EnqueueAsOwner(f.ctx, c.ID, f.addr("boss"), msg())
	f.wantDriverCode(err, driver.PermissionDenied, "EnqueueAsOwner by the queue's owner")
	if n := queued(); n != 0 {
		f.t.Fatalf("refused replies queued %d messages", n)
	}
	m := msg()
	id, err := wo.EnqueueAsOwner(f.ctx, c.ID, f.addr("bob"), m)
	f.noErr(err, "EnqueueAsOwner by the owner")
	if got := f.outbox(id); got.Status != driver.OutboxPending || got.Key != m.Key || string(got.Raw) != string(m.Raw) {
		f.t.Fatalf("queued reply = %+v, want pending with the key and raw given", got)
	}
	// Ownership moves on: the same key returns its ID, a new one is refused.
	_, err = f.work(c.ID, driver.WorkRelease, "bob")
	f.noErr(err, "release")
	_, err = f.work(c.ID, driver.WorkAccept, "amy")
	f.noErr(err, "accept by amy")
	again, err := wo.EnqueueAsOwner(f.ctx, c.ID, f.addr("bob"), m)
	f.noErr(err, "EnqueueAsOwner of a key queued before")
	if again != id {
		f.t.Errorf("EnqueueAsOwner of a key queued before = %q, want %q", again, id)
	}
	_, err = wo.EnqueueAsOwner(f.ctx, c.ID, f.addr("bob"), msg())
	f.wantDriverCode(err, driver.PermissionDenied, "EnqueueAsOwner by the former owner")
	if n := queued(); n != 1 {
		f.t.Errorf("%d messages queued, want the owner's one", n)
	}
	_, err = wo.EnqueueAsOwner(f.ctx, "missing-"+driver.CaseID(f.tag), f.addr("amy"), msg())
	f.wantDriverCode(err, driver.NotFound, "EnqueueAsOwner on a missing case")

	// Concurrent changes of the item and replies of its two agents: the
	// replies are ordered with the changes, never an error but the refusal.
	var wg sync.WaitGroup
	for _, a := range []string{"bob", "amy"} {
		msgs := make([]*driver.OutboxMessage, 10) // made here: the fixture is not for concurrent use
		for i := range msgs {
			msgs[i] = msg()
		}
		addr := f.addr(a)
		wg.Go(func() {
			for _, m := range msgs {
				if _, err := wo.EnqueueAsOwner(f.ctx, c.ID, addr, m); err != nil && f.d.ErrorCode(err) != driver.PermissionDenied {
					f.t.Errorf("concurrent EnqueueAsOwner: %v", err)
				}
			}
		})
		wg.Go(func() {
			for range 10 {
				_, _ = f.work(c.ID, driver.WorkRelease, a)
				_, _ = f.work(c.ID, driver.WorkAccept, a)
			}
		})
	}
	wg.Wait()
}
