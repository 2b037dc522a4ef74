-- emailcrm sqlstore schema v6 (SQLite): the queue of outgoing mail
-- (driver.Outbox). It replaces the outbox table of v1, which no version
-- ever wrote. key_hash is the SHA-256 of the idempotency key idem_key;
-- rcpt_to is a JSON array of envelope recipients; message_id_hash indexes
-- message_id for bounce matching. next_attempt_at and lease_until are
-- Unix microseconds of the database clock (senders on many machines agree),
-- created_at and sent_at Unix nanoseconds.
DROP TABLE outbox;
CREATE TABLE outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  key_hash TEXT NOT NULL UNIQUE,
  idem_key BLOB NOT NULL,
  case_id TEXT NOT NULL,
  mailbox TEXT NOT NULL,
  kind TEXT NOT NULL,
  mail_from TEXT NOT NULL,
  rcpt_to TEXT NOT NULL,
  message_id TEXT NOT NULL,
  message_id_hash TEXT NOT NULL,
  raw BLOB NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL DEFAULT 0,
  holder TEXT NOT NULL DEFAULT '',
  lease_until INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  sent_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX outbox_due ON outbox(status, next_attempt_at);
CREATE INDEX outbox_by_message_id ON outbox(message_id_hash);
CREATE INDEX outbox_by_case ON outbox(case_id);
-- outbox_recipients indexes the envelope recipients of each message, for
-- the counts of automatic replies per address.
CREATE TABLE outbox_recipients (
  outbox_id INTEGER NOT NULL,
  rcpt_hash TEXT NOT NULL,
  PRIMARY KEY (rcpt_hash, outbox_id)
);
