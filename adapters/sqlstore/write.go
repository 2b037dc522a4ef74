package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// Every write runs through the group committer (s.w.do): the function may
// share its transaction with other callers' writes and may run twice (see
// txFunc), so it assigns its results from what it does in tx.

func (s *store) CreateContact(ctx context.Context, c *driver.NewContact) (driver.Contact, error) {
	if c.Email == "" {
		return driver.Contact{}, errorf(driver.InvalidArgument, "contact without address")
	}
	var out driver.Contact
	err := s.w.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		id, err := s.insertID(ctx, s.on(tx), s.q.insertContact, s.text(c.Name), s.text(c.Email), hashOf(c.Email),
			s.text(c.AccountID), b2i(c.Placeholder), b2i(c.Internal), s.text(c.SupportLevel), nanos(s.now()))
		if err != nil {
			return err
		}
		out = driver.Contact{ID: kindID("contact", id), Name: c.Name, Email: c.Email, AccountID: c.AccountID,
			Placeholder: c.Placeholder, Internal: c.Internal, SupportLevel: c.SupportLevel}
		return nil
	})
	return out, err
}

func (s *store) CreateAccount(ctx context.Context, a *driver.NewAccount) (driver.Account, error) {
	var out driver.Account
	err := s.w.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		id, err := s.insertID(ctx, s.on(tx), s.q.insertAccount, s.text(a.Name), s.text(a.SupportLevel), nanos(s.now()))
		if err != nil {
			return err
		}
		for i, d := range a.Domains {
			if _, err := s.on(tx).ExecContext(ctx, s.q.insertAccountDomain, id, i, s.text(d), hashOf(d)); err != nil {
				return err
			}
		}
		out = driver.Account{ID: kindID("account", id), Name: a.Name, Domains: slices.Clone(a.Domains), SupportLevel: a.SupportLevel}
		return nil
	})
	return out, err
}

func (s *store) CreateEmployee(ctx context.Context, e *driver.NewEmployee) (driver.Employee, error) {
	if e.Email == "" {
		return driver.Employee{}, errorf(driver.InvalidArgument, "employee without address")
	}
	var out driver.Employee
	err := s.w.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := s.on(tx).ExecContext(ctx, s.q.insertEmployee, s.text(e.Name), s.text(e.Email), hashOf(e.Email), b2i(e.Active), nanos(s.now()))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return errorf(driver.AlreadyExists, "employee %q exists", e.Email)
		}
		var id int64
		if err := s.on(tx).QueryRowContext(ctx, s.q.findEmployee, hashOf(e.Email)).Scan(&id, new(string), new(string), new(int)); err != nil {
			return err
		}
		out = driver.Employee{ID: kindID("employee", id), Name: e.Name, Email: e.Email, Active: e.Active}
		return nil
	})
	return out, err
}

// claimKey records an idempotency key in tx with the content fingerprint
// of the mail filed under it (NULL for none). It reports false when the key
// was already recorded (committed, or earlier in the same transaction): a
// concurrent filer of the same key waits on the unique index until the
// first commits, so a key is filed exactly once.
func (s *store) claimKey(ctx context.Context, tx *sql.Tx, key string, caseID sql.NullInt64, now int64, fingerprint string) (bool, error) {
	fp := sql.NullString{String: fingerprint, Valid: fingerprint != ""}
	res, err := s.on(tx).ExecContext(ctx, s.q.insertProcessed, hashOf(key), []byte(key), caseID, now, fp)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

func (s *store) CreateCase(ctx context.Context, req *driver.NewCase) (driver.Case, error) {
	c, _, err := s.createCase(ctx, req, nil)
	return c, err
}

// CreateCaseQueue creates a case and queues then's messages in its
// transaction (driver.OutboxFiler).
func (s *store) CreateCaseQueue(ctx context.Context, req *driver.NewCase, then func(driver.Case) ([]*driver.OutboxMessage, error)) (driver.Case, []string, error) {
	return s.createCase(ctx, req, func(c driver.Case) ([]*driver.OutboxMessage, []*driver.EventRecord, error) {
		msgs, err := then(c)
		return msgs, nil, err
	})
}

// createCase creates the case of req; then (nil for none) composes the
// messages and events kept in its transaction (see CreateCaseEvents in
// events.go).
func (s *store) createCase(ctx context.Context, req *driver.NewCase, then func(driver.Case) ([]*driver.OutboxMessage, []*driver.EventRecord, error)) (driver.Case, []string, error) {
	if req.First == nil || req.First.IdempotencyKey == "" {
		return driver.Case{}, nil, errorf(driver.InvalidArgument, "a case needs a first mail with an idempotency key")
	}
	// The contact's address joins the participants (a placeholder's never
	// does). Contacts never change once committed, so it is read outside
	// the transaction (from the cache or the pool) and the writer
	// everybody waits for runs one statement less; a contact not committed
	// yet is read in the transaction.
	contactAddr, contactKnown, err := s.contactEmail(ctx, req.ContactID)
	if err != nil {
		return driver.Case{}, nil, err
	}
	rb := s.prepareRaw(req.First.Raw) // compressed here, not in the shared transaction
	var (
		out driver.Case
		ids []string
	)
	err = s.w.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		ids = nil
		now := s.now()
		nn := nanos(now)
		key := req.First.IdempotencyKey
		c := driver.Case{
			Subject: req.Subject, Status: req.Status, Priority: req.Priority, Queue: req.Queue,
			Origin: req.Origin, Category: req.Category, ContactID: req.ContactID, AccountID: req.AccountID,
			ParentID: req.ParentID, LinkedID: req.LinkedID, CreatedAt: now, UpdatedAt: now,
		}
		// Subject, Status and Priority arrive filled (mailcase.Store's defaults).
		if c.Status.IsClosed() {
			c.ClosedAt = now
		}
		id, err := s.insertID(ctx, s.on(tx), s.q.insertCase, s.text(c.Subject), string(c.Status), string(c.Priority),
			s.text(c.Queue), s.text(c.Origin), s.text(c.Category), s.text(c.ContactID), s.text(c.AccountID),
			s.text(string(c.ParentID)), s.text(string(c.LinkedID)), nn, nn, nanos(c.ClosedAt))
		if err != nil {
			return err
		}
		// The key is claimed with the new case's ID (one statement instead
		// of a claim and an update). When it was claimed before (a
		// redelivery racing the first filing), the case row is taken back.
		fresh, err := s.claimKey(ctx, tx, key, sql.NullInt64{Int64: id, Valid: true}, nn, req.First.Fingerprint)
		if err != nil {
			return err
		}
		if !fresh {
			if err := s.dropNewCase(ctx, tx, id); err != nil {
				return err
			}
			var cid sql.NullInt64
			if err := s.on(tx).QueryRowContext(ctx, s.q.processedCase, hashOf(key)).Scan(&cid); err != nil {
				return err
			}
			if !cid.Valid {
				return errorf(driver.AlreadyExists, "mail %q was already filed on no case", key)
			}
			out, err = s.getCase(ctx, s.on(tx), cid.Int64)
			return err
		}
		c.ID, c.Number = driver.CaseID(fmtID(id)), fmtID(id)
		var parts []string
		if contactKnown {
			if contactAddr != "" {
				parts = append(parts, contactAddr)
			}
		} else if cid, ok := parseKindID("contact", c.ContactID); ok {
			var (
				email string
				ph    int
			)
			err := s.on(tx).QueryRowContext(ctx, s.q.contactEmail, cid).Scan(&email, &ph)
			if err == nil && ph == 0 {
				parts = append(parts, email)
			} else if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		if req.Description != "" {
			if _, err := s.insertID(ctx, s.on(tx), s.q.insertInteraction, noteArgs(s, id, c.ContactID, c.AccountID,
				&driver.Note{Author: "system", Body: req.Description, CreatedAt: now}, nil, nn)...); err != nil {
				return err
			}
		}
		p, err := s.fileEmail(ctx, tx, id, c.ContactID, c.AccountID, req.First, nn, parts, rb)
		if err != nil {
			return err
		}
		c.Participants = p
		if then != nil {
			msgs, events, err := then(c)
			if err != nil {
				return &thenError{err}
			}
			for _, m := range msgs {
				if m == nil {
					continue
				}
				id, err := s.enqueueTx(ctx, tx, m)
				if err != nil {
					return err
				}
				ids = append(ids, id)
			}
			if err := s.appendEventsTx(ctx, tx, events); err != nil {
				return err
			}
		}
		out = c
		return nil
	})
	var te *thenError
	if errors.As(err, &te) {
		return driver.Case{}, nil, te.err
	}
	return out, ids, err
}

// thenError carries the error of CreateCaseQueue's callback through the
// transaction, so it comes back as the callback returned it.
type thenError struct{ err error }

func (e *thenError) Error() string { return e.err.Error() }
func (e *thenError) Unwrap() error { return e.err }

// fileEmail inserts e (with its attachments) as an interaction; when
// caseID is positive it also adds e's addresses (and extra) to the case's
// participants, returning them sorted, and touches the case.
func (s *store) fileEmail(ctx context.Context, tx *sql.Tx, caseID int64, contactID, accountID string, e *driver.Email, now int64, extra []string, rb *rawBlob) ([]string, error) {
	var cid sql.NullInt64
	if caseID > 0 {
		cid = sql.NullInt64{Int64: caseID, Valid: true}
	}
	iid, err := s.insertID(ctx, s.on(tx), s.q.insertInteraction, emailArgs(s, cid, contactID, accountID, e, now)...)
	if err != nil {
		return nil, err
	}
	if len(e.Attachments) > 0 {
		if err := s.insertAttachments(ctx, tx, iid, e.Attachments); err != nil {
			return nil, err
		}
	}
	if rb != nil {
		// In the filing's transaction; the caller filed a fresh key, so a
		// duplicate never gets here (and the insert ignores a second row).
		if err := s.putRaw(ctx, tx, e.IdempotencyKey, sql.NullInt64{Int64: iid, Valid: true}, rb, now); err != nil {
			return nil, err
		}
	}
	if caseID <= 0 {
		return nil, nil
	}
	if refs := driver.IndexedReferences(e); len(refs) > 0 {
		// At most driver.MaxIndexedReferences rows of 2 parameters: one
		// statement, in the filing's transaction.
		args := make([]any, 0, 2*len(refs))
		for _, r := range refs {
			args = append(args, hashOf(r), iid)
		}
		q := `INSERT INTO interaction_refs (ref_hash, interaction_id) VALUES ` + valuesRows(len(refs), 2)
		if _, err := s.on(tx).ExecContext(ctx, s.d.rebind(q), args...); err != nil {
			return nil, err
		}
	}
	addrs := append([]string{}, extra...)
	if !e.NoParticipants {
		for _, a := range append(append([]driver.Address{e.From}, e.To...), e.Cc...) {
			if a.Email != "" {
				addrs = append(addrs, a.Email)
			}
		}
	}
	slices.Sort(addrs)
	addrs = slices.Compact(addrs)
	if len(addrs) > 0 {
		const cols = 3
		for start := 0; start < len(addrs); start += maxParams / cols {
			chunk := addrs[start:min(start+maxParams/cols, len(addrs))]
			args := make([]any, 0, len(chunk)*cols)
			for _, a := range chunk {
				args = append(args, caseID, hashOf(a), s.text(a))
			}
			q := `INSERT INTO case_participants (case_id, address_hash, address) VALUES ` + valuesRows(len(chunk), cols)
			if s.d == MySQL {
				q += ` ON DUPLICATE KEY UPDATE case_id = case_id`
			} else {
				q += ` ON CONFLICT (case_id, address_hash) DO NOTHING`
			}
			if _, err := s.on(tx).ExecContext(ctx, s.d.rebind(q), args...); err != nil {
				return nil, err
			}
		}
	}
	return addrs, nil
}

func (s *store) insertAttachments(ctx context.Context, tx *sql.Tx, iid int64, atts []driver.Attachment) error {
	const cols = 8
	for start := 0; start < len(atts); start += 16 { // 16 rows a statement: large blobs stay under packet limits
		chunk := atts[start:min(start+16, len(atts))]
		args := make([]any, 0, len(chunk)*cols)
		for i, a := range chunk {
			data := a.Data
			if data == nil {
				data = []byte{}
			}
			args = append(args, iid, start+i, s.text(a.Filename), s.text(a.ContentType), s.text(a.ContentID), b2i(a.Inline), a.Size, data)
		}
		q := `INSERT INTO attachments (interaction_id, position, filename, content_type, content_id, inline, size, data) VALUES ` + valuesRows(len(chunk), cols)
		if _, err := s.on(tx).ExecContext(ctx, s.d.rebind(q), args...); err != nil {
			return err
		}
	}
	return nil
}

// emailArgs returns the insertInteraction arguments of a mail.
func emailArgs(s *store, caseID sql.NullInt64, contactID, accountID string, e *driver.Email, now int64) []any {
	var msgHash any
	if e.MessageID != "" {
		msgHash = hashOf(e.MessageID)
	}
	var reply any // NULL when equal to the text: most mail has no quoted history
	if e.ReplyText != e.Text {
		reply = s.text(e.ReplyText)
	}
	sent := ""
	if !e.Date.IsZero() {
		sent = e.Date.Format(time.RFC3339Nano)
	}
	return []any{
		string(driver.KindEmail), caseID, s.text(contactID), s.text(accountID), []byte(e.IdempotencyKey),
		s.text(e.Mailbox), string(e.Direction), s.text(e.MessageID), msgHash,
		encodeJSON(e.InReplyTo), encodeJSON(e.References), s.text(e.From.Name), s.text(e.From.Email),
		encodeJSON(e.To), encodeJSON(e.Cc), s.text(e.Subject), sent, s.text(e.Text), reply, s.text(e.HTML),
		b2i(e.Auto), b2i(e.Summary), "", "", 0, 0, now, problemsArg(s, e.Problems),
	}
}

// noteArgs returns the insertInteraction arguments of a note.
func noteArgs(s *store, caseID int64, contactID, accountID string, n *driver.Note, key []byte, now int64) []any {
	return []any{
		string(driver.KindNote), caseID, s.text(contactID), s.text(accountID), key,
		"", "", "", nil, "", "", "", "", "", "", "", "", "", nil, "",
		0, 0, s.text(n.Author), s.text(n.Body), b2i(n.Public), nanos(n.CreatedAt), now, nil,
	}
}

// caseRef reads the contact, account and status of case id in tx, or
// NotFound.
func (s *store) caseRef(ctx context.Context, q queryer, id int64) (contactID, accountID, status string, err error) {
	err = q.QueryRowContext(ctx, s.q.caseRef, id).Scan(&contactID, &accountID, &status)
	if errors.Is(err, sql.ErrNoRows) {
		err = errorf(driver.NotFound, "no case %d", id)
	}
	return
}

// dropNewCase deletes case id, just inserted in tx and holding nothing
// yet. On SQLite the case number is given back too (the writer holds the
// database lock, so no later case exists); PostgreSQL sequences and MySQL
// auto-increments never give numbers back (as after any rollback).
func (s *store) dropNewCase(ctx context.Context, tx *sql.Tx, id int64) error {
	if _, err := s.on(tx).ExecContext(ctx, s.q.deleteCase, id); err != nil {
		return err
	}
	if s.d == SQLite {
		if _, err := s.on(tx).ExecContext(ctx, `UPDATE sqlite_sequence SET seq = ? WHERE name = 'cases' AND seq = ?`, id-1, id); err != nil {
			return err
		}
	}
	return nil
}

// touchCaseRef sets the update time of case id in tx and returns its
// contact and account, or NotFound: one statement where the dialect has
// UPDATE ... RETURNING.
func (s *store) touchCaseRef(ctx context.Context, tx *sql.Tx, id, now int64) (contactID, accountID string, err error) {
	if s.q.touchCaseRef == "" {
		if contactID, accountID, _, err = s.caseRef(ctx, s.on(tx), id); err != nil {
			return "", "", err
		}
		_, err = s.on(tx).ExecContext(ctx, s.q.touchCase, now, id)
		return contactID, accountID, err
	}
	err = s.on(tx).QueryRowContext(ctx, s.q.touchCaseRef, now, id).Scan(&contactID, &accountID)
	if errors.Is(err, sql.ErrNoRows) {
		err = errorf(driver.NotFound, "no case %d", id)
	}
	return contactID, accountID, err
}

// contactEmail returns the address the contact with ID contactID adds to
// a case's participants as committed ("" for a placeholder contact, which
// stands for many senders), and false when contactID names no committed
// contact. Addresses are cached (see addrCache).
func (s *store) contactEmail(ctx context.Context, contactID string) (string, bool, error) {
	id, ok := parseKindID("contact", contactID)
	if !ok {
		return "", false, nil
	}
	email, ok, gen := s.contacts.get(id)
	if ok {
		return email, true, nil
	}
	var ph int
	err := s.on(nil).QueryRowContext(ctx, s.q.contactEmail, id).Scan(&email, &ph)
	s.noteErr(err)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	if ph != 0 {
		email = ""
	}
	s.contacts.put(id, email, gen)
	return email, true, nil
}

func (s *store) AppendEmail(ctx context.Context, id driver.CaseID, e *driver.Email) error {
	_, err := s.appendEmail(ctx, id, e, nil)
	return err
}

// appendEmail files e on case id with events (nil for none) in its
// transaction (see AppendEmailEvents in events.go); filed is false for a
// mail filed before.
func (s *store) appendEmail(ctx context.Context, id driver.CaseID, e *driver.Email, events []*driver.EventRecord) (filed bool, err error) {
	if e.IdempotencyKey == "" {
		return false, errorf(driver.InvalidArgument, "mail without idempotency key")
	}
	n, okID := parseID(string(id))
	rb := s.prepareRaw(e.Raw)
	err = s.w.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		nn := nanos(s.now())
		var cid sql.NullInt64
		if okID {
			cid = sql.NullInt64{Int64: n, Valid: true}
		}
		fresh, err := s.claimKey(ctx, tx, e.IdempotencyKey, cid, nn, e.Fingerprint)
		filed = fresh
		if err != nil || !fresh {
			return err // filed once, filed forever
		}
		if !okID {
			return errorf(driver.NotFound, "no case %q", id)
		}
		contactID, accountID, err := s.touchCaseRef(ctx, tx, n, nn)
		if err != nil {
			return err
		}
		if _, err := s.fileEmail(ctx, tx, n, contactID, accountID, e, nn, nil, rb); err != nil {
			return err
		}
		return s.appendEventsTx(ctx, tx, events)
	})
	return filed && err == nil, err
}

func (s *store) AddNote(ctx context.Context, id driver.CaseID, note *driver.Note) error {
	n, ok := parseID(string(id))
	if !ok {
		return errorf(driver.NotFound, "no case %q", id)
	}
	return s.w.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		now := s.now()
		nn := nanos(now)
		contactID, accountID, _, err := s.caseRef(ctx, s.on(tx), n)
		if err != nil {
			return err
		}
		var key []byte
		if note.IdempotencyKey != "" {
			// Note keys live apart from mail keys (memstore semantics).
			fresh, err := s.claimKey(ctx, tx, "note\x00"+note.IdempotencyKey, sql.NullInt64{Int64: n, Valid: true}, nn, "")
			if err != nil || !fresh {
				return err
			}
			key = []byte(note.IdempotencyKey)
		}
		nc := *note
		if nc.CreatedAt.IsZero() {
			nc.CreatedAt = now
		}
		if _, err := s.insertID(ctx, s.on(tx), s.q.insertInteraction, noteArgs(s, n, contactID, accountID, &nc, key, nn)...); err != nil {
			return err
		}
		_, err = s.on(tx).ExecContext(ctx, s.q.touchCase, nn, n)
		return err
	})
}

func (s *store) UpdateCase(ctx context.Context, id driver.CaseID, u *driver.CaseUpdate) (driver.Case, error) {
	n, ok := parseID(string(id))
	if !ok {
		return driver.Case{}, errorf(driver.NotFound, "no case %q", id)
	}
	if u.Status != nil && *u.Status == "" || u.Priority != nil && *u.Priority == "" {
		return driver.Case{}, errorf(driver.InvalidArgument, "empty status or priority")
	}
	var out driver.Case
	err := s.w.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		now := s.now()
		c, err := s.getCase(ctx, s.on(tx), n)
		if err != nil {
			return err
		}
		var changes []string
		if u.Status != nil {
			switch closing := u.Status.IsClosed(); {
			case closing && !c.Status.IsClosed():
				c.ClosedAt = now
			case !closing:
				c.ClosedAt = time.Time{} // reopened
			}
			c.Status = *u.Status
			changes = append(changes, "status="+string(c.Status))
		}
		if u.Priority != nil {
			c.Priority = *u.Priority
			changes = append(changes, "priority="+string(c.Priority))
		}
		if u.Queue != nil {
			c.Queue = *u.Queue
			changes = append(changes, "queue="+c.Queue)
		}
		if u.Owner != nil {
			c.Owner = *u.Owner
			changes = append(changes, "owner="+c.Owner)
		}
		c.UpdatedAt = now
		if _, err := s.on(tx).ExecContext(ctx, s.q.updateCase, string(c.Status), string(c.Priority), s.text(c.Queue), s.text(c.Owner),
			nanos(now), nanos(c.ClosedAt), n); err != nil {
			return err
		}
		if _, err := s.on(tx).ExecContext(ctx, s.q.insertEvent, n, "updated", s.text(strings.Join(changes, " ")), nanos(now)); err != nil {
			return err
		}
		out = c
		return nil
	})
	return out, err
}

func (s *store) RecordInteraction(ctx context.Context, in *driver.Interaction) error {
	if in.Email == nil || in.Email.IdempotencyKey == "" {
		return errorf(driver.InvalidArgument, "an interaction needs a mail with an idempotency key")
	}
	rb := s.prepareRaw(in.Email.Raw)
	return s.w.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		nn := nanos(s.now())
		if !in.CreatedAt.IsZero() {
			nn = nanos(in.CreatedAt)
		}
		var cid sql.NullInt64
		if n, ok := parseID(string(in.CaseID)); ok {
			cid = sql.NullInt64{Int64: n, Valid: true}
		}
		fresh, err := s.claimKey(ctx, tx, in.Email.IdempotencyKey, cid, nn, in.Email.Fingerprint)
		if err != nil || !fresh {
			return err
		}
		_, err = s.fileEmail(ctx, tx, 0, in.ContactID, in.AccountID, in.Email, nn, nil, rb)
		return err
	})
}

// ---- Quarantiner and StateStore writes ----

func (s *store) PutQuarantine(ctx context.Context, q *driver.QuarantineItem) (string, error) {
	var out string
	err := s.w.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		at := q.CreatedAt
		if at.IsZero() {
			at = s.now()
		}
		raw := q.Raw
		if raw == nil {
			raw = []byte{}
		}
		id, err := s.insertID(ctx, s.on(tx), s.q.insertQuarantine, s.text(q.Mailbox), []byte(q.Key), s.text(q.Reason), q.Attempts, raw, nanos(at))
		if err != nil {
			return err
		}
		out = fmtID(id)
		return nil
	})
	return out, err
}

func (s *store) DeleteQuarantine(ctx context.Context, id string) error {
	n, ok := parseID(id)
	if !ok {
		return errorf(driver.NotFound, "no quarantined mail %q", id)
	}
	return s.w.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := s.on(tx).ExecContext(ctx, s.q.deleteQuarantine, n)
		if err != nil {
			return err
		}
		if k, err := res.RowsAffected(); err != nil {
			return err
		} else if k == 0 {
			return errorf(driver.NotFound, "no quarantined mail %q", id)
		}
		return nil
	})
}

func (s *store) PutState(ctx context.Context, key string, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	v := slices.Clone(value)
	return s.w.do(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := s.on(tx).ExecContext(ctx, s.q.putState, hashOf(key), []byte(key), v, nanos(s.now()))
		return err
	})
}
