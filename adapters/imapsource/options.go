package imapsource

import (
	"crypto/tls"
	"log/slog"
	"time"

	"golang.org/x/oauth2"

	"github.com/emailcrm/emailcrm/mailcase"
)

// Security selects how the connection is protected.
type Security string

// Connection security modes.
const (
	// TLS is implicit TLS (port 993). The default.
	TLS Security = "tls"
	// StartTLS upgrades a plain connection with STARTTLS (port 143); the
	// upgrade is mandatory.
	StartTLS Security = "starttls"
	// Insecure sends everything in clear text. Only for loopback tests.
	Insecure Security = "insecure"
)

// ActionKind is what happens to a mail on the server once it is filed.
type ActionKind string

// After-commit actions.
const (
	// Delete expunges the mail (UID EXPUNGE when the server has UIDPLUS).
	Delete ActionKind = "delete"
	// Move moves the mail to After.Folder (MOVE, or COPY and delete).
	Move ActionKind = "move"
	// Flag keeps the mail and marks it with a private keyword (After.Flag,
	// FiledKeyword by default); marked mail is skipped by later scans.
	Flag ActionKind = "flag"
)

// FiledKeyword is the private IMAP keyword marking mail this source filed
// and kept (Flag mode, truncated mail kept in place, mail flagged \Deleted
// that could not be expunged). A user reading mail in webmail sets \Seen,
// never this keyword, so read mail is still filed.
const FiledKeyword = "$EmailcrmFiled"

// AfterCommit is the after-commit action of a mailbox; the zero value
// means Flag with FiledKeyword.
type AfterCommit struct {
	Kind ActionKind `json:"kind" yaml:"kind"`
	// Folder is the destination of Move.
	Folder string `json:"folder,omitempty" yaml:"folder,omitempty"`
	// Flag is the keyword marking filed mail in Flag mode; "" means
	// FiledKeyword. A system flag (\Seen, \Flagged...) is never used as
	// the marker, since other clients set it: it is set in addition to
	// FiledKeyword, which stays the marker. \Deleted is refused. The
	// server must store keywords (PERMANENTFLAGS with \*), else Dial
	// fails with ErrNoKeywords.
	Flag string `json:"flag,omitempty" yaml:"flag,omitempty"`
}

// Login holds the credentials Dial logs in with.
type Login struct {
	// Username is the account logged in; required.
	Username string
	// Password logs in with LOGIN (or AUTHENTICATE PLAIN when LOGIN is
	// disabled); unused when TokenSource is set.
	Password string
	// TokenSource, when set, logs in with AUTHENTICATE XOAUTH2 for
	// Username with its access token; Password is then unused.
	TokenSource oauth2.TokenSource
}

// Options configures a Source; nil or the zero value uses the defaults
// below. The server address and the credentials are arguments of Dial.
type Options struct {
	// Security is the connection security; "" means TLS.
	Security Security
	// TLSConfig configures TLS (trust a test CA with RootCAs); nil means
	// the system roots and the host name of the address given to Dial.
	TLSConfig *tls.Config
	// Folder is the folder read; "" means INBOX.
	Folder string
	// Mailbox is the mailcase mailbox name set on every Received and used
	// in the state key; "" means "default".
	Mailbox string
	// State persists UIDVALIDITY and the UID watermark (Store.GetState /
	// PutState); nil, or a store without state support, keeps them in
	// memory only (the after-commit action then still prevents refiling).
	State *mailcase.Store
	// StateKey overrides the state key; "" means
	// "imap/<Mailbox>/<username>@<addr>/<Folder>".
	StateKey string
	// After is the after-commit action; the zero value means Flag (the
	// mail is kept and marked with FiledKeyword).
	After AfterCommit
	// QuarantineFolder receives mail acknowledged Quarantine; "" leaves it
	// untouched on the server (it is not redelivered).
	QuarantineFolder string
	// OversizeFolder receives filed mail whose body was not downloaded
	// (Truncated), which is never deleted; "" means QuarantineFolder, and
	// when both are "" such mail is kept in place marked with the filed
	// keyword (After.Flag in Flag mode, else FiledKeyword).
	OversizeFolder string
	// MaxSize is the largest mail downloaded, in bytes: larger mail is
	// handed out with only its header and Truncated set. 0 means 25 MiB,
	// -1 means no limit.
	MaxSize int64
	// BatchSize is the number of mails fetched per batch (at most 32 MiB
	// ahead of the pipeline with the mail queued); 0 means 100. After-commit
	// actions are applied in groups of ten times as many.
	BatchSize int
	// MaxPerRun is the number of mails handed out by one run before
	// Receive returns io.EOF (polling mode); 0 means 1000.
	MaxPerRun int
	// Watch makes Receive wait for new mail (IDLE, or polling every
	// PollInterval when the server has no IDLE) instead of returning
	// io.EOF at the end of a run.
	Watch bool
	// PollInterval is the polling period of Watch without IDLE, and the
	// longest IDLE before a rescan; 0 means 1 minute.
	PollInterval time.Duration
	// RetryDelay is how long a mail acknowledged Retry is left before it
	// is handed out again; 0 means 30s. It is also the first delay before
	// an after-commit action the server refused (a missing folder, a full
	// quota) is tried again, doubling at each refusal up to an hour; such
	// mail is not handed out again meanwhile.
	RetryDelay time.Duration
	// DialTimeout bounds connecting and logging in; 0 means 30s.
	DialTimeout time.Duration
	// CommandTimeout bounds one command (a batch fetch included); 0 means
	// 2 minutes.
	CommandTimeout time.Duration
	// Reconnects is the number of reconnection attempts, with exponential
	// backoff from BackoffMin to BackoffMax, before Receive gives up and
	// returns the error; 0 means 5. Authentication failures are not
	// retried.
	Reconnects int
	BackoffMin time.Duration // 0 means 200ms
	BackoffMax time.Duration // 0 means 30s
	// Logger receives logs; nil means slog.Default().
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time

	// Set by Dial from its arguments.
	addr  string
	login Login
}

func (o Options) withDefaults() Options {
	if o.Security == "" {
		o.Security = TLS
	}
	if o.Folder == "" {
		o.Folder = "INBOX"
	}
	if o.Mailbox == "" {
		o.Mailbox = "default"
	}
	if o.After.Kind == "" {
		o.After.Kind = Flag
	}
	if o.OversizeFolder == "" {
		o.OversizeFolder = o.QuarantineFolder
	}
	if o.MaxSize == 0 {
		o.MaxSize = 25 << 20
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 100
	}
	if o.MaxPerRun <= 0 {
		o.MaxPerRun = 1000
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Minute
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = 30 * time.Second
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 30 * time.Second
	}
	if o.CommandTimeout <= 0 {
		o.CommandTimeout = 2 * time.Minute
	}
	if o.Reconnects <= 0 {
		o.Reconnects = 5
	}
	if o.BackoffMin <= 0 {
		o.BackoffMin = 200 * time.Millisecond
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.StateKey == "" {
		o.StateKey = "imap/" + o.Mailbox + "/" + o.login.Username + "@" + o.addr + "/" + o.Folder
	}
	return o
}
