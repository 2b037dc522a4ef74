package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"

	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// Worklists (driver.Queues and driver.Worklist, schema v9). A work item is
// a case row: its queue, owner and status columns. Every change reads the
// row in a transaction, applies the rules, and writes with a conditional
// UPDATE on the values it read (owner = '' for an accept): when another
// transaction changed the row in between, the UPDATE matches no row, and
// the change is judged again on the row as it is now. So two concurrent
// accepts cannot both win, on any dialect: the row lock orders the two
// UPDATEs and the second finds the owner set.

var (
	_ driver.Queues   = (*store)(nil)
	_ driver.Worklist = (*store)(nil)
)

// maxWorkRetries bounds how often a change is judged again after losing
// its conditional UPDATE to a concurrent change.
const maxWorkRetries = 8

func (s *store) CreateQueue(ctx context.Context, q *driver.Queue) error {
	return s.w.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := s.on(tx).ExecContext(ctx, s.d.rebind(s.d.insertIgnore("queues", "name", "name", "owner", "address")),
			s.text(q.Name), s.text(q.Owner), s.text(q.Address))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return errorf(driver.AlreadyExists, "queue %q exists", q.Name)
		}
		for _, m := range q.Members {
			if err := s.addMember(ctx, tx, q.Name, m); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *store) addMember(ctx context.Context, tx *sql.Tx, queue, agent string) error {
	conflict := "queue_name, agent_hash"
	if s.d == MySQL {
		conflict = "agent_hash" // ON DUPLICATE KEY UPDATE agent_hash = agent_hash
	}
	_, err := s.on(tx).ExecContext(ctx, s.d.rebind(s.d.insertIgnore("queue_members", conflict, "queue_name", "agent_hash", "agent")),
		s.text(queue), hashOf(agent), s.text(agent))
	return err
}

// queueExists reports whether queue exists, in tx.
func (s *store) queueExists(ctx context.Context, tx *sql.Tx, queue string) (bool, error) {
	var n int
	err := s.on(tx).QueryRowContext(ctx, s.d.rebind(`SELECT COUNT(*) FROM queues WHERE name = ?`), s.text(queue)).Scan(&n)
	return n > 0, err
}

func (s *store) UpdateQueue(ctx context.Context, q *driver.Queue) error {
	return s.w.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		ok, err := s.queueExists(ctx, tx, q.Name)
		if err != nil {
			return err
		}
		if !ok {
			return errorf(driver.NotFound, "no queue %q", q.Name)
		}
		_, err = s.on(tx).ExecContext(ctx, s.d.rebind(`UPDATE queues SET owner = ?, address = ? WHERE name = ?`),
			s.text(q.Owner), s.text(q.Address), s.text(q.Name))
		return err
	})
}

func (s *store) ListQueues(ctx context.Context) ([]driver.Queue, error) {
	rows, err := s.on(nil).QueryContext(ctx, `SELECT name, owner, address FROM queues`)
	if err != nil {
		return nil, err
	}
	out := []driver.Queue{}
	at := map[string]int{}
	for rows.Next() {
		var q driver.Queue
		if err := rows.Scan(&q.Name, &q.Owner, &q.Address); err != nil {
			rows.Close()
			return nil, err
		}
		q.Members = []string{}
		at[q.Name] = len(out)
		out = append(out, q)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = s.on(nil).QueryContext(ctx, `SELECT queue_name, agent FROM queue_members`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var qn, a string
		if err := rows.Scan(&qn, &a); err != nil {
			return nil, err
		}
		if i, ok := at[qn]; ok {
			out[i].Members = append(out[i].Members, a)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		slices.Sort(out[i].Members) // byte order whatever the collation
	}
	slices.SortFunc(out, func(a, b driver.Queue) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (s *store) SetQueueMember(ctx context.Context, queue, agent string, member bool) error {
	return s.w.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		ok, err := s.queueExists(ctx, tx, queue)
		if err != nil {
			return err
		}
		if !ok {
			return errorf(driver.NotFound, "no queue %q", queue)
		}
		if member {
			return s.addMember(ctx, tx, queue, agent)
		}
		_, err = s.on(tx).ExecContext(ctx, s.d.rebind(`DELETE FROM queue_members WHERE queue_name = ? AND agent_hash = ?`),
			s.text(queue), hashOf(agent))
		return err
	})
}

// wlQueue is what a change needs to know of a queue.
type wlQueue struct {
	exists bool
	owner  string
}

func (s *store) wlQueue(ctx context.Context, q queryer, name string) (wlQueue, error) {
	var w wlQueue
	err := q.QueryRowContext(ctx, s.d.rebind(`SELECT owner FROM queues WHERE name = ?`), s.text(name)).Scan(&w.owner)
	if errors.Is(err, sql.ErrNoRows) {
		return w, nil
	}
	w.exists = err == nil
	return w, err
}

func (s *store) isMember(ctx context.Context, q queryer, queue, agent string) (bool, error) {
	var n int
	err := q.QueryRowContext(ctx, s.d.rebind(`SELECT COUNT(*) FROM queue_members WHERE queue_name = ? AND agent_hash = ?`),
		s.text(queue), hashOf(agent)).Scan(&n)
	return n > 0, err
}

// item reads the work item of case id through q.
func (s *store) item(ctx context.Context, q queryer, id int64) (driver.WorkItem, error) {
	c, _, err := scanCase(q.QueryRowContext(ctx, s.q.getCase, id))
	s.noteErr(err)
	if errors.Is(err, sql.ErrNoRows) {
		return driver.WorkItem{}, errorf(driver.NotFound, "no case %d", id)
	}
	if err != nil {
		return driver.WorkItem{}, err
	}
	return s.itemOf(ctx, q, c, id)
}

// itemOf completes the work item of case c (row id) with its open mail.
func (s *store) itemOf(ctx context.Context, q queryer, c driver.Case, id int64) (driver.WorkItem, error) {
	it := driver.WorkItem{CaseID: c.ID, Number: c.Number, Subject: c.Subject, Queue: c.Queue, Owner: c.Owner,
		Status: c.Status, UpdatedAt: c.UpdatedAt}
	var in, out, handled int64
	err := q.QueryRowContext(ctx, s.d.rebind(`SELECT
 COALESCE(MAX(CASE WHEN direction = 'inbound' THEN id END), 0),
 COALESCE(MAX(CASE WHEN direction = 'outbound' THEN id END), 0),
 COALESCE((SELECT handled_through FROM worklist_marks WHERE case_id = ?), 0)
 FROM interactions WHERE case_id = ? AND kind = 'email' AND auto = 0`), id, id).Scan(&in, &out, &handled)
	if err != nil {
		return it, err
	}
	it.MailOpen = in > out && in > handled
	return it, nil
}

func (s *store) GetWorkItem(ctx context.Context, id driver.CaseID) (driver.WorkItem, error) {
	n, ok := parseID(string(id))
	if !ok {
		return driver.WorkItem{}, errorf(driver.NotFound, "no case %q", id)
	}
	return s.item(ctx, s.on(nil), n)
}

func (s *store) ListWorkItems(ctx context.Context, f *driver.WorkItemFilter) ([]driver.WorkItem, error) {
	var where []string
	var args []any
	if f.Queue != "" {
		where, args = append(where, "queue = ?"), append(args, s.text(f.Queue))
	}
	if f.Owner != "" {
		where, args = append(where, "owner = ?"), append(args, s.text(f.Owner))
	}
	if f.Unowned {
		where = append(where, "owner = ''")
	}
	switch {
	case f.Status != "":
		where, args = append(where, "status = ?"), append(args, string(f.Status))
	case !f.Done:
		where = append(where, "status NOT IN ('closed', 'cancelled')")
	}
	q := `SELECT ` + caseCols + ` FROM cases`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY id DESC`
	if f.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	rows, err := s.on(nil).QueryContext(ctx, s.d.rebind(q), args...)
	if err != nil {
		return nil, err
	}
	type row struct {
		c  driver.Case
		id int64
	}
	var cs []row
	for rows.Next() {
		c, id, err := scanCase(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		cs = append(cs, row{c, id})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]driver.WorkItem, 0, len(cs))
	for _, r := range cs {
		it, err := s.itemOf(ctx, s.on(nil), r.c, r.id)
		if err != nil {
			return nil, err
		}
		out = append(out, it)
	}
	return out, nil
}

func (s *store) ChangeWorkItem(ctx context.Context, id driver.CaseID, ch *driver.WorkChange) (driver.WorkItem, error) {
	if ch.Agent == "" {
		return driver.WorkItem{}, errorf(driver.InvalidArgument, "a work item change needs an agent")
	}
	switch ch.Action {
	case driver.WorkAccept, driver.WorkRelease, driver.WorkReassign, driver.WorkHandled:
	case driver.WorkSetStatus:
		if !workStatus(ch.Status) {
			return driver.WorkItem{}, errorf(driver.InvalidArgument, "status %q cannot be set on a work item", ch.Status)
		}
	default:
		return driver.WorkItem{}, errorf(driver.InvalidArgument, "unknown work action %q", ch.Action)
	}
	n, ok := parseID(string(id))
	if !ok {
		return driver.WorkItem{}, errorf(driver.NotFound, "no case %q", id)
	}
	var out driver.WorkItem
	var refusal error // the rules' answer: returned, never rolled back with others
	err := s.w.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		refusal = nil
		for range maxWorkRetries {
			it, done, err := s.changeOnce(ctx, tx, n, ch)
			var se *Error
			if errors.As(err, &se) {
				refusal = err
				return nil
			}
			if err != nil {
				return err
			}
			if done {
				out = it
				return nil
			}
		}
		return errorf(driver.Unavailable, "case %d keeps changing; try again", n)
	})
	if err == nil {
		err = refusal
	}
	return out, err
}

// changeOnce judges ch on case n as it is now and writes it with a
// conditional UPDATE; done is false when the row changed meanwhile.
// Refusals are *Error values.
func (s *store) changeOnce(ctx context.Context, tx *sql.Tx, n int64, ch *driver.WorkChange) (driver.WorkItem, bool, error) {
	r := s.on(tx)
	it, err := s.item(ctx, r, n)
	if err != nil {
		return it, false, err
	}
	cur, err := s.wlQueue(ctx, r, it.Queue)
	if err != nil {
		return it, false, err
	}
	done := it.Status.IsClosed()
	queue, owner, status := it.Queue, it.Owner, it.Status
	switch ch.Action {
	case driver.WorkAccept:
		member, err := s.isMember(ctx, r, it.Queue, ch.Agent)
		switch {
		case err != nil:
			return it, false, err
		case !member:
			return it, false, errorf(driver.PermissionDenied, "%s is not a member of queue %q", ch.Agent, it.Queue)
		case done:
			return it, false, errorf(driver.FailedPrecondition, "case %d is %s", n, it.Status)
		case it.Owner == ch.Agent:
			return it, true, nil
		case it.Owner != "":
			return it, false, errorf(driver.AlreadyExists, "case %d is owned by another agent", n)
		}
		owner, status = ch.Agent, driver.NextWorkStatus(it.Status, true)
	case driver.WorkRelease:
		switch {
		case it.Owner == "" || done:
			return it, false, errorf(driver.FailedPrecondition, "case %d is not owned or is done", n)
		case ch.Agent != it.Owner && ch.Agent != cur.owner:
			return it, false, errorf(driver.PermissionDenied, "%s does not own case %d", ch.Agent, n)
		}
		owner, status = "", driver.NextWorkStatus(it.Status, false)
	case driver.WorkReassign:
		target, err := s.wlQueue(ctx, r, ch.Queue)
		if err != nil {
			return it, false, err
		}
		allowed := ch.Agent == cur.owner || ch.Agent == it.Owner
		if !allowed && it.Owner == "" {
			if allowed, err = s.isMember(ctx, r, it.Queue, ch.Agent); err != nil {
				return it, false, err
			}
		}
		if !allowed && it.Owner == "" && !cur.exists && target.exists {
			allowed = ch.Agent == target.owner
			if !allowed {
				if allowed, err = s.isMember(ctx, r, ch.Queue, ch.Agent); err != nil {
					return it, false, err
				}
			}
		}
		memberOK := true
		if ch.Member != "" && target.exists {
			if memberOK, err = s.isMember(ctx, r, ch.Queue, ch.Member); err != nil {
				return it, false, err
			}
		}
		switch {
		case !allowed:
			return it, false, errorf(driver.PermissionDenied, "%s may not reassign case %d", ch.Agent, n)
		case !target.exists:
			return it, false, errorf(driver.NotFound, "no queue %q", ch.Queue)
		case !memberOK:
			return it, false, errorf(driver.FailedPrecondition, "%s is not a member of queue %q", ch.Member, ch.Queue)
		case done:
			return it, false, errorf(driver.FailedPrecondition, "case %d is %s", n, it.Status)
		}
		queue, owner, status = ch.Queue, ch.Member, driver.NextWorkStatus(it.Status, ch.Member != "")
	case driver.WorkSetStatus, driver.WorkHandled:
		if it.Owner == "" || ch.Agent != it.Owner {
			return it, false, errorf(driver.PermissionDenied, "only the owner may modify case %d", n)
		}
		if ch.Action == driver.WorkHandled {
			return s.markHandled(ctx, tx, n, it)
		}
		if ch.Status == it.Status {
			return it, true, nil
		}
		if ch.Status == driver.StatusClosed && it.MailOpen {
			return it, false, errorf(driver.FailedPrecondition, "case %d has open mail: answer it or mark it handled first", n)
		}
		status = ch.Status
	}
	now := s.now()
	closedAt := "closed_at"
	var closedArgs []any
	switch {
	case status.IsClosed() && !it.Status.IsClosed():
		closedAt, closedArgs = "?", []any{nanos(now)}
	case !status.IsClosed():
		closedAt = "0"
	}
	q := `UPDATE cases SET queue = ?, owner = ?, status = ?, updated_at = ?, closed_at = ` + closedAt +
		` WHERE id = ? AND queue = ? AND owner = ? AND status = ?`
	args := append([]any{s.text(queue), s.text(owner), string(status), nanos(now)}, closedArgs...)
	args = append(args, n, s.text(it.Queue), s.text(it.Owner), string(it.Status))
	res, err := r.ExecContext(ctx, s.d.rebind(q), args...)
	if err != nil {
		return it, false, err
	}
	// A reassignment to the queue and owner the item has, in the clock
	// tick of its last change, sets the row to what it holds.
	if found, err := s.matched(ctx, r, res, `SELECT 1 FROM cases WHERE id = ? AND queue = ? AND owner = ? AND status = ?`+s.forUpdate(),
		n, s.text(it.Queue), s.text(it.Owner), string(it.Status)); err != nil || !found {
		return it, false, err // changed meanwhile: judge again
	}
	detail := "worklist " + string(ch.Action) + " by " + ch.Agent + ": queue=" + queue + " owner=" + owner + " status=" + string(status)
	if _, err := r.ExecContext(ctx, s.q.insertEvent, n, "updated", s.text(detail), nanos(now)); err != nil {
		return it, false, err
	}
	it.Queue, it.Owner, it.Status, it.UpdatedAt = queue, owner, status, now
	return it, true, nil
}

// markHandled records that the open mail of case n (item it) is handled:
// every mail filed so far. Like every change it moves updated_at, with a
// conditional UPDATE on the owner and status read, so an owner change
// committed meanwhile makes the mark judged again.
func (s *store) markHandled(ctx context.Context, tx *sql.Tx, n int64, it driver.WorkItem) (driver.WorkItem, bool, error) {
	r := s.on(tx)
	now := s.now()
	res, err := r.ExecContext(ctx, s.d.rebind(`UPDATE cases SET updated_at = ? WHERE id = ? AND queue = ? AND owner = ? AND status = ?`),
		nanos(now), n, s.text(it.Queue), s.text(it.Owner), string(it.Status))
	if err != nil {
		return it, false, err
	}
	// A mark in the clock tick of the case's last change leaves updated_at
	// as it is (see matched).
	if found, err := s.matched(ctx, r, res, `SELECT 1 FROM cases WHERE id = ? AND queue = ? AND owner = ? AND status = ?`+s.forUpdate(),
		n, s.text(it.Queue), s.text(it.Owner), string(it.Status)); err != nil || !found {
		return it, false, err // changed meanwhile: judge again
	}
	var last int64
	if err := r.QueryRowContext(ctx, s.d.rebind(`SELECT COALESCE(MAX(id), 0) FROM interactions WHERE case_id = ?`), n).Scan(&last); err != nil {
		return it, false, err
	}
	up := s.d.rebind(s.d.upsert("worklist_marks", "case_id", []string{"case_id", "handled_through"}, "handled_through"))
	if _, err := r.ExecContext(ctx, up, n, last); err != nil {
		return it, false, err
	}
	it.MailOpen, it.UpdatedAt = false, now
	return it, true, nil
}

var _ driver.WorkItemOutbox = (*store)(nil)

// EnqueueAsOwner queues m when agent owns case id, in one transaction: the
// case row is read with FOR UPDATE (SQLite has one writer) in the
// transaction that inserts the message, so ChangeWorkItem's conditional
// UPDATE of that row commits wholly before the check or waits until the
// message is queued (driver.WorkItemOutbox).
func (s *store) EnqueueAsOwner(ctx context.Context, id driver.CaseID, agent string, m *driver.OutboxMessage) (string, error) {
	n, ok := parseID(string(id))
	if !ok {
		return "", errorf(driver.NotFound, "no case %q", id)
	}
	var out string
	var refusal error // the rule's answer: returned, never rolled back with others
	err := s.w.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		out, refusal = "", nil
		r := s.on(tx)
		var qid int64
		err := r.QueryRowContext(ctx, s.d.rebind(`SELECT id FROM outbox WHERE key_hash = ?`), hashOf(m.Key)).Scan(&qid)
		if err == nil {
			out = fmtID(qid) // queued before
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		var owner string
		err = r.QueryRowContext(ctx, s.d.rebind(`SELECT owner FROM cases WHERE id = ?`+s.forUpdate()), n).Scan(&owner)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			refusal = errorf(driver.NotFound, "no case %d", n)
			return nil
		case err != nil:
			return err
		case owner == "" || owner != s.text(agent):
			refusal = errorf(driver.PermissionDenied, "%s does not own case %d", agent, n)
			return nil
		}
		out, err = s.enqueueTx(ctx, tx, m)
		return err
	})
	if err == nil {
		err = refusal
	}
	return out, err
}

// workStatus reports whether st may be set on a work item.
func workStatus(st driver.CaseStatus) bool {
	switch st {
	case driver.StatusOpen, driver.StatusInProgress, driver.StatusWaiting, driver.StatusClosed, driver.StatusCancelled:
		return true
	}
	return false
}
