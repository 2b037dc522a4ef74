package mailcase

import (
	"context"
	"strconv"
)

// A Source delivers inbound mail from a mailbox (IMAP, POP3, a directory,
// an MTA pipe, an LMTP listener).
//
// The contract is acknowledge-after-commit: the pipeline calls Ack for every
// mail Receive returned, only after the outcome is durable in the store
// (Done), or when the mail must be left for redelivery (Retry) or set aside
// (Quarantine). A source removes or flags nothing on the server before Ack.
// Receive and Ack may be called concurrently from several goroutines.
type Source interface {
	// Receive blocks until a mail is available or ctx is done. Finite
	// sources return io.EOF when exhausted.
	Receive(ctx context.Context) (*Received, error)
	// Ack records the final disposition of r. reason is a short operator
	// text for Retry and Quarantine ("" for Done).
	Ack(ctx context.Context, r *Received, d Disposition, reason string) error
}

// Received is one mail handed out by a Source.
type Received struct {
	// Raw is the mail as received.
	Raw []byte
	// Mailbox names the mailbox the mail came from.
	Mailbox string
	// ID identifies the mail in its source (a UID, a file name); sources
	// use it in Ack.
	ID string
	// Size is the size the server announced before download (IMAP
	// RFC822.SIZE), or len(Raw).
	Size int64
	// Truncated is set by a source that did not download a mail over the
	// size limit; Raw then holds only its header.
	Truncated bool
	// Quiet asks the pipeline to send nothing about this mail (backlog
	// import).
	Quiet bool
	// Attempt counts deliveries of this mail that the source knows of
	// (1 for the first).
	Attempt int
}

// Disposition is the outcome of processing one mail.
type Disposition int

// Dispositions.
const (
	// Done: the mail is filed (case created or updated, filtered summary
	// recorded, or an exact duplicate); the source may delete or flag it.
	Done Disposition = iota + 1
	// Retry: a transient failure; leave the mail for redelivery.
	Retry
	// Quarantine: the mail can never be processed as it is; set it aside
	// with its reason, never redeliver it automatically.
	Quarantine
)

func (d Disposition) String() string {
	switch d {
	case Done:
		return "done"
	case Retry:
		return "retry"
	case Quarantine:
		return "quarantine"
	}
	return "Disposition(" + strconv.Itoa(int(d)) + ")"
}

// MarshalText implements encoding.TextMarshaler.
func (d Disposition) MarshalText() ([]byte, error) { return []byte(d.String()), nil }
