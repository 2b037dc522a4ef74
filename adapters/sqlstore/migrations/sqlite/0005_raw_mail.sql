-- emailcrm sqlstore schema v4 (SQLite): the original raw mail of every
-- filed mail, kept once under its idempotency key so that it can be parsed
-- again after a parser fix, and the parse problems of each filed mail.
-- encoding is '' (data is the raw mail) or 'deflate' (data is the raw mail
-- compressed with DEFLATE, RFC 1951); size is the raw mail's length.
-- interaction_id is the filed interaction (no foreign key: the raw mail is
-- kept even if the record is deleted). seq orders the keys as kept.
CREATE TABLE raw_mail (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  key_hash TEXT NOT NULL UNIQUE,
  idem_key BLOB NOT NULL,
  interaction_id INTEGER,
  encoding TEXT NOT NULL DEFAULT '',
  size INTEGER NOT NULL,
  data BLOB NOT NULL,
  created_at INTEGER NOT NULL
);
ALTER TABLE interactions ADD COLUMN problems TEXT;
