package dynamics

import (
	"cmp"
	"context"
	"encoding/base64"
	"slices"
	"strings"

	"github.com/emailcrm/emailcrm/mailcase/driver"
)

var _ driver.Lister = (*Store)(nil)

// getAll follows @odata.nextLink pages of a query.
func getAll[T any](ctx context.Context, s *Store, path string) ([]T, error) {
	var all []T
	for path != "" {
		var out struct {
			Value []T    `json:"value"`
			Next  string `json:"@odata.nextLink"`
		}
		if err := s.c.getJSON(ctx, path, &out); err != nil {
			return nil, err
		}
		all = append(all, out.Value...)
		path = strings.TrimPrefix(out.Next, s.c.api)
		if path == out.Next {
			path = "" // not a link into this API
		}
	}
	return all, nil
}

// ListCases implements driver.Lister: the incidents filed by this driver
// (emailcrm_key set), newest first, filtered by the status and queue kept
// in emailcrm_data.
func (s *Store) ListCases(ctx context.Context, opts *driver.ListOptions) ([]driver.Case, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	top := ""
	if opts.Limit > 0 && opts.Status == "" && opts.Queue == "" {
		top = itoa(opts.Limit * 2) // createdon ties are sorted below
	}
	rows, err := getAll[incidentRow](ctx, s, query("incidents", "$select", incidentSelect, "$filter", "emailcrm_key ne null",
		"$orderby", "createdon desc", "$top", top))
	if err != nil {
		return nil, err
	}
	var out []driver.Case
	for i := range rows {
		c, _ := toCase(&rows[i])
		if opts.Status != "" && c.Status != opts.Status || opts.Queue != "" && c.Queue != opts.Queue {
			continue
		}
		out = append(out, c)
	}
	slices.SortStableFunc(out, func(a, b driver.Case) int { return b.CreatedAt.Compare(a.CreatedAt) })
	if opts.Limit > 0 && len(out) > opts.Limit {
		out = out[:opts.Limit]
	}
	return out, nil
}

type attachmentRow struct {
	ID        string `json:"activitymimeattachmentid"`
	Email     string `json:"_objectid_value"`
	Filename  string `json:"filename"`
	MimeType  string `json:"mimetype"`
	Body      string `json:"body"`
	ContentID string `json:"attachmentcontentid"`
}

type noteRow struct {
	ID      string `json:"annotationid"`
	Subject string `json:"subject"`
	Text    string `json:"notetext"`
	Created string `json:"createdon"`
}

// ListInteractions implements driver.Lister: the case's emails (with their
// attachments) and annotations, oldest first.
func (s *Store) ListInteractions(ctx context.Context, id driver.CaseID) ([]driver.Interaction, error) {
	if _, err := s.GetCase(ctx, id); err != nil {
		return nil, err
	}
	emails, err := getAll[emailRow](ctx, s, query("emails", "$select", emailSelect+",subject,description",
		"$filter", "_regardingobjectid_value eq "+string(id), "$orderby", "createdon asc"))
	if err != nil {
		return nil, err
	}
	notes, err := getAll[noteRow](ctx, s, query("annotations", "$select", "annotationid,subject,notetext,createdon",
		"$filter", "_objectid_value eq "+string(id), "$orderby", "createdon asc"))
	if err != nil {
		return nil, err
	}
	atts := map[string][]attachmentRow{}
	for chunk := range slices.Chunk(emails, 20) {
		var conds []string
		for _, e := range chunk {
			conds = append(conds, "_objectid_value eq "+e.ID)
		}
		rows, err := getAll[attachmentRow](ctx, s, query("activitymimeattachments",
			"$select", "activitymimeattachmentid,_objectid_value,filename,mimetype,body,attachmentcontentid",
			"$filter", strings.Join(conds, " or ")))
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			k := strings.ToLower(r.Email)
			atts[k] = append(atts[k], r)
		}
	}
	var out []driver.Interaction
	for _, r := range emails {
		d := r.data()
		e := d.Email
		e.IdempotencyKey = dec64(d.Key)
		rows := atts[strings.ToLower(r.ID)]
		body := r.Body
		body, rows = joinParts(body, rows, "emailcrm-body-", d.BodyParts)
		var html string
		html, rows = joinParts("", rows, "emailcrm-html-", d.HTMLParts)
		if html != "" {
			e.HTML = html
		}
		if d.HTMLBody {
			e.HTML = body
		} else if body != "" {
			e.Text = body
		}
		e.Attachments = matchAttachments(e.Attachments, rows)
		at := d.At
		if at.IsZero() {
			at = parseTime(r.Created)
		}
		out = append(out, driver.Interaction{ID: strings.ToLower(r.ID), Kind: driver.KindEmail, CaseID: id, Email: &e, CreatedAt: at})
	}
	for _, n := range notes {
		author, at, public := parseNoteSubject(n.Subject)
		if at.IsZero() {
			at = parseTime(n.Created)
		}
		out = append(out, driver.Interaction{ID: strings.ToLower(n.ID), Kind: driver.KindNote, CaseID: id,
			Note: &driver.Note{Author: author, Body: n.Text, Public: public, CreatedAt: at}, CreatedAt: at})
	}
	slices.SortStableFunc(out, func(a, b driver.Interaction) int { return cmp.Compare(a.CreatedAt.UnixNano(), b.CreatedAt.UnixNano()) })
	return out, nil
}

// matchAttachments pairs the attachments listed in emailcrm_data (order,
// inline flag) with the rows read, by filename and content ID.
func matchAttachments(meta []driver.Attachment, rows []attachmentRow) []driver.Attachment {
	used := make([]bool, len(rows))
	var out []driver.Attachment
	take := func(i int, a driver.Attachment) {
		used[i] = true
		data, _ := base64.StdEncoding.DecodeString(rows[i].Body)
		a.Data, a.Size = data, int64(len(data))
		if a.ContentType == "" {
			a.ContentType = rows[i].MimeType
		}
		out = append(out, a)
	}
	for _, a := range meta {
		name := a.Filename
		if name == "" {
			name = "attachment"
		}
		for i, r := range rows {
			if !used[i] && r.Filename == name && r.ContentID == a.ContentID {
				take(i, a)
				break
			}
		}
	}
	for i, r := range rows {
		if !used[i] {
			take(i, driver.Attachment{Filename: r.Filename, ContentType: r.MimeType, ContentID: r.ContentID})
		}
	}
	return out
}

// joinParts appends the n hidden attachments named prefix + i + ".txt" to
// text and returns the other rows.
func joinParts(text string, rows []attachmentRow, prefix string, n int) (string, []attachmentRow) {
	if n == 0 {
		return text, rows
	}
	var b strings.Builder
	b.WriteString(text)
	for i := range n {
		name := prefix + itoa(i) + ".txt"
		for j, r := range rows {
			if r.Filename == name {
				data, _ := base64.StdEncoding.DecodeString(r.Body)
				b.Write(data)
				rows = slices.Delete(rows, j, j+1)
				break
			}
		}
	}
	return b.String(), rows
}
