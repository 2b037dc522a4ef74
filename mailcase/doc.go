// Package mailcase turns support mailboxes into CRM cases (email-to-case).
//
// It holds the shared vocabulary (Message, Address, Case, Route,
// Disposition), the plugin roles (Source, Filter, SenderMatcher,
// ThreadResolver, Router, ReplyExtractor, StructuredHandler), the portable
// Store over CRM drivers (package driver), and the Pipeline that runs each
// mail through the stages below. Think of it as database/sql for case
// systems: applications program against *Store and *Pipeline, CRM adapters
// implement the small driver.CaseStore interface.
//
// # The flow of a mail
//
// A Source (IMAP, POP3, a directory, an MTA pipe) hands out raw mails;
// Pipeline.Run processes each and acknowledges it to the source only after
// its outcome is committed. Pipeline.Process runs one mail without a source
// (MTA pipe, LMTP, explain). Every decision is recorded as a Step in the
// mail's Outcome, with its reason, in this order:
//
//  1. receive: the raw bytes, the delivery attempt and the quiet flag
//     (backlog import: nothing is sent about the mail).
//  2. size: a mail over Mailbox.MaxSize, or one the source did not
//     download whole, is not analysed: only its header is read (at most
//     256 KiB), and it is filed as a new case in the default queue with the
//     raw mail attached as "original.eml". With Mailbox.RejectOversized it
//     is quarantined with the reason instead. It is never lost.
//  3. parse: ParseMessage. A mail nothing usable can be built from is
//     quarantined with the reason, its raw bytes intact.
//  4. idempotency: the key is IdempotencyKey (mailbox name and
//     Message-ID; a mail without Message-ID gets one derived from a hash of
//     its bytes). A key the store already filed (Store.LookupProcessed) ends
//     as ActionDuplicate, Done, when the filed mail had the same content
//     (ContentFingerprint: trace fields such as Received, Return-Path and
//     Delivered-To, the envelope and header folding do not count). A
//     different mail under a reused Message-ID is filed as a new mail under
//     the key plus a suffix from its fingerprint, with a warning in
//     Outcome.Warnings, counted in Stats.ReusedMessageID; its own
//     redelivery is a duplicate. A key filed without a fingerprint (before
//     stores kept them) counts as the same content.
//  5. filter: the mailbox block lists (BlockList: addresses, and
//     domains with their subdomains, normalised), then Options.Filters in
//     order; the first that drops wins. A dropped mail is recorded as a
//     summary on the sender's record (Email.Summary, body only with
//     Mailbox.KeepFilteredBody): ActionFiltered.
//  6. auto: DetectAuto and DetectBounce. Automatic mail is filed and
//     never answered and never reopens a case: when it threads to a case
//     (a bounce through the original Message-ID too) it is appended without
//     changing the case's status; otherwise it is recorded on the sender's
//     record (ActionRecorded). No sender policy applies to it (no contact is
//     created for a robot). Only machine-generated mail is automatic
//     (AutoInfo.IsAuto); list, bulk and foreign loop signals
//     (Precedence: bulk/junk/list, List-Id, List-Unsubscribe, X-Loop,
//     X-Auto-Response-Suppress, Exchange inbox-rule headers) set only
//     AutoInfo.NoReply: the mail is processed as human mail (it may create
//     a case) and is never answered automatically.
//     Before the structured stage, the sender is authenticated once per
//     mail (step "auth", Outcome.Auth, Delivery.Auth): Options.SenderAuth,
//     by default the Authentication-Results of Options.TrustedAuthServIDs,
//     with package mailauth also verifying DKIM signatures in process and
//     aligning the signing domain with the From domain. Filtered and
//     automatic mail get it when their sender is linked. The one result
//     serves the structured handler's trust check and employee identity.
//  7. structured: when Options.Structured recognises the mail, its
//     HandleStructured runs the actions (ActionStructured) and the mail's
//     key is recorded so a redelivery is a duplicate. The automated reply
//     it asks for (StructuredResult.Reply) is kept in
//     Outcome.StructuredReply for a Responder to send.
//  8. sender: Options.Senders (default StoreSenderMatcher) identifies
//     the sender of From (else Sender, Reply-To, Return-Path). An employee
//     match is trusted only from an authenticated sender (the auth result
//     above); an untrusted one, a spoofed From, is downgraded to the
//     contact having the address, or to an unknown sender, with the reason
//     recorded. Then the mailbox policies: ambiguity (unassigned,
//     first candidate, or the internal-support queue) and unknown sender
//     (placeholder contact, new contact, or reject: the mail is
//     recorded, ActionRejected).
//  9. extract: Options.Extractor sets Message.ReplyText.
//  10. thread: Options.Threads, by default a lookup of the
//     References and In-Reply-To Message-IDs (and a bounce's original)
//     in the store, preferring the latest; a closed case gives ThreadReopen
//     for human mail.
//  11. route and file: ThreadAppend appends the mail to the case;
//     ThreadReopen sets the case open, then appends; ThreadReject records
//     the mail on the sender's record (ActionRejected); ThreadNew and
//     ThreadNewLinked route the mail (Options.Router; Mailbox.Bypass and a
//     nil Router give Mailbox.DefaultQueue, and so does a route without
//     queue) and create a case with the contact, account, route and
//     the mail as its first email.
//  12. ack (Run only): Source.Ack with the disposition.
//
// # Guarantees
//
// Nothing is lost. A stage failing with a retryable error
// (IsRetryable) is retried in process up to Options.MaxAttempts times with
// a doubling Options.RetryDelay; every stage is idempotent (keys), so a
// retry never files twice. A retryable error still failing after the last
// attempt is never a reason to set the mail aside: the mail is left for
// redelivery (Retry, Outcome.Error holding the cause and its code), and Run
// backs off while mails keep failing so. Other errors quarantine the mail
// at once: Store.PutQuarantine keeps its raw bytes and reason when the
// store can (once per key: a redelivery failing again adds no second item),
// and the source is told Quarantine so it sets the mail aside too. When
// neither the store nor the caller can keep it (no store quarantine and no
// ProcessOptions.SourceQuarantines, as with an MTA pipe) the mail is left
// with the caller (Retry). When the quarantine cannot be written the mail
// is left in the mailbox (Retry). A panic in any stage or plugin is recovered,
// logged with its stack, and quarantines the mail with the reason
// "panic: ..."; the pipeline goes on with the next mail. Pipeline.Reprocess
// runs a quarantined mail again and deletes it from the quarantine on
// success.
//
// Exactly-once filing. Delivery is at least once (a crash between filing
// and acknowledging redelivers a mail); every record the pipeline files
// carries the mail's idempotency key, which the store records atomically,
// so a redelivered mail is a duplicate. Mails of one thread (see ThreadKey)
// are filed one at a time, whether they come through Run (which also keeps
// their arrival order) or concurrent Process calls, so a new thread and its
// first reply cannot race into two cases; the store's idempotency is the
// second line of defence.
//
// Events with the filing. The lifecycle events of a filed mail
// (Options.Events) are committed in the transaction that files it when the
// store can (Store.CanFileEvents): a filed mail never lacks its events and
// a filing that failed leaves none. Other stores get them in one append
// right after the filing (a crash in between loses the events, never the
// mail). The recorder and Options.OnEvent hear them after the commit. A
// reopening is committed on its own before the mail's filing: when that
// filing fails, its case.status_changed is recorded at once, alone (a
// retry finds the case open), with an ID derived from the mail. A mail
// that another delivery filed first announces nothing on a store that
// files events with the mail, whether it would append or create.
//
// The sender's record. Every mail is saved once under its key: a
// mail filed on a case is the case's activity, linked to the case's contact
// and account; a mail filed on no case (filtered, automatic, rejected) is an
// interaction on the sender's contact or account. A mail filed on an
// existing case whose contact is not the sender (a colleague's reply) also
// gets a summary interaction, without body, on the sender's record,
// referring to the case, under the derived key key+"\x00sender".
//
// Shutdown. Run stops receiving when its ctx is done or the pipeline is
// closed, lets the mails in flight finish within Options.DrainTimeout, and
// acknowledges them without ctx's cancellation, so a committed mail is not
// redelivered.
//
// # Concurrency
//
// Store and Pipeline are safe for concurrent use. Plugins are called from
// several goroutines at once and must be safe for concurrent use; they must
// not modify the *Delivery they receive.
package mailcase
