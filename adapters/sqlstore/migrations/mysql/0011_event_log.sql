-- emailcrm sqlstore schema v11 (MySQL, MariaDB): the durable log of
-- lifecycle events and their deliveries to sinks (driver.EventLog, the
-- outbox of webhooks and brokers). A new table, not the events table of
-- v2: that one is the timeline of one case (case_id NOT NULL, deleted with
-- its case, free-text detail), while the log holds events of no case, must
-- outlive the case it names until every sink has it, and carries a
-- versioned JSON payload and an idempotency ID. occurred_at,
-- next_attempt_at, lease_until and delivered_at are Unix microseconds (the
-- last three of the database clock, so workers on many machines agree).
CREATE TABLE event_log (
  seq BIGINT AUTO_INCREMENT PRIMARY KEY,
  event_id VARCHAR(128) NOT NULL,
  kind VARCHAR(64) NOT NULL,
  case_id VARCHAR(255) NOT NULL,
  occurred_at BIGINT NOT NULL,
  version INT NOT NULL,
  data LONGBLOB NOT NULL,
  UNIQUE KEY event_log_by_id (event_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE event_deliveries (
  sink VARCHAR(128) NOT NULL,
  seq BIGINT NOT NULL,
  status VARCHAR(16) NOT NULL,
  attempts INT NOT NULL DEFAULT 0,
  next_attempt_at BIGINT NOT NULL DEFAULT 0,
  holder VARCHAR(255) NOT NULL DEFAULT '',
  lease_until BIGINT NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL,
  delivered_at BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (sink, seq),
  KEY event_deliveries_due (sink, status, next_attempt_at),
  CONSTRAINT event_deliveries_event FOREIGN KEY (seq) REFERENCES event_log(seq) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
