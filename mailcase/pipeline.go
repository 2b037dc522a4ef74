package mailcase

import (
	"context"
	"log/slog"
	"time"
)

// StructuredHandler handles structured mail (M-2.3): a body that is an XML
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
}

// Options configures a Pipeline. A nil *Options is equivalent to a zero
// value; every nil plugin has a documented default.
type Options struct {
	// Mailbox is the mailbox configuration; see Mailbox for its defaults.
	Mailbox Mailbox
	// Filters are the exception filters (M-2.4), run in order after the
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
	// default queue.
	Router Router
	// Extractor strips quoted history into Message.ReplyText; nil keeps
	// ReplyText equal to Text.
	Extractor ReplyExtractor
	// Structured handles structured mail; nil treats all mail as
	// unstructured.
	Structured StructuredHandler
	// MaxAttempts bounds the in-process attempts of a mail that fails with
	// a retryable error before it is quarantined; 0 means 3.
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
	// Logger receives pipeline logs; nil means slog.Default().
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
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
}
