package mailcase

import "github.com/emailcrm/emailcrm/mailcase/mailauth"

// Action is what the pipeline did with a mail. It crosses the wire (explain
// JSON, statistics), so it is a string.
type Action string

// Actions.
const (
	ActionCreated     Action = "created"     // a new case was created
	ActionAppended    Action = "appended"    // filed on an existing case
	ActionReopened    Action = "reopened"    // filed on a closed case, which was reopened
	ActionFiltered    Action = "filtered"    // exception mail: summary recorded, not processed
	ActionRecorded    Action = "recorded"    // filed on the sender's record only (auto mail, rejected sender)
	ActionRejected    Action = "rejected"    // refused by policy (closed case, unknown sender); recorded
	ActionDuplicate   Action = "duplicate"   // already filed earlier (idempotency)
	ActionStructured  Action = "structured"  // handled by the structured (XML) handler
	ActionQuarantined Action = "quarantined" // set aside with its reason
	ActionRetry       Action = "retry"       // transient failure, left for redelivery
)

// AutoInfo says whether a mail is automatic and why; see
// DetectAuto for the signals.
type AutoInfo struct {
	// IsAuto: the mail is machine-generated (auto-reply, bounce, our own
	// loop). It creates no case and never reopens one. IsAuto implies
	// NoReply.
	IsAuto bool `json:"is_auto"`
	// NoReply: the mail must never be answered automatically. It is set
	// alone for list, bulk and loop signals a person's mail carries too;
	// such mail is processed as human mail otherwise.
	NoReply bool `json:"no_reply"`
	// Kind is "auto-reply", "bulk", "list", "bounce", "loop" or
	// "no-reply"; empty when NoReply is false.
	Kind   string `json:"kind,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// BounceInfo describes a delivery status notification.
type BounceInfo struct {
	IsBounce          bool   `json:"is_bounce"`
	OriginalMessageID string `json:"original_message_id,omitempty"`
	// Recipient and Status come from the report's per-recipient fields.
	Recipient string `json:"recipient,omitempty"`
	Status    string `json:"status,omitempty"`
	// Permanent is true for 5.x.x statuses.
	Permanent bool `json:"permanent,omitempty"`
}

// Step is one recorded decision of the pipeline, in order.
type Step struct {
	Stage    string `json:"stage"`
	Decision string `json:"decision"`
	Reason   string `json:"reason,omitempty"`
}

// Outcome records every decision taken for one mail and why (used by
// explain, statistics and audit).
type Outcome struct {
	Action      Action         `json:"action"`
	Disposition Disposition    `json:"disposition"`
	Mailbox     string         `json:"mailbox"`
	Key         string         `json:"key,omitempty"`
	CaseID      CaseID         `json:"case_id,omitempty"`
	CaseNumber  string         `json:"case_number,omitempty"`
	Filter      *FilterVerdict `json:"filter,omitempty"`
	Auto        AutoInfo       `json:"auto"`
	Bounce      BounceInfo     `json:"bounce"`
	Structured  bool           `json:"structured"`
	// StructuredReply is the automated reply the structured handler asked
	// for (StructuredResult.Reply); nil when none.
	StructuredReply *StructuredReply `json:"structured_reply,omitempty"`
	Sender          *SenderMatch     `json:"sender,omitempty"`
	// Auth is the authentication of the sender (see Options.SenderAuth);
	// nil when the mail did not get that far.
	Auth *mailauth.Result `json:"auth,omitempty"`
	// SenderPolicy says which mailbox policy decided an unknown or
	// ambiguous sender and what it did ("unknown sender: create: created
	// contact contact-9"); "" when no policy applied.
	SenderPolicy string          `json:"sender_policy,omitempty"`
	Thread       *ThreadDecision `json:"thread,omitempty"`
	Route        *Route          `json:"route,omitempty"`
	Steps        []Step          `json:"steps"`
	// Warnings are things an operator should know about a mail that was
	// processed all the same (a Message-ID reused by a different mail).
	Warnings []string `json:"warnings,omitempty"`
	// Error is the reason of a Retry or Quarantine disposition.
	Error string `json:"error,omitempty"`
}

// Record appends a step.
func (o *Outcome) Record(stage, decision, reason string) {
	o.Steps = append(o.Steps, Step{Stage: stage, Decision: decision, Reason: reason})
}

// Result is the result of processing one mail.
type Result struct {
	// Message is the parsed mail; nil when the mail could not be parsed.
	Message *Message
	Outcome Outcome
}
