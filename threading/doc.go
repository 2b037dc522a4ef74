// Package threading decides which case a mail continues and extracts
// the new text of replies.
//
// # Resolution ladder
//
// Resolver (NewResolver) implements mailcase.ThreadResolver with a ladder
// of independent resolvers tried in order; the first that names a case
// wins, and the decision records the signal that matched:
//
//	message-id-signed  our signed Message-IDs in In-Reply-To/References
//	message-id-store   In-Reply-To/References known to the store
//	token-subject      signed token [ref:<id>:<mac>] in the subject
//	token-body         signed token in the body (text or HTML)
//	context-id         signed context ID ctx:<number>.<mac> in the body
//	subject-number     bare number: "About Case 1234 ::", "[Ticket #1234]",
//	                   "CRM:0001234", "[#1234]" (configurable)
//	thread-index       Thread-Index signed conversation GUID, else the
//	                   Thread-Topic number
//
// Signed markers are truncated HMAC-SHA256 tags (at least 64 bits) over the
// value with a per-installation key, compared in constant time; they decode
// to the case without a store lookup (GetCase then fetches its status).
// Marker values are lower-case base32 so they survive case changes, HTML
// rendering and line wrapping. A context ID's tag covers the case number
// exactly as written (the store looks numbers up as written), so only its
// tag, not its number, may change letter case.
//
// Markers naming missing cases cost bounded work: each resolver looks up
// at most a few distinct cases and records at most a few notes, and
// signed Message-IDs are read from the last Options.MaxReferences IDs.
//
// # Anti-hijack
//
// A bare number (subject, unsigned Thread-Topic) threads only when the
// sender is the case's contact, one of its participants or an employee.
// Our own addresses (Options.OwnAddresses, and always the receiving
// mailbox's address) are on every case, so they never count as
// participants, and mail claiming to come from one of them threads a bare
// number only from an employee.
// Otherwise the refusal is recorded in the decision's Reason and the mail
// opens a new case. Signed markers and Message-IDs always thread.
//
// A subject with several case numbers threads on the leftmost one that
// names an existing case; the detail names the others.
//
// # Closed cases
//
// A reply to a closed case follows a Policy chosen by the case's queue
// (Options.QueuePolicies), else the receiving mailbox
// (Options.MailboxPolicies), else Options.ClosedPolicy: reopen, reopen
// within a window else a new linked case, always a new case (linked or
// not), or reject with a notice. Automatic mail is appended without
// reopening, whatever the policy.
//
// # Sub-cases
//
// A token or Message-ID made for a sub-case names the sub-case, so the
// mail and its notes go there; the decision's detail names the
// parent.
//
// # Outgoing mail
//
// Codec.Outgoing builds the Message-ID, In-Reply-To, References, subject
// (with the case number and optionally the token), Thread-Index,
// Thread-Topic and the body context line of a mail about a case.
// No CR or LF from input reaches a header value.
//
// # Reply extraction
//
// Extractor (NewExtractor) implements mailcase.ReplyExtractor; see its
// documentation for the rules. It runs in linear time. HTML is rendered
// with HTML5's implied end tags for <head> (a <body> or any body tag, or
// text, ends it), and the resolver renders a delivery's HTML body at most
// once, shared by the body-marker rungs.
package threading
