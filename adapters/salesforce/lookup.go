package salesforce

import (
	"context"
	"encoding/json"
	"slices"
	"strings"

	"github.com/emailcrm/emailcrm/adapters/internal/crmlookup"
	"github.com/emailcrm/emailcrm/mailcase"
)

// cached returns the cached answer for key when Config.LookupCacheTTL
// allows, else calls f and caches its answer (crmlookup.Cache).
func cached[T any](s *Store, ctx context.Context, key string, f func() ([]T, error)) ([]T, error) {
	return crmlookup.Get(s.lcache, ctx, key, f)
}

// forget drops a cached answer (after a write that changes it).
func (s *Store) forget(key string) { s.lcache.Forget(key) }

// ---- advanced lookup ----

// LookupConfig is an advanced lookup (Clarity Connect style): a SOQL query
// on Object selecting Fields, filtered by the WHERE template Where whose
// {{variables}} are filled from the mail (see Template). Multiple decides
// what several matches give: "first" (take the first, by Order), "all"
// (take all), "none" (ambiguous: treat as no match). "" means "first".
type LookupConfig struct {
	Object   string
	Fields   []string
	Where    string
	Order    string // ORDER BY clause body, e.g. "CreatedDate DESC"; "" means Id
	Multiple string
	// Limit bounds the records read; 0 means 50.
	Limit int

	tpl *Template
}

func (l *LookupConfig) compile() error {
	if !validName(l.Object) {
		return errInvalid("lookup: invalid object name " + l.Object)
	}
	if len(l.Fields) == 0 {
		l.Fields = []string{"Id"}
	}
	for _, f := range l.Fields {
		for _, part := range strings.Split(f, ".") {
			if !validName(part) {
				return errInvalid("lookup: invalid field name " + f)
			}
		}
	}
	if err := crmlookup.CheckMultiple(l.Multiple); err != nil {
		return errInvalid(err.Error())
	}
	for _, part := range strings.Split(l.Order, ",") {
		w := strings.Fields(part)
		if l.Order == "" {
			break
		}
		if len(w) == 0 || len(w) > 2 || !validName(w[0]) || len(w) == 2 && !strings.EqualFold(w[1], "ASC") && !strings.EqualFold(w[1], "DESC") {
			return errInvalid("lookup: invalid Order " + l.Order)
		}
	}
	t, err := CompileTemplate(l.Where)
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

// LookupResult is the answer of an advanced lookup: the outcome and the
// records taken (one for "first", all for "all", none when ambiguous
// under "none"), each a map of the selected fields.
type LookupResult struct {
	Outcome LookupOutcome
	Records []map[string]any
	// Query is the SOQL that ran (useful in audit notes).
	Query string
}

// LookupQuery returns the SOQL the advanced lookup runs for in.
func (s *Store) LookupQuery(in *LookupInput) (string, error) {
	l := s.cfg.Lookup
	if l == nil {
		return "", errInvalid("no advanced lookup configured (Config.Lookup)")
	}
	lim := l.Limit
	if lim <= 0 {
		lim = 50
	}
	order := l.Order
	if order == "" {
		order = "Id"
	}
	q := "SELECT " + strings.Join(l.Fields, ", ") + " FROM " + l.Object
	if w := strings.TrimSpace(l.tpl.Render(in.Var)); w != "" {
		q += " WHERE " + w
	}
	return q + " ORDER BY " + order + " LIMIT " + itoa(lim), nil
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// Lookup runs the advanced lookup (Config.Lookup) for in, through the
// lookup cache.
func (s *Store) Lookup(ctx context.Context, in *LookupInput) (LookupResult, error) {
	q, err := s.LookupQuery(in)
	if err != nil {
		return LookupResult{}, err
	}
	recs, err := cached(s, ctx, "lookup:"+q, func() ([]map[string]any, error) { return s.query(ctx, q) })
	if err != nil {
		return LookupResult{}, err
	}
	for _, r := range recs {
		delete(r, "attributes")
	}
	res := LookupResult{Query: q}
	res.Outcome, res.Records = crmlookup.Take(recs, s.cfg.Lookup.Multiple)
	return res, nil
}

// SenderMatcher returns a mailcase.SenderMatcher over the advanced lookup
// (Config.Lookup), for mailcase pipelines that match senders this way
// instead of by the Directory. Only the sender's variables are known there
// ({{sender}}, {{domain}}, {{name}}; {{subject}} and headers render
// empty). Config.Lookup.Object must be Contact or Account and select Id.
// One record (or the first, under "first") is the sender's contact or
// account; several under "all" are SenderAmbiguous with their Ids as
// candidates; none, or several under "none", is SenderUnknown.
func (s *Store) SenderMatcher() (mailcase.SenderMatcher, error) {
	l := s.cfg.Lookup
	if l == nil {
		return nil, errInvalid("no advanced lookup configured (Config.Lookup)")
	}
	kind := mailcase.SenderContact
	switch l.Object {
	case "Contact":
	case "Account":
		kind = mailcase.SenderAccount
	default:
		return nil, errInvalid("lookup: SenderMatcher needs Object Contact or Account, not " + l.Object)
	}
	if !slices.Contains(l.Fields, "Id") {
		return nil, errInvalid("lookup: SenderMatcher needs the Id field")
	}
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
				m.Candidates = append(m.Candidates, recStr(r, "Id"))
			}
		case kind == mailcase.SenderContact:
			r := res.Records[0]
			m.Kind = kind
			m.Contact = &mailcase.Contact{ID: recStr(r, "Id"), Email: from.Email, Name: firstNonEmpty(recStr(r, "Name"), contactName(r)),
				AccountID: recStr(r, "AccountId")}
		default:
			r := res.Records[0]
			m.Kind = kind
			m.Account = &mailcase.Account{ID: recStr(r, "Id"), Name: recStr(r, "Name")}
		}
		return m, nil
	}), nil
}
