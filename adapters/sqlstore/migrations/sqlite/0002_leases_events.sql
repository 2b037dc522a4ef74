-- emailcrm sqlstore schema v2 (SQLite): worker leases and the case
-- event log. expires_at is Unix microseconds of the database clock.
CREATE TABLE leases (
  name_hash TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  holder TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  acquired_at INTEGER NOT NULL
);
CREATE TABLE events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  case_id INTEGER NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
  kind TEXT NOT NULL,
  detail TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL
);
CREATE INDEX events_by_case ON events(case_id, id)
