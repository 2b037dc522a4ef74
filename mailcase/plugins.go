package mailcase

import (
	"context"

	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/mailcase/mailauth"
)

// Delivery is what the pipeline knows about one mail when it calls a plugin.
// Fields are filled stage by stage (see the package documentation for the
// order); a plugin must not modify it.
type Delivery struct {
	Mailbox *Mailbox
	Message *Message
	// Key is the mail's idempotency key: IdempotencyKey, or for a mail
	// whose Message-ID was already filed for different content, a key
	// derived from it and the content fingerprint. Plugins that file
	// under the mail's key use this one.
	Key    string
	Auto   AutoInfo
	Bounce BounceInfo
	Sender SenderMatch
	Thread ThreadDecision
	// Auth is the authentication of the sender (Options.SenderAuth),
	// computed once per mail before the structured stage.
	Auth mailauth.Result
}

// A BounceHandler closes the loop of outgoing mail: the pipeline calls it
// for every delivery status notification (Delivery.Bounce.IsBounce), before
// the notification is filed, except in a dry run. Package outbox provides
// one that marks the message it reports on as bounced. An error fails the
// mail like a stage error: a retryable one leaves it for redelivery.
type BounceHandler interface {
	HandleBounce(ctx context.Context, d *Delivery) error
}

// A Responder answers a filed mail: an automatic acknowledgement, a
// confirmation, a forward (package outbox provides them). The pipeline
// calls each Responder after the mail is filed (Disposition Done), in
// order, except in a dry run and for quiet (backlog) mail, with the
// Delivery and the Result (a duplicate, ActionDuplicate, included: the
// Delivery then holds only the mailbox, the message and the key). Respond
// returns what it did, for the mail's outcome ("" for nothing worth
// recording). Its error is logged and recorded in the outcome; it never
// makes the mail be filed again. A process that dies between filing and
// responding leaves the mail unanswered: its redelivery is a duplicate
// (a CaseResponder on a store that queues with the filing is the exception).
type Responder interface {
	Respond(ctx context.Context, d *Delivery, r *Result) (string, error)
}

// A CaseResponder is a Responder that answers a new case with a message it
// composes from the case alone (an acknowledgement). When the store queues
// outgoing mail in the transaction that creates a case
// (Store.CanQueueWithFiling: the SQL stores), the pipeline asks it before
// creating the case and queues its answer in that transaction, so a crash
// keeps the case and its answer or neither; Respond is then not called for
// that mail. With any other store only Respond is called, after filing.
type CaseResponder interface {
	Responder
	// PrepareNewCase decides, before the case exists, whether the mail is
	// answered. It returns compose, called with the created case inside the
	// filing's transaction (it must not call the store and may be called
	// more than once), or a nil compose and the reason the mail gets no
	// answer. r holds the outcome so far, with Message set. An error of
	// PrepareNewCase or compose is recorded in the outcome and never stops
	// the filing.
	PrepareNewCase(ctx context.Context, d *Delivery, r *Result) (compose func(Case) (*driver.OutboxMessage, error), why string, err error)
}

// A Filter decides whether a mail is exception mail to drop. A
// dropped mail is recorded as a summary and not processed further.
type Filter interface {
	FilterMail(ctx context.Context, d *Delivery) (FilterVerdict, error)
}

// FilterVerdict is a Filter's answer.
type FilterVerdict struct {
	Drop   bool   `json:"drop"`
	Rule   string `json:"rule,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// FilterFunc adapts a function to Filter.
type FilterFunc func(ctx context.Context, d *Delivery) (FilterVerdict, error)

// FilterMail calls f(ctx, d).
func (f FilterFunc) FilterMail(ctx context.Context, d *Delivery) (FilterVerdict, error) {
	return f(ctx, d)
}

// A SenderMatcher identifies who sent a mail. A sender that
// matches nothing is not an error: the result's Kind is SenderUnknown.
type SenderMatcher interface {
	MatchSender(ctx context.Context, from Address) (SenderMatch, error)
}

// SenderMatcherFunc adapts a function to SenderMatcher.
type SenderMatcherFunc func(ctx context.Context, from Address) (SenderMatch, error)

// MatchSender calls f(ctx, from).
func (f SenderMatcherFunc) MatchSender(ctx context.Context, from Address) (SenderMatch, error) {
	return f(ctx, from)
}

// SenderKind says how a sender was identified.
type SenderKind string

// Sender kinds.
const (
	SenderContact   SenderKind = "contact"
	SenderAccount   SenderKind = "account"
	SenderEmployee  SenderKind = "employee"
	SenderUnknown   SenderKind = "unknown"
	SenderAmbiguous SenderKind = "ambiguous"
)

// SenderMatch is the identity of a mail's sender.
type SenderMatch struct {
	Kind     SenderKind `json:"kind"`
	Address  string     `json:"address"`
	Contact  *Contact   `json:"contact,omitempty"`
	Account  *Account   `json:"account,omitempty"`
	Employee *Employee  `json:"employee,omitempty"`
	// Candidates holds the contact or account IDs when Kind is
	// SenderAmbiguous.
	Candidates []string `json:"candidates,omitempty"`
	Reason     string   `json:"reason"`
}

// A ThreadResolver decides whether a mail continues an existing case. An error means the resolver itself failed.
type ThreadResolver interface {
	ResolveThread(ctx context.Context, d *Delivery) (ThreadDecision, error)
}

// ThreadResolverFunc adapts a function to ThreadResolver.
type ThreadResolverFunc func(ctx context.Context, d *Delivery) (ThreadDecision, error)

// ResolveThread calls f(ctx, d).
func (f ThreadResolverFunc) ResolveThread(ctx context.Context, d *Delivery) (ThreadDecision, error) {
	return f(ctx, d)
}

// ThreadAction is what the pipeline does with a mail after thread
// resolution.
type ThreadAction string

// Thread actions.
const (
	// ThreadNew: no case matched; create one.
	ThreadNew ThreadAction = "new"
	// ThreadAppend: file the mail on CaseID.
	ThreadAppend ThreadAction = "append"
	// ThreadReopen: file on CaseID (closed) and reopen it.
	ThreadReopen ThreadAction = "reopen"
	// ThreadNewLinked: create a new case linked to CaseID (closed).
	ThreadNewLinked ThreadAction = "new_linked"
	// ThreadReject: do not file on a case; the sender gets a notice.
	ThreadReject ThreadAction = "reject"
)

// ThreadDecision is a ThreadResolver's answer. Signal names what matched, for example "message-id-signed", "references", "subject-token".
type ThreadDecision struct {
	Action     ThreadAction `json:"action"`
	CaseID     CaseID       `json:"case,omitempty"`
	CaseNumber string       `json:"case_number,omitempty"`
	Signal     string       `json:"signal,omitempty"`
	Detail     string       `json:"detail,omitempty"`
	// Reason explains the decision, including signals that were refused
	// (anti-hijack) and closed-case policies applied.
	Reason string `json:"reason,omitempty"`
	// SenderOnCase reports that the anti-hijack rule (SenderOnCase)
	// accepted the sender for the case found. Only then do the mail's
	// addresses (From, To, Cc) join the case's participants; a resolver
	// that leaves it false files the mail without adding anyone.
	SenderOnCase bool `json:"sender_on_case,omitempty"`
}

// Found reports whether the mail is filed on an existing case.
func (t ThreadDecision) Found() bool {
	return t.Action == ThreadAppend || t.Action == ThreadReopen
}

// A Router decides the queue, priority and category of a mail that opens a
// new case. An error means the router itself failed.
type Router interface {
	Route(ctx context.Context, d *Delivery) (Route, error)
}

// RouterFunc adapts a function to Router.
type RouterFunc func(ctx context.Context, d *Delivery) (Route, error)

// Route calls f(ctx, d).
func (f RouterFunc) Route(ctx context.Context, d *Delivery) (Route, error) { return f(ctx, d) }

// Route is a routing decision with its explanation.
type Route struct {
	Queue    string   `json:"queue"`
	Priority Priority `json:"priority,omitempty"`
	Origin   string   `json:"origin,omitempty"`
	Category string   `json:"category,omitempty"`
	// Rule names the rule that decided the queue.
	Rule string `json:"rule,omitempty"`
	// Reason is a readable explanation.
	Reason string `json:"reason,omitempty"`
	// Scores holds keyword or classifier scores per queue, best first.
	Scores []QueueScore `json:"scores,omitempty"`
	// Fired lists every rule that matched, in evaluation order.
	Fired []string `json:"fired,omitempty"`
}

// QueueScore is one queue's score in a routing decision.
type QueueScore struct {
	Queue string  `json:"queue"`
	Score float64 `json:"score"`
}

// A ReplyExtractor returns the new text of a reply without quoted history. The threading package provides one.
type ReplyExtractor interface {
	ExtractReply(m *Message) string
}

// ReplyExtractorFunc adapts a function to ReplyExtractor.
type ReplyExtractorFunc func(m *Message) string

// ExtractReply calls f(m).
func (f ReplyExtractorFunc) ExtractReply(m *Message) string { return f(m) }

var (
	_ Filter         = FilterFunc(nil)
	_ SenderMatcher  = SenderMatcherFunc(nil)
	_ ThreadResolver = ThreadResolverFunc(nil)
	_ Router         = RouterFunc(nil)
	_ ReplyExtractor = ReplyExtractorFunc(nil)
)
