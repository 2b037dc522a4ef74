-- emailcrm sqlstore schema v8 (MySQL, MariaDB): records beyond cases
-- (driver.Records). Contacts gain free fields (a JSON object; NULL for
-- none); accounts are found by name (a prefix index; the binary collation
-- compares names exactly); assets are new. An asset's serial_hash is the
-- hex SHA-256 of its account ID, NUL and its serial, NULL when it has no
-- serial: the unique index makes a serial unique per account and lets any
-- number of assets go without one. record_keys holds the idempotency keys
-- of record creations (key_hash is the SHA-256 of idem_key), one key space
-- apart from the mail keys.
ALTER TABLE contacts ADD COLUMN fields MEDIUMTEXT NULL;
CREATE INDEX accounts_by_name ON accounts(name(191));
CREATE TABLE assets (
  id BIGINT AUTO_INCREMENT PRIMARY KEY,
  name MEDIUMTEXT NOT NULL,
  serial MEDIUMTEXT NOT NULL,
  serial_hash CHAR(64) NULL,
  account_id VARCHAR(255) NOT NULL,
  contact_id VARCHAR(255) NOT NULL,
  fields MEDIUMTEXT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  UNIQUE KEY assets_by_serial (serial_hash)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE record_keys (
  key_hash CHAR(64) NOT NULL PRIMARY KEY,
  idem_key LONGBLOB NOT NULL,
  kind VARCHAR(16) NOT NULL,
  record_id VARCHAR(255) NOT NULL,
  created_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
