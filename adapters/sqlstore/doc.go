// Package sqlstore is the SQL case store: one driver on
// database/sql for SQLite (embedded, the default of the mailcase command),
// PostgreSQL and MySQL/MariaDB.
//
//	import _ "github.com/emailcrm/emailcrm/adapters/sqlstore" // registers the URL schemes
//
//	store, err := mailcase.OpenStore(ctx, "sqlite:///var/lib/emailcrm/cases.db")
//	store, err := mailcase.OpenStore(ctx, "postgres://crm@db.internal:5432/crm?sslmode=verify-full")
//	store, err := mailcase.OpenStore(ctx, "mysql://crm:secret@db.internal:3306/crm")
//
// or, with a *sql.DB of your own (the store then never closes it):
//
//	db, _ := sql.Open("sqlite", sqlstore.SQLiteDSN("cases.db"))
//	store, err := sqlstore.OpenStore(ctx, db, sqlstore.SQLite, nil)
//
// # Store URLs
//
//   - sqlite:///abs/path/cases.db: an absolute path. sqlite://cases.db and
//     sqlite:cases.db name a file relative to the working directory. The file
//     is created if missing and opened with WAL, synchronous=FULL (every
//     commit is on disk before a mail is acknowledged), a 10s busy timeout,
//     foreign keys on and BEGIN IMMEDIATE transactions; ?synchronous=normal
//     trades the last commits before a power loss for speed.
//   - postgres://user:pass@host:5432/db?sslmode=...&search_path=schema (or
//     postgresql://): passed to pgx as is.
//   - mysql://user:pass@host:3306/db?param=value: converted to the
//     go-sql-driver DSN user:pass@tcp(host:3306)/db with strict SQL mode and
//     client-side parameter interpolation by the driver (it escapes every
//     value for the utf8mb4 connection); other parameters go to the driver,
//     except clientFoundRows=true, which is refused: the store relies on
//     MySQL's default count of changed rows (an INSERT ... ON DUPLICATE KEY
//     UPDATE k = k of a key that exists counts 0), and judges again, by a
//     locking read, an UPDATE that set a row to the values it holds. A
//     *sql.DB given to OpenStore must not set it either.
//     The driver's own form mysql://user:pass@tcp(host:port)/db (or
//     @unix(/path)) is not a URL: OpenURL accepts it, mailcase.OpenStore
//     and the --store flag do not.
//
// Every dialect also takes keep_raw=true|false (true by default):
// keep_raw=false stops keeping the raw mail of filed mails (see Raw mail).
//
// # Raw mail
//
// The original raw mail of every filed mail is kept by default (the store
// implements driver.RawKeeper), in the transaction that files the mail and
// once per mail (a duplicate filing writes nothing), so that any mail can be
// parsed again after a parser fix (`mailcase reparse`, which also uses
// driver.EmailUpdater to replace a filed mail's parsed content). It is
// stored DEFLATE-compressed when that saves at least an eighth of its size
// (text mail shrinks to about a third, mail with attachments to about 60%,
// at under 80 µs a mail); GetRaw returns the exact bytes. Turn it off with
// keep_raw=false or StoreOptions.DiscardRaw; mails filed before schema
// version 5 have no raw mail.
//
// # Schema and migrations
//
// The schema is versioned and embedded (migrations/<dialect>/NNNN_*.sql);
// OpenStore applies what is missing under a lock (pg_advisory_lock,
// GET_LOCK, BEGIN IMMEDIATE), so several processes may open one database at
// once. Version 1 holds contacts, accounts and their domains, employees,
// queues, cases (the human case number is the case ID, counting from
// 1000), participants, interactions (mails and notes), attachments,
// processed idempotency keys, quarantine, the outbox and source state;
// version 2 adds worker leases and the case event log (every UpdateCase:
// status, priority, queue and owner changes); version 3 stores, on SQLite,
// the idempotency keys and case participants in their primary key
// (WITHOUT ROWID: one b-tree each, as InnoDB and PostgreSQL indexes already
// serve them; the version changes nothing on those); version 4 adds the
// content fingerprint of each idempotency key (processed.fingerprint);
// version 5 adds the raw mail of filed mails (raw_mail) and the parse problems of each mail
// (interactions.problems); version 6 replaces the unused outbox table of
// version 1 with the queue of outgoing mail (driver.Outbox); version 7
// indexes the references of filed mails (interaction_refs, for
// driver.ReferenceFinder); version 8
// adds records beyond cases (driver.Records and driver.RecordBatcher):
// free fields of contacts, an index of account names, assets (a serial
// unique per account) and the idempotency keys of record creations. A
// record batch is one transaction; version 9
// adds worklists (driver.Queues and driver.Worklist): the members of the
// queues of version 1 (queue_members) and the handled marks of open mail
// (worklist_marks), a work item being its case's queue, owner and status,
// changed by a conditional UPDATE on the row read, so concurrent accepts
// have one winner on every dialect; version 10 keeps the service-level
// timers of cases (driver.SLAStore); version 11 the durable log of
// lifecycle events and their deliveries (driver.EventLog); version 12
// marks the service-level timers stopped by the closing of their case,
// which run again when it is reopened; version 13 keeps the leases of
// alert claims not yet confirmed. Contact,
// account, asset and employee
// IDs carry their kind ("contact-7"), so IDs of different kinds never
// collide. Strings that come
// from mail (addresses, Message-IDs, keys) are looked up by the SHA-256 of
// their exact value, so any length and any byte stays indexed; every value
// is a query parameter. PostgreSQL and MySQL store text as valid UTF-8
// (invalid bytes become U+FFFD, and NUL on PostgreSQL); raw mail and
// attachments are kept byte for byte.
//
// # Idempotency
//
// Every filing claims its idempotency key (mailbox + Message-ID, or a hash
// of the raw bytes) in the processed table, whose primary key is the hash
// of the key, inside the transaction that files the mail. A second filing
// of the key, by this process or another, finds the key (or waits on the
// unique index until the first commits) and does nothing, so a crash
// between commit and acknowledgement never duplicates a mail.
//
// # Group commit
//
// Writes from concurrent callers share transactions: a committer runs up to
// Options.MaxBatch operations in one transaction, so durable filing pays one
// commit (one fsync) per batch instead of one per mail. Each caller returns
// only after the transaction holding its write committed. When one write of
// a batch fails, the batch is rolled back, that write runs again alone (for
// its own outcome) and the others run again together, so a bad mail never
// fails the others; when the COMMIT itself fails, every
// member gets the error (its outcome is unknown) and the portable layer
// retries the idempotent ones.
//
// Filing a mail costs few statements in the shared transaction: the new
// case's key is claimed with its case ID in one INSERT ... ON CONFLICT DO
// NOTHING (a duplicate found then takes its case row back); participants
// and attachments go in multi-row INSERTs; appending to a case touches it
// and reads its contact in one UPDATE ... RETURNING (two statements on
// MySQL); the case contact's address (contacts never change) is cached and
// read outside the transaction. CommitStats.Statements counts them. On
// SQLite the point lookups and writes run detached from cancellation (the
// driver would start a goroutine per statement to watch the context):
// they take microseconds and the busy timeout bounds their lock waits;
// list scans stay interruptible.
//
// # Many workers
//
// With PostgreSQL or MariaDB/MySQL, any number of worker processes on one or
// many machines may share the mailboxes of one database. Nothing but the
// database coordinates them:
//
//   - exactly-once filing comes from the unique key on the idempotency key:
//     two workers filing one mail serialise on the key's index entry and the
//     second does nothing;
//   - work is shared with leases (driver.Leaser, mailcase.Store.AcquireLease):
//     a lease is a row naming its holder and an expiry measured by the
//     database clock, taken and renewed by single-row atomic statements.
//     mailcase.NewLeasedSource wraps any Source so that each mail is
//     handed to one worker at a time (one lease per mail,
//     "mail:<mailbox>/<id>", renewed every TTL/3 while the mail is
//     processed, released on Ack): this spreads one mailbox over many
//     workers, and is what the multi-process test runs. A source may
//     instead hold one lease per mailbox ("mailbox:<name>") to have one
//     active worker per mailbox and hot standbys;
//   - a worker that dies stops renewing: its leases expire after the TTL and
//     another worker takes the mail over. If it died after committing but
//     before acknowledging, the mail is delivered again and recognised as a
//     duplicate; if it died before committing, nothing of the mail was kept
//     and it is filed by the next worker. No mail is filed twice and none
//     is lost.
//
// Deployment: one database (a PostgreSQL primary, or MariaDB/MySQL with
// InnoDB), N identical workers pointing at it with the same store URL, each
// with a distinct holder name (host name + PID). On a database failover
// (a standby promoted) the workers' connections fail: calls return
// Unavailable, the pipeline leaves the mails unacknowledged (Retry), the
// pool reconnects to the new primary (use a virtual IP or a multi-host
// URL) and work resumes; transactions that did not commit are redone from
// the mailbox, those that did are recognised by their keys. With
// asynchronous replication the last commits before a failover may be lost
// by the database itself; the mails are then still in the mailbox (they
// were acknowledged only after a commit the old primary confirmed), so use
// synchronous replication when acknowledged mail is deleted from the
// server. SQLite serves one machine: processes on it may share the file
// (the lock serialises writers), not machines over a network file system.
//
// # Goroutines and Close
//
// A store is safe for concurrent use. It runs Options.Committers goroutines
// (the group committers), stopped by Close after they finish queued writes.
// A store opened from a URL owns and closes its *sql.DB; one opened with
// OpenStore leaves it open.
//
// # As
//
// Store.As supports **sql.DB, *Dialect and *CommitStats; Store.ErrorAs
// supports **sqlstore.Error, **pgconn.PgError, **mysql.MySQLError and
// **sqlite.Error.
package sqlstore
