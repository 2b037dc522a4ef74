-- emailcrm sqlstore schema v8 (SQLite): records beyond cases
-- (driver.Records). Contacts gain free fields (a JSON object; NULL for
-- none); accounts are found by name; assets are new. An asset's
-- serial_hash is the hex SHA-256 of its account ID, NUL and its serial,
-- NULL when it has no serial: the unique index makes a serial unique per
-- account and lets any number of assets go without one. record_keys holds
-- the idempotency keys of record creations (key_hash is the SHA-256 of
-- idem_key), one key space apart from the mail keys.
ALTER TABLE contacts ADD COLUMN fields TEXT;
CREATE INDEX accounts_by_name ON accounts(name);
CREATE TABLE assets (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  serial TEXT NOT NULL DEFAULT '',
  serial_hash TEXT UNIQUE,
  account_id TEXT NOT NULL DEFAULT '',
  contact_id TEXT NOT NULL DEFAULT '',
  fields TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE record_keys (
  key_hash TEXT PRIMARY KEY,
  idem_key BLOB NOT NULL,
  kind TEXT NOT NULL,
  record_id TEXT NOT NULL,
  created_at INTEGER NOT NULL
) WITHOUT ROWID;
