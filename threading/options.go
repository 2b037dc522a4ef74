package threading

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/emailcrm/emailcrm/mailcase"
)

// Index is what the resolver needs from a case store. *mailcase.Store
// satisfies it.
type Index interface {
	// LookupThread returns the case holding a mail whose Message-ID is in
	// ids, preferring the last ids.
	LookupThread(ctx context.Context, ids ...string) (mailcase.Case, bool, error)
	// GetCase returns a case by ID.
	GetCase(ctx context.Context, id mailcase.CaseID) (mailcase.Case, bool, error)
	// FindCaseByNumber returns the case with a human number.
	FindCaseByNumber(ctx context.Context, number string) (mailcase.Case, bool, error)
}

var _ Index = (*mailcase.Store)(nil)

// ReferenceIndex is an optional interface of an Index that also finds the
// case of a filed mail by the Message-IDs it refers to (its In-Reply-To and
// References), the last ids preferred; see driver.ReferenceFinder.
// mailcase.Store implements it, finding nothing when its driver keeps no
// such index.
type ReferenceIndex interface {
	LookupReference(ctx context.Context, ids ...string) (mailcase.Case, bool, error)
}

var _ ReferenceIndex = (*mailcase.Store)(nil)

// Policy says what a reply to a closed case does.
type Policy string

// Closed-case policies.
const (
	// PolicyReopen files the mail on the case and reopens it.
	PolicyReopen Policy = "reopen"
	// PolicyReopenWithin reopens when the case was closed less than
	// ReopenWithin ago, else opens a new case linked to the old one.
	PolicyReopenWithin Policy = "reopen_within"
	// PolicyNew always opens a new case (not linked).
	PolicyNew Policy = "new"
	// PolicyNewLinked always opens a new case linked to the old one.
	PolicyNewLinked Policy = "new_linked"
	// PolicyReject files nothing on a case; the sender gets a notice.
	PolicyReject Policy = "reject"
)

func (p Policy) valid() bool {
	switch p {
	case PolicyReopen, PolicyReopenWithin, PolicyNew, PolicyNewLinked, PolicyReject:
		return true
	}
	return false
}

// ClosedRule is a closed-case policy with its reopening window.
type ClosedRule struct {
	Policy Policy `json:"policy" yaml:"policy"`
	// ReopenWithin is the window of PolicyReopenWithin; 0 means
	// Options.ReopenWithin.
	ReopenWithin time.Duration `json:"reopen_within,omitempty" yaml:"reopen_within,omitempty"`
}

// Options configures a Resolver. A nil *Options means defaults, without
// signed signals (no Key).
type Options struct {
	// Key is the per-installation HMAC key (at least MinKeyLen bytes) that
	// signs generated Message-IDs, tokens, context IDs and Thread-Index
	// GUIDs. Without a key the signed resolvers are off.
	Key []byte
	// Domain is the right side of generated Message-IDs; "" means
	// "emailcrm.invalid".
	Domain string
	// SubjectFormats lists the case-number formats recognised in subjects.
	// nil means DefaultSubjectFormats(); an empty non-nil slice turns
	// subject numbers off.
	SubjectFormats []SubjectFormat
	// ClosedPolicy applies to replies to closed cases; "" means
	// PolicyReopen.
	ClosedPolicy Policy
	// ReopenWithin is the window of PolicyReopenWithin; 0 means 14 days.
	ReopenWithin time.Duration
	// QueuePolicies override ClosedPolicy by the closed case's queue; they
	// win over MailboxPolicies.
	QueuePolicies map[string]ClosedRule
	// MailboxPolicies override ClosedPolicy by the receiving mailbox name.
	MailboxPolicies map[string]ClosedRule
	// OwnAddresses lists all our addresses: every configured mailbox
	// address and alias. They are on every case (in the To line of its
	// first mail), so for the anti-hijack check they never count as
	// participants, and mail claiming to come from one of them threads a
	// bare number only when its sender is an authenticated employee. The
	// receiving mailbox's address (Delivery.Mailbox.Address) is always
	// included. Addresses are normalised; unparsable ones are ignored.
	OwnAddresses []string
	// MaxReferences bounds how many Message-IDs (the most recent) are
	// decoded as signed Message-IDs and looked up in the store; 0 means
	// 1000.
	MaxReferences int
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Logger receives debug logs of decisions; nil means slog.Default().
	Logger *slog.Logger
}

func (o Options) withDefaults() (Options, error) {
	if o.Key != nil && len(o.Key) < MinKeyLen {
		return o, ErrKey
	}
	if o.SubjectFormats == nil {
		o.SubjectFormats = DefaultSubjectFormats()
	}
	for _, f := range o.SubjectFormats {
		if f.Prefix == "" || f.Name == "" {
			return o, fmt.Errorf("threading: subject format %q needs a name and a prefix", f.Name)
		}
	}
	if o.ClosedPolicy == "" {
		o.ClosedPolicy = PolicyReopen
	}
	if !o.ClosedPolicy.valid() {
		return o, fmt.Errorf("threading: unknown closed policy %q", o.ClosedPolicy)
	}
	for name, r := range o.QueuePolicies {
		if !r.Policy.valid() {
			return o, fmt.Errorf("threading: queue %q: unknown closed policy %q", name, r.Policy)
		}
	}
	for name, r := range o.MailboxPolicies {
		if !r.Policy.valid() {
			return o, fmt.Errorf("threading: mailbox %q: unknown closed policy %q", name, r.Policy)
		}
	}
	if o.ReopenWithin == 0 {
		o.ReopenWithin = 14 * 24 * time.Hour
	}
	if o.ReopenWithin < 0 {
		return o, fmt.Errorf("threading: negative ReopenWithin")
	}
	if o.MaxReferences <= 0 {
		o.MaxReferences = 1000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o, nil
}
