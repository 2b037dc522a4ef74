-- emailcrm sqlstore schema v1 (SQLite): directory, cases, interactions,
-- idempotency keys, quarantine, outbox, source state.
-- Times are Unix nanoseconds (UTC); *_hash columns are hex SHA-256 of the
-- exact value, so lookups of hostile strings of any length stay indexed.
CREATE TABLE accounts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  support_level TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL
);
CREATE TABLE account_domains (
  account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
  position INTEGER NOT NULL,
  domain TEXT NOT NULL,
  domain_hash TEXT NOT NULL,
  PRIMARY KEY (account_id, position)
);
CREATE INDEX account_domains_by_hash ON account_domains(domain_hash);
CREATE TABLE contacts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL DEFAULT '',
  email TEXT NOT NULL,
  email_hash TEXT NOT NULL,
  account_id TEXT NOT NULL DEFAULT '',
  placeholder INTEGER NOT NULL DEFAULT 0,
  internal INTEGER NOT NULL DEFAULT 0,
  support_level TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL
);
CREATE INDEX contacts_by_email ON contacts(email_hash);
CREATE TABLE employees (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL DEFAULT '',
  email TEXT NOT NULL,
  email_hash TEXT NOT NULL UNIQUE,
  active INTEGER NOT NULL DEFAULT 1,
  created_at INTEGER NOT NULL
);
CREATE TABLE queues (
  name TEXT PRIMARY KEY,
  owner TEXT NOT NULL DEFAULT '',
  address TEXT NOT NULL DEFAULT ''
);
CREATE TABLE cases (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  subject TEXT NOT NULL DEFAULT '',
  status TEXT NOT NULL,
  priority TEXT NOT NULL DEFAULT '',
  queue TEXT NOT NULL DEFAULT '',
  owner TEXT NOT NULL DEFAULT '',
  origin TEXT NOT NULL DEFAULT '',
  category TEXT NOT NULL DEFAULT '',
  contact_id TEXT NOT NULL DEFAULT '',
  account_id TEXT NOT NULL DEFAULT '',
  parent_id TEXT NOT NULL DEFAULT '',
  linked_id TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  closed_at INTEGER NOT NULL DEFAULT 0
);
-- The human case number is the case ID; the sequence starts at 1000.
INSERT INTO sqlite_sequence (name, seq) VALUES ('cases', 999);
CREATE INDEX cases_by_status ON cases(status);
CREATE INDEX cases_by_queue ON cases(queue);
CREATE TABLE case_participants (
  case_id INTEGER NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
  address_hash TEXT NOT NULL,
  address TEXT NOT NULL,
  PRIMARY KEY (case_id, address_hash)
);
CREATE TABLE interactions (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL,
  case_id INTEGER REFERENCES cases(id) ON DELETE CASCADE,
  contact_id TEXT NOT NULL DEFAULT '',
  account_id TEXT NOT NULL DEFAULT '',
  idem_key BLOB,
  mailbox TEXT NOT NULL DEFAULT '',
  direction TEXT NOT NULL DEFAULT '',
  message_id TEXT NOT NULL DEFAULT '',
  message_id_hash TEXT,
  in_reply_to TEXT NOT NULL DEFAULT '',
  refs TEXT NOT NULL DEFAULT '',
  from_name TEXT NOT NULL DEFAULT '',
  from_email TEXT NOT NULL DEFAULT '',
  to_addrs TEXT NOT NULL DEFAULT '',
  cc_addrs TEXT NOT NULL DEFAULT '',
  subject TEXT NOT NULL DEFAULT '',
  sent_at TEXT NOT NULL DEFAULT '',
  body_text TEXT NOT NULL DEFAULT '',
  reply_text TEXT,
  body_html TEXT NOT NULL DEFAULT '',
  auto INTEGER NOT NULL DEFAULT 0,
  summary INTEGER NOT NULL DEFAULT 0,
  note_author TEXT NOT NULL DEFAULT '',
  note_body TEXT NOT NULL DEFAULT '',
  note_public INTEGER NOT NULL DEFAULT 0,
  note_at INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL
);
CREATE INDEX interactions_by_case ON interactions(case_id, id);
CREATE INDEX interactions_by_message_id ON interactions(message_id_hash);
CREATE TABLE attachments (
  interaction_id INTEGER NOT NULL REFERENCES interactions(id) ON DELETE CASCADE,
  position INTEGER NOT NULL,
  filename TEXT NOT NULL DEFAULT '',
  content_type TEXT NOT NULL DEFAULT '',
  content_id TEXT NOT NULL DEFAULT '',
  inline INTEGER NOT NULL DEFAULT 0,
  size INTEGER NOT NULL DEFAULT 0,
  data BLOB,
  PRIMARY KEY (interaction_id, position)
);
CREATE TABLE processed (
  key_hash TEXT PRIMARY KEY,
  idem_key BLOB NOT NULL,
  case_id INTEGER,
  created_at INTEGER NOT NULL
);
CREATE TABLE quarantine (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  mailbox TEXT NOT NULL DEFAULT '',
  idem_key BLOB,
  reason TEXT NOT NULL DEFAULT '',
  attempts INTEGER NOT NULL DEFAULT 0,
  raw BLOB,
  created_at INTEGER NOT NULL
);
CREATE TABLE outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  key_hash TEXT UNIQUE,
  case_id INTEGER,
  mail_from TEXT NOT NULL DEFAULT '',
  rcpt_to TEXT NOT NULL DEFAULT '',
  raw BLOB NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending',
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  sent_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX outbox_by_due ON outbox(status, next_attempt_at);
CREATE TABLE source_state (
  key_hash TEXT PRIMARY KEY,
  state_key BLOB NOT NULL,
  value BLOB NOT NULL,
  updated_at INTEGER NOT NULL
)
