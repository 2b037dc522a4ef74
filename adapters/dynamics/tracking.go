package dynamics

import (
	"context"
	"regexp"
	"strings"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// TrackingTokens returns the Dynamics tracking tokens in subject, last
// first: Config.TrackingTokenPrefix ("CRM:") followed by the digits
// Dynamics writes (deployment, user and counter digits, "CRM:0001234").
func (s *Store) TrackingTokens(subject string) []string {
	found := s.tokenRE.FindAllString(subject, -1)
	for i, j := 0, len(found)-1; i < j; i, j = i+1, j-1 {
		found[i], found[j] = found[j], found[i]
	}
	return found
}

func tokenRegexp(prefix string) *regexp.Regexp {
	return regexp.MustCompile(`(?i)` + regexp.QuoteMeta(prefix) + `[0-9]{4,}\b`)
}

// TrackingResolver returns a mailcase.ThreadResolver that threads replies
// to mail sent from Dynamics: the tracking tokens of the subject are
// looked up as email.trackingtoken (emails?$filter=trackingtoken eq
// 'CRM:0001234'), newest first, and the incident the email is regarding is
// the mail's case, but only when the anti-hijack rule
// (mailcase.SenderOnCase) accepts the sender for it: the token counter
// rolls over, so a token alone can collide, and anyone can type one. A
// closed case gives ThreadReopen, an open one ThreadAppend. When no token
// leads to a case that accepts the sender, next decides (nil means
// ThreadNew). Plug it in as mailcase.Options.Threads (or in front of the
// threading package's resolver).
func (s *Store) TrackingResolver(next mailcase.ThreadResolver) mailcase.ThreadResolver {
	return mailcase.ThreadResolverFunc(func(ctx context.Context, d *mailcase.Delivery) (mailcase.ThreadDecision, error) {
		var refused []string
		if d.Message != nil {
			for _, tok := range s.TrackingTokens(d.Message.Subject) {
				c, ok, err := s.caseOfToken(ctx, tok)
				if err != nil {
					return mailcase.ThreadDecision{}, err
				}
				if !ok {
					continue
				}
				why, on := mailcase.SenderOnCase(d, c, nil)
				if !on {
					refused = append(refused, "tracking token "+tok+" refused: "+why)
					continue
				}
				act := mailcase.ThreadAppend
				if c.Status.IsClosed() {
					act = mailcase.ThreadReopen
				}
				return mailcase.ThreadDecision{Action: act, CaseID: c.ID, CaseNumber: c.Number, Signal: "tracking-token",
					Detail: tok, SenderOnCase: true}, nil
			}
		}
		if next != nil {
			t, err := next.ResolveThread(ctx, d)
			if len(refused) > 0 {
				t.Reason = strings.TrimPrefix(t.Reason+"; "+strings.Join(refused, "; "), "; ")
			}
			return t, err
		}
		t := mailcase.ThreadDecision{Action: mailcase.ThreadNew, Reason: "no tracking token leads to a case"}
		if len(refused) > 0 {
			t.Reason = strings.Join(refused, "; ")
		}
		return t, nil
	})
}

// caseOfToken returns the incident regarding the newest email with
// tracking token tok.
func (s *Store) caseOfToken(ctx context.Context, tok string) (driver.Case, bool, error) {
	var out struct {
		Value []emailRow `json:"value"`
	}
	if err := s.c.getJSON(ctx, query("emails", "$select", "activityid,_regardingobjectid_value,createdon",
		"$filter", "trackingtoken eq "+Quote(tok), "$orderby", "createdon desc", "$top", "5"), &out); err != nil {
		return driver.Case{}, false, err
	}
	for _, r := range out.Value {
		id := strings.ToLower(r.Regarding)
		if id == "" {
			continue
		}
		c, err := s.GetCase(ctx, driver.CaseID(id))
		if errorCode(err) == driver.NotFound {
			continue // regarding a contact or an account
		}
		if err != nil {
			return driver.Case{}, false, err
		}
		return c, true, nil
	}
	return driver.Case{}, false, nil
}
