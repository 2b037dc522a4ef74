-- emailcrm sqlstore schema v6 (MySQL, MariaDB): the queue of outgoing mail
-- (driver.Outbox). It replaces the outbox table of v1, which no version
-- ever wrote. key_hash is the SHA-256 of the idempotency key idem_key;
-- rcpt_to is a JSON array of envelope recipients; message_id_hash indexes
-- message_id for bounce matching. next_attempt_at and lease_until are
-- Unix microseconds of the database clock (senders on many machines agree),
-- created_at and sent_at Unix nanoseconds.
DROP TABLE outbox;
CREATE TABLE outbox (
  id BIGINT AUTO_INCREMENT PRIMARY KEY,
  key_hash CHAR(64) NOT NULL,
  idem_key LONGBLOB NOT NULL,
  case_id VARCHAR(255) NOT NULL,
  mailbox VARCHAR(255) NOT NULL,
  kind VARCHAR(255) NOT NULL,
  mail_from TEXT NOT NULL,
  rcpt_to MEDIUMTEXT NOT NULL,
  message_id TEXT NOT NULL,
  message_id_hash CHAR(64) NOT NULL,
  raw LONGBLOB NOT NULL,
  status VARCHAR(16) NOT NULL,
  attempts BIGINT NOT NULL DEFAULT 0,
  next_attempt_at BIGINT NOT NULL DEFAULT 0,
  holder VARCHAR(255) NOT NULL DEFAULT '',
  lease_until BIGINT NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  sent_at BIGINT NOT NULL DEFAULT 0,
  UNIQUE KEY outbox_by_key (key_hash),
  KEY outbox_due (status, next_attempt_at),
  KEY outbox_by_message_id (message_id_hash),
  KEY outbox_by_case (case_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
-- outbox_recipients indexes the envelope recipients of each message, for
-- the counts of automatic replies per address.
CREATE TABLE outbox_recipients (
  outbox_id BIGINT NOT NULL,
  rcpt_hash CHAR(64) NOT NULL,
  PRIMARY KEY (rcpt_hash, outbox_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
