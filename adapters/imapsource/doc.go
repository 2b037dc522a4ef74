// Package imapsource reads support mail from an IMAP folder as a
// mailcase.Source, on github.com/emersion/go-imap/v2.
//
// # Connection
//
// Implicit TLS (port 993, the default) or mandatory STARTTLS; a test CA is
// trusted with Options.TLSConfig. Dial takes the address and a Login: a
// password (LOGIN, or AUTHENTICATE PLAIN when LOGIN is disabled) or XOAUTH2
// with a token from Login.TokenSource. Dial connects at once so that bad credentials are
// reported (ErrAuth); later failures reconnect with exponential backoff.
//
// # Which mail is read
//
// The source is UID based. Per mailbox it persists the folder's
// UIDVALIDITY and a watermark (every UID below it is finished) in the
// store's source state (Store.GetState / PutState), written outside the
// source's locks so that a durable write never holds up Receive or Ack. A
// scan is one UID FETCH <watermark>:* (UID FLAGS). Mail carrying the
// private keyword FiledKeyword ($EmailcrmFiled, or After.Flag in Flag
// mode) was filed earlier and is skipped; \Seen means nothing (mail read
// in webmail before the poll is filed like any other). Mail marked
// \Deleted without the keyword is handed out (a user's mark), and filed
// mail left \Deleted with it by a crash between STORE and EXPUNGE is
// expunged again (UIDPLUS; the watermark does not pass it before). At
// Dial, the quarantine, oversize and move folders are created when
// missing; one that can neither be created nor opened fails Dial with
// ErrFolder. Flag mode needs a server that stores
// keywords (PERMANENTFLAGS with \*), else Dial fails with ErrNoKeywords. When UIDVALIDITY
// changes the watermark goes back to 1 and the folder is rescanned: mail
// filed before is recognised by its idempotency key (a duplicate) and only
// gets its after-commit action, so nothing is filed twice or lost.
//
// Mail is downloaded in batches (Options.BatchSize, and at most 32 MiB
// with the mail already queued, see Concurrency) with BODY.PEEK[] (no
// \Seen side effect). The
// sizes are read before download, a batch at a time (UID FETCH
// RFC822.SIZE: a server may have to read a mail to know its size, which
// then overlaps with the pipeline instead of delaying the first mail); a
// mail gone from the server meanwhile (expunged by another client) is
// dropped, and a batch found gone entirely does not end the run: the next
// UIDs are fetched. Mail over
// Options.MaxSize is handed out with its header only (BODY.PEEK[HEADER])
// and Received.Truncated set; such mail is never deleted from the
// server (it is moved to Options.OversizeFolder, or kept marked with the
// keyword). A literal larger than announced is refused without being
// read; the mail is fetched again at once with less: its header, then the
// first 4 MiB (BODY.PEEK[]<0.4194304>) when the header itself is over
// 4 MiB, then a synthetic header naming the UID. So one mail never fails
// the run nor holds back the mail behind it.
//
// # Runs and push
//
// In polling mode Receive returns io.EOF at the end of a scan or after
// Options.MaxPerRun mails, which ends a pipeline run; the next Receive
// starts the next run (the scheduler package calls it at the mailbox's
// interval). A Receive ended by its ctx (a run's timeout) ends the run
// too: the next Receive starts a new run, with Options.MaxPerRun counted
// afresh. With Options.Watch, Receive waits for new mail with IDLE, or
// polls every Options.PollInterval when the server has no IDLE; mail a
// fetch queues meanwhile (one an Ack started) ends the wait.
//
// # After commit
//
// Nothing is removed or flagged before Ack(Done). Done applies the
// mailbox's action (Options.After; the zero value means Flag, so by
// default mail is kept on the server): Delete (STORE \Deleted and the keyword, then UID
// EXPUNGE with UIDPLUS), Move (MOVE; without it UID COPY, and only once
// the server accepted the copy, the same as Delete) or Flag (the keyword,
// plus After.Flag when it is a system flag such as \Seen). Without
// UIDPLUS no EXPUNGE is sent, since a plain EXPUNGE would also remove
// mail others marked \Deleted: the source's mail stays \Deleted and
// marked, and the scan skips it. An action the server refuses (missing
// folder, quota) is logged at Error and retried after a backoff starting
// at Options.RetryDelay and doubling up to an hour; the mail, already
// filed, is not handed out again meanwhile. Quarantine moves the mail to
// Options.QuarantineFolder, or leaves it untouched (not handed out again)
// when there is none. Retry leaves it for Options.RetryDelay. Actions are
// applied in groups, one command per action and group (a UID set): when
// ten times Options.BatchSize are pending (each command costs the server
// an index update, so few large ones leave it free for the fetch) or no
// mail is queued nor in flight, by the fetch between two batches when it
// holds the connection, and on Flush and Close. Actions due while the
// connection is busy are applied by its holder: the fetch, or a Receive
// waiting with IDLE, which applies them at once and idles again (so they
// never wait for the next mail or poll); the scheduler calls Flush
// after each run. Only mail acknowledged Done (or Quarantine) is in a
// group: mail in flight, queued or never filed is not touched. A crash in
// between only means the filed mail is handed out again and recognised as
// a duplicate.
//
// # Concurrency
//
// Receive and Ack may be called from many goroutines. A background
// goroutine (one at a time; Close stops it) fetches batch after batch
// while at most one batch waits ahead of the pipeline, so one fetch is in
// flight while the pipeline works. The mail fetched ahead of the pipeline,
// queued or in the batch being fetched, is at most 32 MiB by the sizes the
// server announces (RFC822.SIZE; a header-only fetch counts its mail's
// size up to 4 MiB); a single larger mail is fetched alone, once nothing
// is queued. Receive hands out each mail as soon as its literal is read,
// not at the end of its batch. Ack never waits for a fetch. The mail is
// handed out in UID order, whole, header-only and refetched mail alike (a
// batch is fetched as one UID FETCH per run of UIDs sharing a fetch mode,
// in order), so the pipeline's thread serialisation files the mails of
// one conversation in the order the folder holds them.
package imapsource
