package mailcase

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emailcrm/emailcrm/mailcase/mailauth"
)

// StructuredHandler handles structured mail: a body that is an XML
// document of the structured API. The xmlapi package provides one.
type StructuredHandler interface {
	// IsStructured reports whether m is structured mail for this handler.
	IsStructured(m *Message) bool
	// HandleStructured runs the mail's actions and returns what it did.
	HandleStructured(ctx context.Context, d *Delivery) (StructuredResult, error)
}

// StructuredResult is what a StructuredHandler did.
type StructuredResult struct {
	CaseID CaseID `json:"case_id,omitempty"`
	Action string `json:"action"`
	Reason string `json:"reason,omitempty"`
	// Reply, when set, asks for an automated reply to the mail (a
	// Responder such as outbox.StructuredReplier sends it); the pipeline
	// copies it to Outcome.StructuredReply.
	Reply *StructuredReply `json:"reply,omitempty"`
	// Auth is how the handler authorised the sender when it decided
	// itself (a shared secret); nil means Delivery.Auth, or not authorised.
	Auth *mailauth.Result `json:"auth,omitempty"`
}

// StructuredReply is the automated reply a structured mail asks for: a
// template by name and the variables it is rendered with.
type StructuredReply struct {
	// Template names the reply template.
	Template string `json:"template"`
	// Vars are the template's variables ({{.Vars.NAME}}).
	Vars map[string]string `json:"vars,omitempty"`
	// To is the recipient; "" means the mail's sender.
	To string `json:"to,omitempty"`
}

// Options configures a Pipeline. A nil *Options is equivalent to a zero
// value; every nil plugin has a documented default.
type Options struct {
	// Mailbox is the mailbox configuration; see Mailbox for its defaults.
	Mailbox Mailbox
	// Filters are the exception filters, run in order after the
	// mailbox block lists; the first that drops the mail wins.
	Filters []Filter
	// Senders identifies senders; nil means a StoreSenderMatcher over the
	// pipeline's store.
	Senders SenderMatcher
	// Threads resolves threads; nil means a resolver that looks the mail's
	// In-Reply-To and References up in the store (threading.NewResolver
	// gives the full ladder).
	Threads ThreadResolver
	// Router routes new cases; nil sends every new case to the mailbox's
	// default queue. The mailbox's own rules come first and are not asked
	// of the Router: under AmbiguousInternal a sender matching several
	// records goes to InternalQueue (Bypass or not), and Mailbox.Bypass
	// sends every other new case to DefaultQueue. A route with an empty
	// Queue means DefaultQueue.
	Router Router
	// Extractor strips quoted history into Message.ReplyText; nil keeps
	// ReplyText equal to Text.
	Extractor ReplyExtractor
	// Structured handles structured mail; nil treats all mail as
	// unstructured.
	Structured StructuredHandler
	// Bounces handles delivery status notifications about the mail the
	// SDK sent; nil only files them.
	Bounces BounceHandler
	// Responders answer filed mail (acknowledgements, confirmations,
	// forwards), in order; see Responder.
	Responders []Responder
	// MaxAttempts bounds the in-process attempts of a mail that fails with
	// a retryable error (IsRetryable); after the last one the mail is left
	// for redelivery (Retry), never quarantined. 0 means 3.
	MaxAttempts int
	// RetryDelay is the pause before the second attempt, doubled after;
	// 0 means 100ms.
	RetryDelay time.Duration
	// MaxConcurrency bounds the mails processed at once by Run; 0 means 1.
	// Mails of one thread are processed one at a time whatever the value.
	MaxConcurrency int
	// DrainTimeout bounds how long Run waits for in-flight mail after ctx
	// is done; 0 means 30s.
	DrainTimeout time.Duration
	// OnResult, if set, is called synchronously after each mail is
	// acknowledged, from the goroutine that processed it.
	OnResult func(ctx context.Context, r *Result)
	// OnEvent, if set, is called synchronously with the lifecycle events
	// of each filed mail, after the filing: "case.created" and
	// "case.routed" for a new case, or "note.appended" for a mail logged
	// on an existing one ("case.status_changed" first when it reopens
	// it), then "mail.received" for every filed mail (payloads in package
	// events, whose Recorder.OnEvent fits). nil means none.
	OnEvent func(ctx context.Context, kind string, caseID CaseID, data map[string]any)
	// Events, if set, records the same lifecycle events of each filed mail
	// (package events' Recorder implements it): their records are kept in
	// the transaction that files the mail when the recorder keeps them in
	// the pipeline's store and the store can (Store.CanFileEvents), so a
	// filed mail never lacks its events nor has events of a filing that
	// failed; otherwise the recorder keeps them in one batch right after
	// the filing. Either way EventsFiled is called after the filing,
	// before OnEvent. The "case.status_changed" of a reopening, which is
	// committed before the mail is filed, is handed alone to EventsFiled
	// (kept false) when the filing after it fails. A mail that another
	// delivery filed first (the store's filing is a no-op) calls neither
	// EventsFiled nor OnEvent on a store that files events with the mail;
	// another store cannot tell, and the recorder keeps the events once by
	// ID. nil means none.
	Events EventRecorder
	// Logger receives pipeline logs; nil means slog.Default().
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// SenderAuth authenticates the sender of each mail, once: its result
	// (Delivery.Auth, Outcome.Auth) decides both whether an employee match
	// is trusted (employee identity is trusted only from authenticated
	// senders) and, for the structured handler, whether the sender may run
	// API actions. A mail whose From is not authenticated is handled as any
	// customer's, with the reason in its outcome. nil means a
	// mailauth.Checker over TrustedAuthServIDs without DKIM (the CLI turns
	// DKIM on with its dkim settings); see package mailauth for the rules
	// and for which method wins when they disagree. A pass also needs the
	// authenticated From domain to be the domain of Message.From.
	SenderAuth mailauth.Verifier
	// Authenticated, if set, replaces SenderAuth: it reports whether m's
	// From address is authenticated (method "callback" in the outcome).
	Authenticated func(m *Message) bool
	// TrustedAuthServIDs lists the authserv-ids of the receiving servers
	// whose Authentication-Results fields are believed (your own MX), for
	// the default SenderAuth. Only the topmost field carrying one of them
	// above the first Received field is read (the one our border MTA
	// added); fields below it came with the mail and are ignored. The MX
	// must still remove incoming fields carrying its ID (RFC 8601 section
	// 5). Empty means none: with the default SenderAuth, no employee
	// identity is trusted.
	TrustedAuthServIDs []string
	// AckTimeout bounds each Source.Ack call made by Run; Ack runs without
	// the cancellation of Run's ctx so that a committed mail is
	// acknowledged even during shutdown. 0 means 10s.
	AckTimeout time.Duration
}

// ProcessOptions configures one Process call. A nil *ProcessOptions is
// equivalent to a zero value.
type ProcessOptions struct {
	// DryRun decides everything but writes nothing to the store (explain).
	DryRun bool
	// Quiet marks a backlog import: nothing is sent about the mail.
	Quiet bool
	// Attempt is the delivery attempt known to the source (1 for the first).
	Attempt int
	// Size is the size announced by the source before download (for
	// example IMAP RFC822.SIZE); 0 means len(raw).
	Size int64
	// Truncated says the source did not download the whole mail (it was
	// over the size limit): raw holds only its header. The mail is handled
	// as oversized.
	Truncated bool
	// SourceQuarantines says the caller sets a mail aside itself when told
	// Quarantine, as a Source's Ack does (Run sets it). When it is false
	// and the store keeps no quarantine (Store.CanQuarantine), nobody would
	// keep a permanently failing mail, so it gets Retry instead: it stays
	// with the caller (an MTA keeps it queued). The one exception is a mail
	// refused by the mailbox policy (ErrTooLarge with RejectOversized):
	// Quarantine with ActionRejected, meaning "refuse it", nothing kept.
	SourceQuarantines bool
}

// Log keys used by the pipeline.
const (
	logKeyMsgID       = "msg_id"
	logKeyCaseID      = "case_id"
	logKeyThreadKey   = "thread_key"
	logKeyDisposition = "disposition"
	logKeyAction      = "action"
	logKeyErr         = "err"
	logKeyAttempt     = "attempt"
	logKeyStage       = "stage"
	logKeySource      = "source"
)

// withDefaults returns a copy of o with defaults resolved.
func (o Options) withDefaults() Options {
	o.Mailbox = o.Mailbox.withDefaults()
	if o.MaxAttempts == 0 {
		o.MaxAttempts = 3
	}
	if o.RetryDelay == 0 {
		o.RetryDelay = 100 * time.Millisecond
	}
	if o.MaxConcurrency == 0 {
		o.MaxConcurrency = 1
	}
	if o.DrainTimeout == 0 {
		o.DrainTimeout = 30 * time.Second
	}
	if o.AckTimeout == 0 {
		o.AckTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.Filters = append([]Filter(nil), o.Filters...)
	o.TrustedAuthServIDs = append([]string(nil), o.TrustedAuthServIDs...)
	o.Mailbox.BlockAddresses = append([]string(nil), o.Mailbox.BlockAddresses...)
	o.Mailbox.BlockDomains = append([]string(nil), o.Mailbox.BlockDomains...)
	return o
}

// validate reports the first invalid option, before anything runs.
func (o *Options) validate() error {
	bad := func(format string, args ...any) error {
		return &Error{Code: InvalidArgument, Op: "NewPipeline", Err: fmt.Errorf(format, args...)}
	}
	mb := &o.Mailbox
	switch {
	case o.MaxAttempts < 0:
		return bad("MaxAttempts %d is negative", o.MaxAttempts)
	case o.RetryDelay < 0:
		return bad("RetryDelay %v is negative", o.RetryDelay)
	case o.MaxConcurrency < 0:
		return bad("MaxConcurrency %d is negative", o.MaxConcurrency)
	case o.DrainTimeout < 0:
		return bad("DrainTimeout %v is negative", o.DrainTimeout)
	case o.AckTimeout < 0:
		return bad("AckTimeout %v is negative", o.AckTimeout)
	case strings.ContainsAny(mb.Name, "\x00\r\n"):
		return bad("mailbox name %q contains a control character", mb.Name)
	case mb.MaxSize < -1:
		return bad("mailbox %s: MaxSize %d is invalid (-1 means unlimited)", mb.Name, mb.MaxSize)
	}
	switch mb.UnknownSender {
	case "", UnknownPlaceholder, UnknownCreateContact, UnknownReject:
	default:
		return bad("mailbox %s: unknown UnknownSender policy %q", mb.Name, mb.UnknownSender)
	}
	switch mb.Ambiguity {
	case "", AmbiguousUnassigned, AmbiguousFirst, AmbiguousInternal:
	default:
		return bad("mailbox %s: unknown Ambiguity policy %q", mb.Name, mb.Ambiguity)
	}
	if mb.Address != "" && NormalizeAddress(mb.Address) == "" {
		return bad("mailbox %s: invalid address %q", mb.Name, mb.Address)
	}
	for i, f := range o.Filters {
		if f == nil {
			return bad("Filters[%d] is nil", i)
		}
	}
	for _, id := range o.TrustedAuthServIDs {
		if strings.TrimSpace(id) == "" {
			return bad("empty entry in TrustedAuthServIDs")
		}
	}
	return nil
}

// Stats are a pipeline's counters since NewPipeline. Each mail
// counts once in Received and once in the counter of its action; Auto
// counts automatic mail in addition to its action, Retried counts retry
// attempts, Errors counts failures (mails left for retry or quarantined
// because of an error, failed acknowledgements, failed receives). Dry runs
// are not counted. Run logs the counters of each run when it stops.
type Stats struct {
	Received    int64 `json:"received"`
	Filtered    int64 `json:"filtered"`
	Auto        int64 `json:"auto"`
	Created     int64 `json:"created"`
	Appended    int64 `json:"appended"`
	Reopened    int64 `json:"reopened"`
	Recorded    int64 `json:"recorded"`
	Rejected    int64 `json:"rejected"`
	Structured  int64 `json:"structured"`
	Duplicates  int64 `json:"duplicates"`
	Quarantined int64 `json:"quarantined"`
	Retried     int64 `json:"retried"`
	// Deferred counts mails left for redelivery (disposition Retry), so
	// that Received is the sum of Filtered, Created, Appended, Reopened,
	// Recorded, Rejected, Structured, Duplicates, Quarantined and
	// Deferred.
	Deferred int64 `json:"deferred"`
	Errors   int64 `json:"errors"`
	// ReusedMessageID counts mails filed as new mails although their
	// Message-ID was already filed for a different mail (in addition to
	// their action, so it is not part of the sum above).
	ReusedMessageID int64 `json:"reused_message_id"`
}

// sub returns the counters of s since b (the statistics of one run).
func (s Stats) sub(b Stats) Stats {
	return Stats{
		Received: s.Received - b.Received, Filtered: s.Filtered - b.Filtered, Auto: s.Auto - b.Auto,
		Created: s.Created - b.Created, Appended: s.Appended - b.Appended, Reopened: s.Reopened - b.Reopened,
		Recorded: s.Recorded - b.Recorded, Rejected: s.Rejected - b.Rejected, Structured: s.Structured - b.Structured,
		Duplicates: s.Duplicates - b.Duplicates, Quarantined: s.Quarantined - b.Quarantined,
		Retried: s.Retried - b.Retried, Deferred: s.Deferred - b.Deferred, Errors: s.Errors - b.Errors,
		ReusedMessageID: s.ReusedMessageID - b.ReusedMessageID,
	}
}

type pipelineStats struct {
	received, filtered, auto, created, appended, reopened, recorded,
	rejected, structured, duplicates, quarantined, retried, deferred, errors atomic.Int64
	reusedMessageID atomic.Int64
}

// countDeferred counts a mail of a counted (not dry) run left for
// redelivery.
func (p *Pipeline) countDeferred(res *Result, dryRun bool) {
	if res != nil && !dryRun && res.Outcome.Disposition == Retry {
		p.stats.deferred.Add(1)
	}
}

// Pipeline turns inbound mail into cases: see the package documentation
// for the stages and guarantees. A Pipeline is safe for concurrent use:
// Process may be called from many goroutines and Run several times (one per
// source) at once.
type Pipeline struct {
	// noContacts: the store has no contact directory and the mailbox chose
	// no unknown-sender policy, so unknown senders get no contact.
	noContacts bool

	store *Store
	opts  Options // resolved
	mb    Mailbox // == opts.Mailbox
	log   *slog.Logger

	block   *BlockList
	senders SenderMatcher
	threads ThreadResolver // nil: the built-in store resolver
	router  Router         // mailboxRouter over opts.Router
	auth    mailauth.Verifier

	stats pipelineStats

	contactMu     sync.Mutex // serialises find-or-create of contacts
	placeholderID string     // guarded by contactMu

	threadLocks keyLocks // serialise mails of one thread in Process

	mu     sync.Mutex
	closed bool
	done   chan struct{} // closed by Close
}

// threadKeyUnknown asks process to compute the thread key itself.
const threadKeyUnknown = "\x00?"

// keyLocks is a set of mutexes by key that honour ctx while waiting.
type keyLocks struct {
	mu sync.Mutex
	m  map[string]*keyLock
}

type keyLock struct {
	ch   chan struct{}
	refs int
}

// lock takes the lock of key; it returns ctx's error if ctx is done first.
func (k *keyLocks) lock(ctx context.Context, key string) (unlock func(), err error) {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyLock{}
	}
	l := k.m[key]
	if l == nil {
		l = &keyLock{ch: make(chan struct{}, 1)}
		k.m[key] = l
	}
	l.refs++
	k.mu.Unlock()
	release := func() {
		k.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
		return func() { <-l.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}

// checkDirectory fails early when the mailbox's unknown-sender policy must
// create a contact and the store has no contact directory
// (driver.Directory): every mail from a new sender would fail otherwise.
func checkDirectory(store *Store, mb *Mailbox) error {
	if store.HasDirectory() {
		return nil
	}
	switch {
	case mb.UnknownSender == UnknownCreateContact,
		(mb.UnknownSender == "" || mb.UnknownSender == UnknownPlaceholder) && mb.UnknownContactID == "":
		return &Error{Code: InvalidArgument, Op: "NewPipeline", Err: fmt.Errorf(
			"mailbox %s: the store has no contact directory, so the unknown-sender policy %q cannot create contacts; set UnknownContactID or use %q",
			mb.Name, mb.UnknownSender, UnknownReject)}
	}
	return nil
}

// NewPipeline returns a pipeline filing into store. It validates opts and
// fails early (InvalidArgument) on a bad configuration. opts is copied:
// later changes by the caller have no effect. A nil opts is equivalent to a
// zero Options. Closing the pipeline does not close store.
func NewPipeline(store *Store, opts *Options) (*Pipeline, error) {
	if store == nil {
		return nil, &Error{Code: InvalidArgument, Op: "NewPipeline", Err: errors.New("nil store")}
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	// Without a contact directory and without a policy chosen, unknown
	// senders leave the case without a contact: the CRM keeps no contacts
	// the pipeline could create.
	noContacts := !store.HasDirectory() && o.Mailbox.UnknownSender == "" && o.Mailbox.UnknownContactID == ""
	o = o.withDefaults()
	if !noContacts {
		if err := checkDirectory(store, &o.Mailbox); err != nil {
			return nil, err
		}
	}
	block, err := NewBlockList(o.Mailbox.BlockAddresses, o.Mailbox.BlockDomains)
	if err != nil {
		return nil, &Error{Code: InvalidArgument, Op: "NewPipeline", Err: fmt.Errorf("mailbox %s: %w", o.Mailbox.Name, err)}
	}
	p := &Pipeline{
		noContacts: noContacts,
		store:      store,
		opts:       o,
		mb:         o.Mailbox,
		log:        o.Logger.With("component", "pipeline", "mailbox", o.Mailbox.Name),
		block:      block,
		senders:    o.Senders,
		threads:    o.Threads,
		auth:       o.SenderAuth,
		done:       make(chan struct{}),
	}
	p.router = mailboxRouter{mb: &p.mb, next: o.Router}
	if p.senders == nil {
		p.senders = NewStoreSenderMatcher(store, nil)
	}
	if p.auth == nil && o.Authenticated == nil {
		c, err := mailauth.New(&mailauth.Options{TrustedAuthServIDs: o.TrustedAuthServIDs})
		if err != nil {
			return nil, &Error{Code: InvalidArgument, Op: "NewPipeline", Err: err}
		}
		p.auth = c
	}
	return p, nil
}

// Mailbox returns the pipeline's mailbox configuration with defaults
// resolved.
func (p *Pipeline) Mailbox() Mailbox { return p.mb }

// Stats returns a snapshot of the counters.
func (p *Pipeline) Stats() Stats {
	s := &p.stats
	return Stats{
		Received: s.received.Load(), Filtered: s.filtered.Load(), Auto: s.auto.Load(),
		Created: s.created.Load(), Appended: s.appended.Load(), Reopened: s.reopened.Load(),
		Recorded: s.recorded.Load(), Rejected: s.rejected.Load(), Structured: s.structured.Load(),
		Duplicates: s.duplicates.Load(), Quarantined: s.quarantined.Load(),
		Retried: s.retried.Load(), Deferred: s.deferred.Load(), Errors: s.errors.Load(),
		ReusedMessageID: s.reusedMessageID.Load(),
	}
}

// Close stops the pipeline: running Run calls stop receiving and drain,
// and later calls return ErrClosed. It does not close the store. A second
// Close returns ErrClosed.
func (p *Pipeline) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	p.closed = true
	close(p.done)
	return nil
}

func (p *Pipeline) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

func errClosed(op string) error { return &Error{Code: FailedPrecondition, Op: op, Err: ErrClosed} }

// Process runs one raw mail through the stages and returns what was
// decided. A nil popts is equivalent to a zero ProcessOptions.
//
// The Result is always returned (nil only when the pipeline is closed). Its
// Outcome.Disposition says what the caller must do with the mail:
//   - Done: filed (or an exact duplicate); the source may delete it.
//   - Quarantine: a permanent failure; the mail was set aside with
//     Outcome.Error as reason. The store holds the raw bytes when it keeps
//     quarantined mail (Store.CanQuarantine); otherwise the caller must
//     set it aside (ProcessOptions.SourceQuarantines), or, with
//     ActionRejected, refuse it (mailbox policy, nothing kept).
//   - Retry: leave the mail for redelivery. Given for a transient cause
//     (IsRetryable: store outage, Unavailable plugin) still failing after
//     Options.MaxAttempts attempts, whatever the store; for ctx done; when
//     the quarantine could not be written; and for a permanent failure
//     nobody can keep (no store quarantine and no SourceQuarantines).
//     Outcome.Error holds the cause with its code.
//
// The error is nil for Done and Quarantine and non-nil for Retry (the
// cause, carrying its code). Process never panics on any input: panics in
// stages or plugins are recovered and quarantine the mail.
func (p *Pipeline) Process(ctx context.Context, raw []byte, popts *ProcessOptions) (*Result, error) {
	if p.isClosed() {
		return nil, errClosed("Process")
	}
	var po ProcessOptions
	if popts != nil {
		po = *popts
	}
	res, err := p.process(ctx, raw, po, "", threadKeyUnknown)
	p.countDeferred(res, po.DryRun)
	return res, err
}

// Reprocess runs the quarantined mail id through the pipeline
// again, for example after a fix of the cause. On success (disposition
// Done) the mail is deleted from the quarantine. When it fails again it
// stays in the quarantine (no second item is written) and the error
// describes the cause. The store must keep quarantined mail
// (Unimplemented otherwise); an unknown id is NotFound.
func (p *Pipeline) Reprocess(ctx context.Context, id string) (*Result, error) {
	const op = "Reprocess"
	if p.isClosed() {
		return nil, errClosed(op)
	}
	if !p.store.CanQuarantine() {
		return nil, &Error{Code: Unimplemented, Op: op, Err: errors.New("the store keeps no quarantine")}
	}
	got, ok, err := p.store.GetQuarantine(ctx, id)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, &Error{Code: NotFound, Op: op, Err: fmt.Errorf("no quarantined mail %q", id)}
	}
	item := &got
	if item.Mailbox != "" && item.Mailbox != p.mb.Name {
		return nil, &Error{Code: FailedPrecondition, Op: op, Err: fmt.Errorf("mail %s belongs to mailbox %q, not %q", id, item.Mailbox, p.mb.Name)}
	}
	res, err := p.process(ctx, item.Raw, ProcessOptions{Attempt: item.Attempts + 1}, id, threadKeyUnknown)
	p.countDeferred(res, false)
	if err != nil {
		return res, err
	}
	if res.Outcome.Disposition != Done {
		return res, &Error{Code: FailedPrecondition, Op: op, Err: fmt.Errorf("mail %s is still quarantined: %s", id, res.Outcome.Error)}
	}
	if err := p.store.DeleteQuarantine(ctx, id); err != nil {
		return res, err
	}
	res.Outcome.Record("quarantine", "deleted", "re-processed quarantined mail "+id)
	return res, nil
}
