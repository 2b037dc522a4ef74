package salesforce

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emailcrm/emailcrm/mailcase/driver"
)

var _ driver.Lister = (*Store)(nil)

// idOrder compares record Ids by their part after the key prefix, which
// grows with creation inside an org: the tie-break of records created in
// the same second (Salesforce datetimes have second precision).
func idOrder(a, b string) int {
	if len(a) > 3 && len(b) > 3 {
		return strings.Compare(a[3:min(len(a), 15)], b[3:min(len(b), 15)])
	}
	return strings.Compare(a, b)
}

// ListCases implements driver.Lister: SOQL on the cases, newest first,
// filtered by EmailcrmQueue__c and the status, then one query for their
// mails' participants.
func (s *Store) ListCases(ctx context.Context, opts *driver.ListOptions) ([]driver.Case, error) {
	q := s.caseSelect()
	var where []string
	if opts.Queue != "" {
		where = append(where, "EmailcrmQueue__c = "+QuoteSOQL(opts.Queue))
	}
	if opts.Status != "" {
		where = append(where, "Status = "+QuoteSOQL(s.cfg.StatusMap[opts.Status]))
	}
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY CreatedDate DESC, Id DESC"
	if opts.Limit > 0 && opts.Status == "" {
		q += " LIMIT " + strconv.Itoa(opts.Limit)
	} else {
		q += " LIMIT 2000"
	}
	recs, err := s.query(ctx, q)
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return []driver.Case{}, nil
	}
	var ids []string
	for _, r := range recs {
		ids = append(ids, recStr(r, "Id"))
	}
	mails, err := s.query(ctx, "SELECT Id, ParentId, CreatedDate, EmailcrmData__c FROM EmailMessage WHERE ParentId IN "+soqlIn(ids))
	if err != nil {
		return nil, err
	}
	byCase := map[string][]map[string]any{}
	for _, m := range mails {
		byCase[recStr(m, "ParentId")] = append(byCase[recStr(m, "ParentId")], m)
	}
	var out []driver.Case
	for _, r := range recs {
		c, err := s.caseOut(ctx, r, byCase[recStr(r, "Id")])
		if err != nil {
			return nil, err
		}
		if opts.Status != "" && c.Status != opts.Status {
			continue
		}
		out = append(out, c)
	}
	slices.SortStableFunc(out, func(a, b driver.Case) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return idOrder(string(b.ID), string(a.ID))
	})
	if opts.Limit > 0 && len(out) > opts.Limit {
		out = out[:opts.Limit]
	}
	return out, nil
}

const emailFields = "Id, ParentId, CreatedDate, Incoming, Subject, FromAddress, FromName, MessageDate, MessageIdentifier, TextBody, HtmlBody, EmailcrmData__c"

// ListInteractions implements driver.Lister: one composite call (the case,
// its EmailMessages, CaseComments and ContentVersions), then one request
// per file for its data. Mails and notes come oldest first.
func (s *Store) ListInteractions(ctx context.Context, id driver.CaseID) ([]driver.Interaction, error) {
	if !validCaseID(id) {
		return nil, errNotFound("case " + string(id))
	}
	lit := QuoteSOQL(string(id))
	subs := []subrequest{
		s.querySub("case", "SELECT Id FROM Case WHERE Id = "+lit),
		s.querySub("mails", "SELECT "+emailFields+" FROM EmailMessage WHERE ParentId = "+lit+" ORDER BY CreatedDate ASC, Id ASC"),
		s.querySub("notes", "SELECT Id, CreatedDate, CommentBody, IsPublished FROM CaseComment WHERE ParentId = "+lit+" ORDER BY CreatedDate ASC, Id ASC"),
		s.querySub("files", "SELECT Id, Title, Description FROM ContentVersion WHERE FirstPublishLocationId = "+lit),
	}
	res, err := s.c.composite(ctx, false, subs)
	if err != nil {
		return nil, err
	}
	for _, sub := range subs {
		if r := res[sub.ReferenceID]; !r.ok() {
			return nil, r.err("list " + sub.ReferenceID)
		}
	}
	if len(records(res["case"])) == 0 {
		return nil, errNotFound("case " + string(id))
	}
	pages := map[string][]map[string]any{}
	for _, ref := range []string{"files", "mails", "notes"} {
		if pages[ref], err = s.allRecords(ctx, res[ref]); err != nil {
			return nil, err
		}
	}
	files := map[string]string{} // description -> ContentVersion Id
	for _, f := range pages["files"] {
		if d := recStr(f, "Description"); d != "" {
			files[d] = recStr(f, "Id")
		}
	}
	type item struct {
		at time.Time
		id string
		in driver.Interaction
	}
	var items []item
	for _, m := range pages["mails"] {
		e, err := s.emailOut(ctx, m, files)
		if err != nil {
			return nil, err
		}
		at := recTime(m, "CreatedDate")
		items = append(items, item{at, recStr(m, "Id"), driver.Interaction{ID: recStr(m, "Id"), Kind: driver.KindEmail,
			CaseID: id, Email: e, CreatedAt: at}})
	}
	for _, n := range pages["notes"] {
		at := recTime(n, "CreatedDate")
		pub, _ := n["IsPublished"].(bool)
		author, body := parseNote(recStr(n, "CommentBody"))
		items = append(items, item{at, recStr(n, "Id"), driver.Interaction{ID: recStr(n, "Id"), Kind: driver.KindNote, CaseID: id,
			Note: &driver.Note{Author: author, Body: body, Public: pub, CreatedAt: at}, CreatedAt: at}})
	}
	slices.SortStableFunc(items, func(a, b item) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return idOrder(a.id, b.id)
	})
	out := make([]driver.Interaction, 0, len(items))
	for _, it := range items {
		out = append(out, it.in)
	}
	return out, nil
}

// emailOut rebuilds a filed Email from its EmailMessage record and files.
func (s *Store) emailOut(ctx context.Context, m map[string]any, files map[string]string) (*driver.Email, error) {
	var d emailData
	_ = json.Unmarshal([]byte(recStr(m, "EmailcrmData__c")), &d)
	key, _ := base64.StdEncoding.DecodeString(d.Key)
	e := &driver.Email{
		IdempotencyKey: string(key), Mailbox: d.Mailbox, Direction: driver.Inbound,
		MessageID: strings.TrimSuffix(strings.TrimPrefix(recStr(m, "MessageIdentifier"), "<"), ">"),
		From:      driver.Address{Name: recStr(m, "FromName"), Email: recStr(m, "FromAddress")},
		Subject:   recStr(m, "Subject"), Date: recTime(m, "MessageDate"),
		Text: recStr(m, "TextBody"), HTML: recStr(m, "HtmlBody"), ReplyText: d.ReplyText,
		InReplyTo: d.InReplyTo, References: d.References, Auto: d.Auto, Summary: d.Summary,
		Fingerprint: d.Fingerprint, Problems: d.Problems, NoParticipants: len(d.Participants) == 0,
	}
	if d.Outbound {
		e.Direction = driver.Outbound
	}
	if d.Subject != "" {
		e.Subject = d.Subject
	}
	if d.MessageID != "" {
		e.MessageID = d.MessageID
	}
	for _, a := range d.To {
		e.To = append(e.To, driver.Address{Name: a.N, Email: a.E})
	}
	for _, a := range d.Cc {
		e.Cc = append(e.Cc, driver.Address{Name: a.N, Email: a.E})
	}
	tag := fileTag(hashKey(e.IdempotencyKey))
	fetch := func(suffix string) ([]byte, bool, error) {
		cv, ok := files[tag+suffix]
		if !ok {
			return nil, false, nil
		}
		b, _, err := s.c.do(ctx, &request{method: http.MethodGet, path: "sobjects/ContentVersion/" + url.PathEscape(cv) + "/VersionData", file: true})
		return b, err == nil, err
	}
	for _, f := range d.Truncated {
		b, ok, err := fetch(f)
		if err != nil {
			return nil, err
		}
		if ok && f == "TextBody" {
			e.Text = string(b)
		} else if ok && f == "HtmlBody" {
			e.HTML = string(b)
		}
	}
	if d.ReplyFile {
		b, _, err := fetch("r")
		if err != nil {
			return nil, err
		}
		e.ReplyText = string(b)
	}
	for _, am := range d.Atts {
		a := driver.Attachment{Filename: am.Name, ContentType: am.Type, ContentID: am.CID, Inline: am.Inline, Size: am.Size, Data: []byte{}}
		if am.F != "" {
			b, _, err := fetch(am.F)
			if err != nil {
				return nil, err
			}
			a.Data = b
		}
		e.Attachments = append(e.Attachments, a)
	}
	return e, nil
}

// noteTrailer starts the last line of every note the driver writes: the
// key's marker (or "-") and the quoted author.
const noteTrailer = "\n[emailcrm-note "

// parseNote splits a CommentBody into author and body.
func parseNote(c string) (author, body string) {
	i := strings.LastIndex(c, noteTrailer)
	if i < 0 {
		return "", c
	}
	rest := c[i+len(noteTrailer):]
	_, q, ok := strings.Cut(rest, " ")
	if !ok {
		return "", c
	}
	qa, err := strconv.QuotedPrefix(q)
	if err != nil {
		return "", c
	}
	a, _ := strconv.Unquote(qa)
	return a, c[:i]
}
