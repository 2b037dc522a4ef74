-- emailcrm sqlstore schema v11 (SQLite): the durable log of lifecycle
-- events and their deliveries to sinks (driver.EventLog, the outbox of
-- webhooks and brokers). A new table, not the events table of v2: that one
-- is the timeline of one case (case_id NOT NULL, deleted with its case,
-- free-text detail), while the log holds events of no case, must outlive
-- the case it names until every sink has it, and carries a versioned JSON
-- payload and an idempotency ID. occurred_at, next_attempt_at,
-- lease_until and delivered_at are Unix microseconds (the last three of
-- the database clock, so workers on many machines agree).
CREATE TABLE event_log (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  event_id TEXT NOT NULL UNIQUE,
  kind TEXT NOT NULL,
  case_id TEXT NOT NULL,
  occurred_at INTEGER NOT NULL,
  version INTEGER NOT NULL,
  data BLOB NOT NULL
);
CREATE TABLE event_deliveries (
  sink TEXT NOT NULL,
  seq INTEGER NOT NULL REFERENCES event_log(seq) ON DELETE CASCADE,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL DEFAULT 0,
  holder TEXT NOT NULL DEFAULT '',
  lease_until INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '',
  delivered_at INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (sink, seq)
);
CREATE INDEX event_deliveries_due ON event_deliveries(sink, status, next_attempt_at);
