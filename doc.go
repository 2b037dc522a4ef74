// Package emailcrm is an embeddable Go SDK that turns support mailboxes into
// CRM cases (email-to-case). This package holds the documentation and
// NewPipeline, the batteries-included way to build a pipeline: the
// project's thread resolver, reply extractor and router wired wherever the
// caller leaves a role empty, with the list of plugins it used. The code
// lives in the packages listed below.
//
// A Go program wires a mailbox source, a few small plugins and a case store
// into a mailcase.Pipeline. Every inbound mail is parsed, classified,
// matched to its sender, threaded onto an existing case or routed to a queue
// as a new one, and filed in the store exactly once. Every decision is
// recorded in a mailcase.Outcome, so any mail can be explained afterwards.
//
// # Architecture
//
// The SDK is shaped like database/sql, for case systems: programs use the
// concrete, portable mailcase.Store, and each CRM is a small driver that
// implements driver.CaseStore. Everything shared lives in the portable
// layer exactly once: validation and normalisation of arguments, retries
// of idempotent operations, call timeouts, error codes and logging. Drivers
// stay thin: they translate records and classify their errors. The in-memory
// driver memstore is the reference that defines the semantics, and the
// conformance suite drivertest checks every driver against them.
//
// The same idea applies to the pipeline's roles: each is a small interface
// declared in mailcase (one to three methods, each with a Func adapter),
// with a default that works and implementations in their own packages.
//
// # The flow of a mail
//
// A mailcase.Source delivers a mailcase.Received. The pipeline then (the
// mailcase package documentation lists every stage):
//
//  1. checks the mailbox's size limit: an oversized mail is filed
//     unanalysed in the default queue, or set aside, never lost;
//  2. parses it (mailcase.ParseMessage; soft problems become warnings, the
//     raw mail is kept) and computes its idempotency key (mailbox and
//     Message-ID, or a hash of the bytes): a mail already filed is a
//     duplicate and nothing more;
//  3. applies the mailbox's block lists and exception filters
//     (mailcase.Filter); a filtered mail is recorded as a summary;
//  4. detects automatic mail (auto-replies, bounces with their original
//     Message-ID), which is filed but never answered, never opens or
//     reopens a case; list and bulk mail from people still becomes a case
//     but is never answered automatically; structured (XML) mail goes to the
//     mailcase.StructuredHandler;
//  5. identifies the sender (mailcase.SenderMatcher): a contact by full
//     address first, else an employee or an account by domain, else the
//     mailbox's unknown-sender policy;
//  6. extracts the new text of a reply (mailcase.ReplyExtractor) and
//     resolves the thread (mailcase.ThreadResolver): append to an existing
//     case, reopen it, open a linked case, or start a new one;
//  7. for a new case, routes it to a queue with a priority
//     (mailcase.Router) and creates it with the mail as its first
//     activity; otherwise files the mail on the case;
//  8. acknowledges the mail to the source only after the store has
//     committed (Done), or leaves it for redelivery (Retry), or sets it
//     aside with its reason and raw bytes (Quarantine).
//
// # Packages
//
// Each role lives in its own package; dependencies point toward mailcase.
//
//   - mailcase: the vocabulary (Message, Case, Outcome), the roles, the
//     Pipeline and the portable Store, with the defaults of every role
//     (store sender matcher, header thread lookup, default queue).
//   - mailcase/driver: the contract CRM drivers implement.
//   - mailcase/memstore: the in-memory reference store (URL scheme "mem").
//   - mailcase/drivertest: the conformance suite for drivers.
//   - mailcase/mailcasetest: fakes and a realistic mail generator for tests.
//   - mailcase/filesource: sources over a directory of .eml files, a
//     Maildir and an mbox file (backlog import, replays, tests).
//   - mailcase/scheduler: many mailboxes in one process, each polled at its
//     own interval.
//   - mailcase/events: lifecycle events (case created, reply sent, SLA
//     breach...) to in-process observers, signed webhooks and NATS
//     JetStream, delivered from the store's durable event log.
//   - threading: thread resolution (the ThreadResolver) and reply
//     extraction (the ReplyExtractor).
//   - routing: the Router for new cases, with explained decisions.
//   - xmlapi: the StructuredHandler for structured (XML) mail.
//   - adapters/sqlstore: the SQL store driver (SQLite, PostgreSQL,
//     MySQL/MariaDB).
//   - adapters/imapsource, adapters/pop3source, adapters/lmtpsource:
//     mailbox sources over IMAP, POP3 and an LMTP listener.
//   - examples/mailcase: the example command line (demo, explain, import,
//     cases, run, pipe, lmtp, route, train); its commands are the
//     importable package examples/mailcase/cli (cli.Main), for a main
//     linking your own driver.
//
// # URLs
//
// mailcase.OpenStore opens a store from a URL whose scheme selects the
// driver, as sql.Open does with a driver name. A driver registers its
// scheme in mailcase.DefaultURLMux when it is imported, if it can open
// without secrets in the URL:
//
//	import _ "github.com/emailcrm/emailcrm/mailcase/memstore"
//
//	store, err := mailcase.OpenStore(ctx, "mem://")
//
// URLs identify resources only; credentials never go in a URL. Each driver
// documents its URL format and query parameters under # URLs in its package
// documentation, and rejects unknown parameters. Programs that need several
// registries use their own mailcase.URLMux.
//
// # Errors
//
// Store and Pipeline operations return a *mailcase.Error carrying an
// mailcase.ErrorCode (NotFound, AlreadyExists, InvalidArgument,
// Unavailable, ResourceExhausted, ...), wrapped exactly once around the
// driver's own error. Callers branch with errors.Is on the sentinels
// (mailcase.ErrNotFound, ...) or with mailcase.Code, and
// mailcase.IsRetryable tells transient failures from permanent ones.
// Lookups that find nothing are not errors: they return ok == false. The
// result of processing a mail is an Outcome with an Action and a
// Disposition, not an error.
//
// # As
//
// mailcase.Store.As and mailcase.Store.ErrorAs expose driver-specific
// types (a driver's client, its API error type) when a program needs what
// the portable API does not offer. Each driver lists the types it supports
// under # As in its package documentation.
package emailcrm
