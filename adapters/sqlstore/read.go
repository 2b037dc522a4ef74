package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// ---- directory ----

func (s *store) FindContacts(ctx context.Context, email string) ([]driver.Contact, error) {
	rows, err := s.on(nil).QueryContext(ctx, s.q.findContacts, hashOf(email))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []driver.Contact{}
	for rows.Next() {
		var c driver.Contact
		var id int64
		var ph, in int
		if err := rows.Scan(&id, &c.Name, &c.Email, &c.AccountID, &ph, &in, &c.SupportLevel); err != nil {
			return nil, err
		}
		c.ID, c.Placeholder, c.Internal = kindID("contact", id), ph != 0, in != 0
		out = append(out, c)
	}
	return out, rows.Err()
}

func (s *store) FindAccounts(ctx context.Context, domain string) ([]driver.Account, error) {
	rows, err := s.on(nil).QueryContext(ctx, s.q.findAccounts, hashOf(domain))
	if err != nil {
		return nil, err
	}
	out := []driver.Account{}
	var ids []int64
	for rows.Next() {
		var a driver.Account
		var id int64
		if err := rows.Scan(&id, &a.Name, &a.SupportLevel); err != nil {
			rows.Close()
			return nil, err
		}
		a.ID = kindID("account", id)
		ids = append(ids, id)
		out = append(out, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i, id := range ids {
		ds, err := s.accountDomains(ctx, s.on(nil), id)
		if err != nil {
			return nil, err
		}
		out[i].Domains = ds
	}
	return out, nil
}

func (s *store) accountDomains(ctx context.Context, q queryer, id int64) ([]string, error) {
	rows, err := q.QueryContext(ctx, s.q.accountDomains, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

func (s *store) FindEmployee(ctx context.Context, email string) (driver.Employee, error) {
	var e driver.Employee
	var id int64
	var active int
	err := s.on(nil).QueryRowContext(ctx, s.q.findEmployee, hashOf(email)).Scan(&id, &e.Name, &e.Email, &active)
	s.noteErr(err)
	if errors.Is(err, sql.ErrNoRows) {
		return e, errorf(driver.NotFound, "no employee %q", email)
	}
	if err != nil {
		return e, err
	}
	e.ID, e.Active = kindID("employee", id), active != 0
	return e, nil
}

// ---- cases ----

type scanner interface{ Scan(dest ...any) error }

func scanCase(r scanner) (driver.Case, int64, error) {
	var c driver.Case
	var id, created, updated, closed int64
	var status, priority string
	err := r.Scan(&id, &c.Subject, &status, &priority, &c.Queue, &c.Owner, &c.Origin, &c.Category,
		&c.ContactID, &c.AccountID, &c.ParentID, &c.LinkedID, &created, &updated, &closed)
	if err != nil {
		return c, 0, err
	}
	c.ID = driver.CaseID(fmtID(id))
	c.Number = fmtID(id)
	c.Status, c.Priority = driver.CaseStatus(status), driver.Priority(priority)
	c.CreatedAt, c.UpdatedAt, c.ClosedAt = fromNanos(created), fromNanos(updated), fromNanos(closed)
	return c, id, nil
}

// getCase reads case id with its participants through q (the pool or a
// transaction).
func (s *store) getCase(ctx context.Context, q queryer, id int64) (driver.Case, error) {
	c, _, err := scanCase(q.QueryRowContext(ctx, s.q.getCase, id))
	s.noteErr(err)
	if errors.Is(err, sql.ErrNoRows) {
		return c, errorf(driver.NotFound, "no case %d", id)
	}
	if err != nil {
		return c, err
	}
	c.Participants, err = s.participants(ctx, q, id)
	return c, err
}

func (s *store) participants(ctx context.Context, q queryer, id int64) ([]string, error) {
	rows, err := q.QueryContext(ctx, s.q.caseParticipants, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	slices.Sort(out) // byte order whatever the database collation
	return out, rows.Err()
}

func (s *store) GetCase(ctx context.Context, id driver.CaseID) (driver.Case, error) {
	n, ok := parseID(string(id))
	if !ok {
		return driver.Case{}, errorf(driver.NotFound, "no case %q", id)
	}
	return s.getCase(ctx, s.on(nil), n)
}

// FindCaseByNumber finds a case by its human number, which is its ID
// (leading zeros are ignored).
func (s *store) FindCaseByNumber(ctx context.Context, number string) (driver.Case, error) {
	n, ok := parseID(number)
	if !ok {
		return driver.Case{}, errorf(driver.NotFound, "no case number %q", number)
	}
	return s.getCase(ctx, s.on(nil), n)
}

// maxParams bounds the parameters of one IN list (SQLite allows 32766,
// PostgreSQL 65535, MySQL 65535; stay far below).
const maxParams = 500

// LookupReference implements driver.ReferenceFinder: the case of the
// earliest interaction on a case that refers to one of ids, the last ID
// preferred.
func (s *store) LookupReference(ctx context.Context, ids []string) (driver.Case, error) {
	found := map[string]int64{}
	hashes := make([]string, len(ids))
	for i, id := range ids {
		hashes[i] = hashOf(id)
	}
	for start := 0; start < len(hashes); start += maxParams {
		chunk := hashes[start:min(start+maxParams, len(hashes))]
		args := make([]any, len(chunk))
		for i, h := range chunk {
			args[i] = h
		}
		q := s.d.rebind(`SELECT r.ref_hash, i.case_id FROM interaction_refs r JOIN interactions i ON i.id = r.interaction_id
			WHERE i.case_id IS NOT NULL AND r.ref_hash IN (` + placeholders(len(chunk)) + `) ORDER BY r.interaction_id`)
		if err := s.scanFirstCases(ctx, q, args, found); err != nil {
			return driver.Case{}, err
		}
	}
	for i := len(hashes) - 1; i >= 0; i-- { // the last ID is the most specific
		if cid, ok := found[hashes[i]]; ok {
			return s.getCase(ctx, s.on(nil), cid)
		}
	}
	return driver.Case{}, errorf(driver.NotFound, "no filed mail refers to any of %d Message-IDs", len(ids))
}

// scanFirstCases runs q, whose rows are (hash, case ID) in filing order,
// and keeps in found the first case of each hash not yet in it.
func (s *store) scanFirstCases(ctx context.Context, q string, args []any, found map[string]int64) error {
	rows, err := s.on(nil).QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var h string
		var cid int64
		if err := rows.Scan(&h, &cid); err != nil {
			return err
		}
		if _, ok := found[h]; !ok {
			found[h] = cid
		}
	}
	return rows.Err()
}

func (s *store) LookupThread(ctx context.Context, ids []string) (driver.Case, error) {
	// First filing wins: the earliest interaction holding a Message-ID.
	found := map[string]int64{}
	hashes := make([]string, len(ids))
	for i, id := range ids {
		hashes[i] = hashOf(id)
	}
	for start := 0; start < len(hashes); start += maxParams {
		chunk := hashes[start:min(start+maxParams, len(hashes))]
		args := make([]any, len(chunk))
		for i, h := range chunk {
			args[i] = h
		}
		q := s.d.rebind(`SELECT message_id_hash, case_id FROM interactions WHERE case_id IS NOT NULL AND message_id_hash IN (` +
			placeholders(len(chunk)) + `) ORDER BY id`)
		if err := s.scanFirstCases(ctx, q, args, found); err != nil {
			return driver.Case{}, err
		}
	}
	for i := len(hashes) - 1; i >= 0; i-- { // the last ID is the most specific
		if cid, ok := found[hashes[i]]; ok {
			return s.getCase(ctx, s.on(nil), cid)
		}
	}
	return driver.Case{}, errorf(driver.NotFound, "no case holds any of %d Message-IDs", len(ids))
}

func (s *store) CaseURL(ctx context.Context, id driver.CaseID) (string, error) {
	n, ok := parseID(string(id))
	if !ok {
		return "", errorf(driver.NotFound, "no case %q", id)
	}
	var x string
	err := s.on(nil).QueryRowContext(ctx, s.q.caseRef, n).Scan(&x, &x, &x)
	if errors.Is(err, sql.ErrNoRows) {
		return "", errorf(driver.NotFound, "no case %q", id)
	}
	if err != nil {
		return "", err
	}
	return s.urlBase + fmtID(n), nil
}

func (s *store) LookupProcessed(ctx context.Context, key string) (driver.Processed, error) {
	var cid sql.NullInt64
	var at int64
	var fp sql.NullString
	err := s.on(nil).QueryRowContext(ctx, s.q.lookupProcessed, hashOf(key)).Scan(&cid, &at, &fp)
	s.noteErr(err)
	if errors.Is(err, sql.ErrNoRows) {
		return driver.Processed{}, errorf(driver.NotFound, "key %q was never filed", key)
	}
	if err != nil {
		return driver.Processed{}, err
	}
	p := driver.Processed{Key: key, At: fromNanos(at), Fingerprint: fp.String}
	if cid.Valid {
		p.CaseID = driver.CaseID(fmtID(cid.Int64))
	}
	return p, nil
}

// ---- Lister ----

// ListCases lists cases newest first (see driver.Lister).
func (s *store) ListCases(ctx context.Context, opts *driver.ListOptions) ([]driver.Case, error) {
	var where []string
	var args []any
	if opts.Status != "" {
		where = append(where, "status = ?")
		args = append(args, string(opts.Status))
	}
	if opts.Queue != "" {
		where = append(where, "queue = ?")
		args = append(args, s.text(opts.Queue))
	}
	q := `SELECT ` + caseCols + ` FROM cases`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC"
	if opts.Limit > 0 {
		q += " LIMIT ?"
		args = append(args, opts.Limit)
	}
	rows, err := s.scan().QueryContext(ctx, s.d.rebind(q), args...)
	if err != nil {
		return nil, err
	}
	var out []driver.Case
	var ids []int64
	for rows.Next() {
		c, id, err := scanCase(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, c)
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i, id := range ids {
		if out[i].Participants, err = s.participants(ctx, s.on(nil), id); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ListInteractions lists a case's activities oldest first. As in memstore,
// id "" lists the interactions filed on no case.
func (s *store) ListInteractions(ctx context.Context, id driver.CaseID) ([]driver.Interaction, error) {
	var rows *sql.Rows
	var err error
	if id == "" {
		rows, err = s.scan().QueryContext(ctx, s.q.caselessInteractions)
	} else {
		n, ok := parseID(string(id))
		if !ok {
			return nil, errorf(driver.NotFound, "no case %q", id)
		}
		var x string
		if err := s.on(nil).QueryRowContext(ctx, s.q.caseRef, n).Scan(&x, &x, &x); errors.Is(err, sql.ErrNoRows) {
			return nil, errorf(driver.NotFound, "no case %q", id)
		} else if err != nil {
			return nil, err
		}
		rows, err = s.scan().QueryContext(ctx, s.q.caseInteractions, n)
	}
	if err != nil {
		return nil, err
	}
	out := []driver.Interaction{}
	var withAtt []int
	var ids []int64
	for rows.Next() {
		in, iid, err := scanInteraction(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, in)
		ids = append(ids, iid)
		if in.Email != nil {
			withAtt = append(withAtt, len(out)-1)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, i := range withAtt {
		atts, err := s.attachments(ctx, ids[i])
		if err != nil {
			return nil, err
		}
		out[i].Email.Attachments = atts
	}
	return out, nil
}

func (s *store) attachments(ctx context.Context, interactionID int64) ([]driver.Attachment, error) {
	rows, err := s.on(nil).QueryContext(ctx, s.q.attachmentsOf, interactionID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []driver.Attachment
	for rows.Next() {
		var a driver.Attachment
		var pos int64
		var inline int
		if err := rows.Scan(&pos, &a.Filename, &a.ContentType, &a.ContentID, &inline, &a.Size, &a.Data); err != nil {
			return nil, err
		}
		a.Inline = inline != 0
		out = append(out, a)
	}
	return out, rows.Err()
}

func scanInteraction(r scanner) (driver.Interaction, int64, error) {
	var (
		in                                     driver.Interaction
		id, created, noteAt                    int64
		caseID                                 sql.NullInt64
		kind                                   string
		key                                    []byte
		mailbox, direction, msgID              string
		irt, refs, fromName, fromEmail, to, cc string
		subject, sentAt, text, html            string
		reply, problems                        sql.NullString
		auto, summary, notePublic              int
		noteAuthor, noteBody                   string
	)
	err := r.Scan(&id, &kind, &caseID, &in.ContactID, &in.AccountID, &key, &mailbox, &direction, &msgID,
		&irt, &refs, &fromName, &fromEmail, &to, &cc, &subject, &sentAt, &text, &reply, &html,
		&auto, &summary, &noteAuthor, &noteBody, &notePublic, &noteAt, &created, &problems)
	if err != nil {
		return in, 0, err
	}
	in.ID = fmtID(id)
	in.Kind = driver.InteractionKind(kind)
	if caseID.Valid {
		in.CaseID = driver.CaseID(fmtID(caseID.Int64))
	}
	in.CreatedAt = fromNanos(created)
	if in.Kind == driver.KindNote {
		in.Note = &driver.Note{IdempotencyKey: string(key), Author: noteAuthor, Body: noteBody,
			Public: notePublic != 0, CreatedAt: fromNanos(noteAt)}
		return in, id, nil
	}
	e := &driver.Email{
		IdempotencyKey: string(key), Mailbox: mailbox, Direction: driver.Direction(direction), MessageID: msgID,
		From: driver.Address{Name: fromName, Email: fromEmail}, Subject: subject, Text: text, HTML: html,
		Auto: auto != 0, Summary: summary != 0,
	}
	e.ReplyText = text
	if reply.Valid {
		e.ReplyText = reply.String
	}
	if sentAt != "" {
		if t, err := time.Parse(time.RFC3339Nano, sentAt); err == nil {
			e.Date = t
		}
	}
	decodeJSON(irt, &e.InReplyTo)
	decodeJSON(refs, &e.References)
	decodeJSON(to, &e.To)
	decodeJSON(cc, &e.Cc)
	decodeJSON(problems.String, &e.Problems)
	in.Email = e
	return in, id, nil
}

// decodeJSON fills v from s, leaving it zero for "" (values this package
// wrote; a damaged value leaves the field empty rather than failing a list).
func decodeJSON(s string, v any) {
	if s != "" {
		_ = json.Unmarshal([]byte(s), v)
	}
}

func encodeJSON[T any](v []T) string {
	if len(v) == 0 {
		return ""
	}
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}

// ---- Quarantiner and StateStore reads ----

// GetQuarantine returns quarantined mail id, or NotFound.
func (s *store) GetQuarantine(ctx context.Context, id string) (driver.QuarantineItem, error) {
	n, ok := parseID(id)
	if !ok {
		return driver.QuarantineItem{}, errorf(driver.NotFound, "no quarantined mail %q", id)
	}
	var q driver.QuarantineItem
	var qid, at int64
	var key []byte
	err := s.on(nil).QueryRowContext(ctx, s.q.getQuarantine, n).Scan(&qid, &q.Mailbox, &key, &q.Reason, &q.Attempts, &q.Raw, &at)
	s.noteErr(err)
	if errors.Is(err, sql.ErrNoRows) {
		return driver.QuarantineItem{}, errorf(driver.NotFound, "no quarantined mail %q", id)
	}
	if err != nil {
		return driver.QuarantineItem{}, err
	}
	q.ID, q.Key, q.CreatedAt = fmtID(qid), string(key), fromNanos(at)
	return q, nil
}

// ListQuarantine lists quarantined mail oldest first.
func (s *store) ListQuarantine(ctx context.Context, mailbox string) ([]driver.QuarantineItem, error) {
	var rows *sql.Rows
	var err error
	if mailbox == "" {
		rows, err = s.scan().QueryContext(ctx, s.q.listQuarantineAll)
	} else {
		rows, err = s.scan().QueryContext(ctx, s.q.listQuarantineBox, s.text(mailbox))
	}
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []driver.QuarantineItem{}
	for rows.Next() {
		var q driver.QuarantineItem
		var id, at int64
		var key []byte
		if err := rows.Scan(&id, &q.Mailbox, &key, &q.Reason, &q.Attempts, &q.Raw, &at); err != nil {
			return nil, err
		}
		q.ID, q.Key, q.CreatedAt = fmtID(id), string(key), fromNanos(at)
		out = append(out, q)
	}
	return out, rows.Err()
}

func (s *store) GetState(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	err := s.on(nil).QueryRowContext(ctx, s.q.getState, hashOf(key)).Scan(&v)
	s.noteErr(err)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errorf(driver.NotFound, "no state %q", key)
	}
	if err != nil {
		return nil, err
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}
