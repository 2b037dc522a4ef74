package crmlookup

import (
	"fmt"
	"net/url"
	"strconv"
)

// Outcome says how many records a lookup matched.
type Outcome string

// Outcomes.
const (
	None     Outcome = "none"
	Single   Outcome = "single"
	Multiple Outcome = "multiple"
)

// Multiple policies: what several matches give.
const (
	TakeFirst = "first" // the first, in the lookup's order ("" too)
	TakeAll   = "all"   // all of them
	TakeNone  = "none"  // ambiguous: treated as no match
)

// CheckMultiple returns an error unless m is a Multiple policy or "".
func CheckMultiple(m string) error {
	switch m {
	case "", TakeFirst, TakeAll, TakeNone:
		return nil
	}
	return fmt.Errorf("lookup: Multiple %s: want first, all or none", m)
}

// Take returns the outcome for recs and the records taken under policy
// multiple (see TakeFirst, TakeAll, TakeNone).
func Take[T any](recs []T, multiple string) (Outcome, []T) {
	switch {
	case len(recs) == 0:
		return None, nil
	case len(recs) == 1:
		return Single, recs
	}
	switch multiple {
	case TakeAll:
		return Multiple, recs
	case TakeNone:
		return Multiple, nil
	}
	return Multiple, recs[:1]
}

// Switches are the push switches of a CRM adapter, all off (everything
// pushed) by default: NoNotes drops notes (AddNote and the description
// note), NoTranscript files mail records without their bodies (the record
// stays: it is the thread index and the idempotency record), NoAttachments
// files no attachments, NoSummary leaves the case description empty.
type Switches struct {
	NoNotes, NoTranscript, NoAttachments, NoSummary bool
}

// Flags returns the switches by their URL query names (no_notes,
// no_transcript, no_attachments, no_summary), for URL openers.
func (s *Switches) Flags() map[string]*bool {
	return map[string]*bool{"no_notes": &s.NoNotes, "no_transcript": &s.NoTranscript,
		"no_attachments": &s.NoAttachments, "no_summary": &s.NoSummary}
}

// SetFlags sets each boolean of flags (by URL query name) that q names,
// for URL openers; a value that is not a boolean is an error naming it.
func SetFlags(q url.Values, flags map[string]*bool) error {
	for name, p := range flags {
		if v := q.Get(name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("%s=%s: want true or false", name, v)
			}
			*p = b
		}
	}
	return nil
}
