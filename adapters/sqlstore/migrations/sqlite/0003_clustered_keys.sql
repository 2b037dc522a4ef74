-- emailcrm sqlstore schema v3 (SQLite): the idempotency keys and the case
-- participants are stored in their primary key (WITHOUT ROWID), as
-- InnoDB and PostgreSQL indexes already serve them: filing a mail then
-- inserts into one b-tree per table instead of a table and its key index,
-- which writes fewer pages per commit, and a key lookup reads one b-tree.
CREATE TABLE processed_v3 (
  key_hash TEXT PRIMARY KEY,
  idem_key BLOB NOT NULL,
  case_id INTEGER,
  created_at INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO processed_v3 (key_hash, idem_key, case_id, created_at)
  SELECT key_hash, idem_key, case_id, created_at FROM processed;
DROP TABLE processed;
ALTER TABLE processed_v3 RENAME TO processed;
CREATE TABLE case_participants_v3 (
  case_id INTEGER NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
  address_hash TEXT NOT NULL,
  address TEXT NOT NULL,
  PRIMARY KEY (case_id, address_hash)
) WITHOUT ROWID;
INSERT INTO case_participants_v3 (case_id, address_hash, address)
  SELECT case_id, address_hash, address FROM case_participants;
DROP TABLE case_participants;
ALTER TABLE case_participants_v3 RENAME TO case_participants;
