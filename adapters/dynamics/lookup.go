package dynamics

import (
	"context"
	"slices"
	"strconv"
	"strings"

	"github.com/emailcrm/emailcrm/adapters/internal/crmlookup"
	"github.com/emailcrm/emailcrm/mailcase"
)

// LookupConfig is an advanced lookup (Clarity Connect style): a query of
// entity set EntitySet selecting Select, filtered by the $filter template
// Filter whose {{variables}} are filled from the mail (see Template).
// Multiple decides what several matches give: "first" (the first, by
// OrderBy), "all", "none" (ambiguous: no match). "" means "first".
type LookupConfig struct {
	EntitySet string   // "contacts", "accounts", ...
	Select    []string // columns; nil means the set's primary key guess
	Filter    string
	OrderBy   string // "createdon desc"; "" means none
	Multiple  string
	// Top bounds the records read; 0 means 50.
	Top int

	tpl *Template
}

func (l *LookupConfig) compile() error {
	if !validName(l.EntitySet) {
		return errInvalid("lookup: invalid entity set " + l.EntitySet)
	}
	for _, f := range l.Select {
		if !validName(f) {
			return errInvalid("lookup: invalid column " + f)
		}
	}
	if err := crmlookup.CheckMultiple(l.Multiple); err != nil {
		return errInvalid(err.Error())
	}
	for _, p := range strings.Split(l.OrderBy, ",") {
		w := strings.Fields(p)
		if l.OrderBy == "" {
			break
		}
		if len(w) == 0 || len(w) > 2 || !validName(w[0]) || len(w) == 2 && w[1] != "asc" && w[1] != "desc" {
			return errInvalid("lookup: invalid OrderBy " + l.OrderBy)
		}
	}
	t, err := CompileTemplate(l.Filter)
	if err != nil {
		return err
	}
	l.tpl = t
	return nil
}

// LookupInput is what an advanced lookup knows of a mail.
type LookupInput = crmlookup.Input

// LookupOutcome says how many records an advanced lookup matched.
type LookupOutcome = crmlookup.Outcome

// Outcomes.
const (
	LookupNone     LookupOutcome = crmlookup.None
	LookupSingle   LookupOutcome = crmlookup.Single
	LookupMultiple LookupOutcome = crmlookup.Multiple
)

// LookupResult is the answer of an advanced lookup.
type LookupResult struct {
	Outcome LookupOutcome
	Records []map[string]any
	// Query is the request path that ran (URL-encoded).
	Query string
}

// LookupQuery returns the request path the advanced lookup runs for in.
func (s *Store) LookupQuery(in *LookupInput) (string, error) {
	l := s.cfg.Lookup
	if l == nil {
		return "", errInvalid("no advanced lookup configured (Config.Lookup)")
	}
	top := l.Top
	if top <= 0 {
		top = 50
	}
	return query(l.EntitySet, "$select", strings.Join(l.Select, ","), "$filter", strings.TrimSpace(l.tpl.Render(in.Var)),
		"$orderby", l.OrderBy, "$top", strconv.Itoa(top)), nil
}

// Lookup runs the advanced lookup (Config.Lookup) for in, through the
// lookup cache.
func (s *Store) Lookup(ctx context.Context, in *LookupInput) (LookupResult, error) {
	q, err := s.LookupQuery(in)
	if err != nil {
		return LookupResult{}, err
	}
	recs, err := crmlookup.Get(s.lcache, ctx, "lookup:"+q, func() ([]map[string]any, error) {
		var out struct {
			Value []map[string]any `json:"value"`
		}
		if err := s.c.getJSON(ctx, q, &out); err != nil {
			return nil, err
		}
		for _, r := range out.Value {
			delete(r, "@odata.etag")
		}
		return out.Value, nil
	})
	if err != nil {
		return LookupResult{}, err
	}
	res := LookupResult{Query: q}
	res.Outcome, res.Records = crmlookup.Take(recs, s.cfg.Lookup.Multiple)
	return res, nil
}

// SenderMatcher returns a mailcase.SenderMatcher over the advanced lookup
// (Config.Lookup), for pipelines that match senders this way instead of by
// the Directory. Only the sender's variables are known there ({{sender}},
// {{domain}}, {{name}}; {{subject}} and headers render empty).
// Config.Lookup.EntitySet must be contacts (selecting contactid) or
// accounts (selecting accountid). One record (or the first, under "first")
// is the sender's contact or account; several under "all" are
// SenderAmbiguous with their ids as candidates; none, or several under
// "none", is SenderUnknown.
func (s *Store) SenderMatcher() (mailcase.SenderMatcher, error) {
	l := s.cfg.Lookup
	if l == nil {
		return nil, errInvalid("no advanced lookup configured (Config.Lookup)")
	}
	kind, idCol := mailcase.SenderContact, "contactid"
	switch l.EntitySet {
	case "contacts":
	case "accounts":
		kind, idCol = mailcase.SenderAccount, "accountid"
	default:
		return nil, errInvalid("lookup: SenderMatcher needs EntitySet contacts or accounts, not " + l.EntitySet)
	}
	if !slices.Contains(l.Select, idCol) {
		return nil, errInvalid("lookup: SenderMatcher needs the " + idCol + " column")
	}
	str := func(r map[string]any, k string) string { v, _ := r[k].(string); return v }
	return mailcase.SenderMatcherFunc(func(ctx context.Context, from mailcase.Address) (mailcase.SenderMatch, error) {
		res, err := s.Lookup(ctx, &LookupInput{Sender: from.Email, Name: from.Name})
		if err != nil {
			return mailcase.SenderMatch{}, err
		}
		m := mailcase.SenderMatch{Address: from.Email, Kind: mailcase.SenderUnknown, Reason: "advanced lookup: " + string(res.Outcome)}
		switch {
		case len(res.Records) == 0:
		case len(res.Records) > 1:
			m.Kind = mailcase.SenderAmbiguous
			for _, r := range res.Records {
				m.Candidates = append(m.Candidates, strings.ToLower(str(r, idCol)))
			}
		case kind == mailcase.SenderContact:
			r := res.Records[0]
			m.Kind = kind
			m.Contact = &mailcase.Contact{ID: strings.ToLower(str(r, idCol)), Email: from.Email,
				Name:      firstNonEmpty(str(r, "fullname"), strings.TrimSpace(str(r, "firstname")+" "+str(r, "lastname"))),
				AccountID: strings.ToLower(str(r, "_parentcustomerid_value"))}
		default:
			r := res.Records[0]
			m.Kind = kind
			m.Account = &mailcase.Account{ID: strings.ToLower(str(r, idCol)), Name: str(r, "name")}
		}
		return m, nil
	}), nil
}
