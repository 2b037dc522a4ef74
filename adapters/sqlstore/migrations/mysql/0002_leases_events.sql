-- emailcrm sqlstore schema v2 (MySQL, MariaDB): worker leases and the case
-- event log. expires_at is Unix microseconds of the database clock.
CREATE TABLE leases (
  name_hash CHAR(64) PRIMARY KEY,
  name MEDIUMTEXT NOT NULL,
  holder MEDIUMTEXT NOT NULL,
  expires_at BIGINT NOT NULL,
  acquired_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE events (
  id BIGINT AUTO_INCREMENT PRIMARY KEY,
  case_id BIGINT NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
  kind MEDIUMTEXT NOT NULL,
  detail MEDIUMTEXT NOT NULL,
  created_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE INDEX events_by_case ON events(case_id, id)
